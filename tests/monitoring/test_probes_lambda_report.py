"""Lambda REPORT lines as Lambda writes them, in the log tail an invoke returns with LogType=Tail."""

import base64
import json

from dashboard.monitoring.probes.lambda_report import LambdaReport, decode_log_result, parse_report

REQUEST = "6ba1ff4b-52b5-4d3a-9b5a-8e0b4b5a3c71"


def tail(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_a_warm_invoke_has_no_init_duration():
    text = tail(
        f"START RequestId: {REQUEST} Version: $LATEST",
        f"2026-11-20T12:00:00.000Z\t{REQUEST}\tINFO\tGET /health/dsql",
        f"END RequestId: {REQUEST}",
        f"REPORT RequestId: {REQUEST}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 87 MB\t",
    )
    assert parse_report(text) == LambdaReport(
        request_id=REQUEST, duration_ms=12.34, billed_ms=13.0, memory_size_mb=512.0, max_memory_used_mb=87.0
    )
    assert parse_report(text).cold_start is False


def test_a_cold_start_has_an_init_duration():
    text = tail(
        f"START RequestId: {REQUEST} Version: $LATEST",
        f"END RequestId: {REQUEST}",
        f"REPORT RequestId: {REQUEST}\tDuration: 3.30 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 39 MB\tInit Duration: 142.68 ms\t",
    )
    report = parse_report(text)
    assert (report.duration_ms, report.init_ms, report.billed_ms) == (3.30, 142.68, 4.0)
    assert report.cold_start is True


def test_a_snapstart_restore_counts_as_a_cold_start():
    text = tail(
        f"REPORT RequestId: {REQUEST}\tDuration: 25.91 ms\tBilled Duration: 461 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 84 MB\tRestore Duration: 433.66 ms\tBilled Restore Duration: 435 ms\t"
    )
    report = parse_report(text)
    assert report.init_ms is None
    assert (report.restore_ms, report.billed_restore_ms) == (433.66, 435.0)
    assert report.cold_start is True


def test_the_xray_line_after_the_report_gives_the_trace_id():
    text = tail(
        f"END RequestId: {REQUEST}",
        f"REPORT RequestId: {REQUEST}\tDuration: 1.90 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 61 MB\tInit Duration: 239.61 ms\t",
        "XRAY TraceId: 1-5f0d9d4b-6c2a3e0f8b1d4a7e9c3b2a10\tSegmentId: 2a8e0c7f6b3d2a1c\tSampled: true\t",
    )
    report = parse_report(text)
    assert report.trace_id == "1-5f0d9d4b-6c2a3e0f8b1d4a7e9c3b2a10"
    assert (report.duration_ms, report.init_ms, report.max_memory_used_mb) == (1.90, 239.61, 61.0)


def test_a_timed_out_invoke_reports_its_status():
    text = tail(
        f"REPORT RequestId: {REQUEST}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 50 MB\tInit Duration: 201.12 ms\tStatus: timeout",
    )
    report = parse_report(text)
    assert (report.status, report.duration_ms, report.cold_start) == ("timeout", 3000.0, True)


def test_a_runtime_failure_reports_its_error_type():
    text = tail(
        f"REPORT RequestId: {REQUEST}\tDuration: 45.06 ms\tBilled Duration: 46 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 12 MB\tStatus: error\tError Type: Runtime.ExitError",
    )
    report = parse_report(text)
    assert (report.status, report.error_type) == ("error", "Runtime.ExitError")


def test_the_json_log_format_platform_report():
    record = {
        "time": "2026-11-20T12:00:00.000Z",
        "type": "platform.report",
        "record": {
            "requestId": REQUEST,
            "metrics": {
                "durationMs": 2.71,
                "billedDurationMs": 3,
                "memorySizeMB": 256,
                "maxMemoryUsedMB": 70,
                "initDurationMs": 180.5,
            },
            "tracing": {"spanId": "a1", "type": "X-Amzn-Trace-Id", "value": "Root=1-abc-def;Parent=a1;Sampled=1"},
            "status": "success",
        },
    }
    start = {"time": "2026-11-20T12:00:00.000Z", "type": "platform.start", "record": {"requestId": REQUEST}}
    report = parse_report(tail(json.dumps(start), json.dumps(record)))
    assert report == LambdaReport(
        request_id=REQUEST,
        duration_ms=2.71,
        billed_ms=3.0,
        memory_size_mb=256.0,
        max_memory_used_mb=70.0,
        init_ms=180.5,
        status="success",
        trace_id="1-abc-def",
    )
    assert report.cold_start is True


def test_a_tail_without_a_report_gives_none():
    assert parse_report("") is None
    assert parse_report(tail(f"START RequestId: {REQUEST} Version: $LATEST", "some output REPORT later")) is None
    assert parse_report('{"type": "platform.report", "record": "not an object"}') is None


def test_the_log_result_is_base64_cut_anywhere():
    text = tail("ño más", f"REPORT RequestId: {REQUEST}\tDuration: 1.00 ms\tBilled Duration: 1 ms\t")
    encoded = base64.b64encode(text.encode()[1:]).decode()  # the 4 KB cut fell inside the "ñ"
    assert parse_report(decode_log_result(encoded)).duration_ms == 1.0
    assert decode_log_result(None) == "" and decode_log_result("not base64!") == ""
