"""Reading Lambda's REPORT line from an invoke's log tail (`LogType="Tail"`: the last 4 KB, base64).

Two log formats exist. Text (the default):

    REPORT RequestId: 8f5e...\tDuration: 3.30 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t
    Max Memory Used: 39 MB\tInit Duration: 142.68 ms\t

with "Init Duration" only on a cold start, "Restore Duration" and "Billed Restore Duration" instead
for a SnapStart restore, "Status" and "Error Type" when the runtime failed, and an "XRAY TraceId: ..."
line after it when tracing is on. JSON (advanced logging controls) has one `platform.report` record:

    {"type": "platform.report", "record": {"requestId": ..., "metrics": {"durationMs": ...,
     "billedDurationMs": ..., "memorySizeMB": ..., "maxMemoryUsedMB": ..., "initDurationMs": ...}}}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaReport:
    request_id: str = ""
    duration_ms: float | None = None
    billed_ms: float | None = None
    memory_size_mb: float | None = None
    max_memory_used_mb: float | None = None
    init_ms: float | None = None
    restore_ms: float | None = None
    billed_restore_ms: float | None = None
    status: str = ""
    error_type: str = ""
    trace_id: str = ""

    @property
    def cold_start(self) -> bool:
        # A SnapStart restore is a cold start too: a new execution environment served this request.
        return self.init_ms is not None or self.restore_ms is not None


_TEXT_FIELDS = {
    "RequestId": "request_id",
    "Duration": "duration_ms",
    "Billed Duration": "billed_ms",
    "Memory Size": "memory_size_mb",
    "Max Memory Used": "max_memory_used_mb",
    "Init Duration": "init_ms",
    "Restore Duration": "restore_ms",
    "Billed Restore Duration": "billed_restore_ms",
    "Status": "status",
    "Error Type": "error_type",
    "XRAY TraceId": "trace_id",
}
_JSON_METRICS = {
    "durationMs": "duration_ms",
    "billedDurationMs": "billed_ms",
    "memorySizeMB": "memory_size_mb",
    "maxMemoryUsedMB": "max_memory_used_mb",
    "initDurationMs": "init_ms",
    "restoreDurationMs": "restore_ms",
    "billedRestoreDurationMs": "billed_restore_ms",
}
_TEXT_VALUES = {"request_id", "status", "error_type", "trace_id"}


def decode_log_result(log_result: str | None) -> str:
    """The log tail as text; empty when there is none or it is not base64."""
    if not log_result:
        return ""
    try:
        # The tail is cut at 4 KB, possibly inside a multi-byte character.
        return base64.b64decode(log_result, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def parse_report(log_text: str) -> LambdaReport | None:
    """The last REPORT of the log tail, in either format; None when the tail has none."""
    lines = log_text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if line.startswith("REPORT "):
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            return _text_report(line, following if following.startswith("XRAY ") else "")
        if line.startswith("{") and '"platform.report"' in line:
            report = _json_report(line)
            if report is not None:
                return report
    return None


def _text_report(line: str, xray: str) -> LambdaReport:
    values: dict[str, object] = {}
    for field in (line[len("REPORT ") :] + "\t" + xray).split("\t"):
        name, sep, raw = field.strip().partition(":")
        attribute = _TEXT_FIELDS.get(name.strip())
        if not sep or attribute is None:
            continue
        raw = raw.strip()
        values[attribute] = raw if attribute in _TEXT_VALUES else _number(raw.split(" ")[0])
    return LambdaReport(**values)


def _json_report(line: str) -> LambdaReport | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    record = event.get("record") if isinstance(event, dict) and event.get("type") == "platform.report" else None
    if not isinstance(record, dict):
        return None
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    values: dict[str, object] = {attribute: _number(metrics.get(key)) for key, attribute in _JSON_METRICS.items()}
    tracing = record.get("tracing") if isinstance(record.get("tracing"), dict) else {}
    trace = str(tracing.get("value") or "")
    return LambdaReport(
        request_id=str(record.get("requestId") or ""),
        status=str(record.get("status") or ""),
        error_type=str(record.get("errorType") or ""),
        # "Root=1-...;Parent=...;Sampled=1": the Root is what the text format calls the TraceId.
        trace_id=trace.split(";")[0].removeprefix("Root=") if trace else "",
        **values,
    )


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    try:
        return float(str(raw))
    except (TypeError, ValueError):
        return None
