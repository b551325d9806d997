"""A report over seeded history says exactly what the seed implies, computed here independently."""

import gc
import math
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.models import Attempt, HealthMethod, ProbeKind, Target
from dashboard.periods import Period
from dashboard.reports.content import gather
from dashboard.reports.generate import build_report
from dashboard.runbook.service import migration_start
from tests.reports.history import every, make_environment, probe, roll_up_everything

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 2, tzinfo=UTC)  # the reported period: this whole UTC day
STEP = timedelta(minutes=5)
FAILING = {50, 100, 101, 102, 103, 200, 201}  # 50 alone; 100-103 and 200-201 are incidents (down after 2)


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.fixture
def seeded(operator):
    environment = make_environment()
    dsql = Target.objects.create(environment=environment, kind=ProbeKind.DSQL, name="vela-dsql", down_after=2)
    api = Target.objects.create(
        environment=environment, kind=ProbeKind.API_HEALTH, name="vela-api", health_method=HealthMethod.INVOKE
    )
    # The previous day: all up, 40 ms.
    for at in every(DAY - timedelta(days=1), STEP, 288):
        probe(dsql, at, 40.0)
    latencies = []
    for index, at in enumerate(every(DAY, STEP, 288)):
        if index in FAILING:
            probe(dsql, at, None, ok=False)
        else:
            latency = 5.0 + (index * 37) % 120  # spread over 5..124 ms
            latencies.append(latency)
            probe(dsql, at, latency, phases={"connect": latency / 2, "query": latency / 4})
    cold = []
    warm = []
    for index, at in enumerate(every(DAY, timedelta(minutes=10), 144)):
        is_cold = index % 6 == 0
        latency = 800.0 + index if is_cold else 20.0 + index % 7
        (cold if is_cold else warm).append(latency)
        probe(api, at, latency, cold_start=is_cold)
    migration = migration_start(environment=environment, user=operator, source_address=None)
    step = migration.steps.order_by("position").first()
    Attempt.objects.create(
        migration=migration,
        step=step,
        number=1,
        action="run",
        status="failed",
        requested_by=operator,
        started_at=DAY + timedelta(hours=9),
        finished_at=DAY + timedelta(hours=9, seconds=42),
        error={"code": "AccessDenied", "message": "not allowed"},
    )
    Attempt.objects.create(  # the day after: not in the report
        migration=migration,
        step=step,
        number=2,
        action="run",
        status="succeeded",
        requested_by=operator,
        started_at=DAY + timedelta(days=1, hours=1),
        finished_at=DAY + timedelta(days=1, hours=1, minutes=1),
    )
    roll_up_everything(DAY + timedelta(days=2))
    return environment, dsql, api, latencies, cold, warm


def test_uptime_incidents_percentiles_and_cold_starts_are_what_the_seed_implies(seeded):
    environment, dsql, api, latencies, cold, warm = seeded
    content = gather(environment, Period(DAY, DAY + timedelta(days=1)), now=DAY + timedelta(days=2))
    rows = {row["name"]: row for row in content["targets"]}
    row = rows["vela-dsql"]
    assert (row["probes"], row["ok"], row["failed"]) == (288, 281, 7)
    assert row["uptime_pct"] == round(100 * 281 / 288, 4)
    assert row["incidents"] == 2
    # Down from the first failure to the next success: 4 and 2 probe intervals.
    assert row["downtime_seconds"] == (4 + 2) * STEP.total_seconds()
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert row[name] == pytest.approx(nearest_rank(latencies, q), rel=0.05), name
    assert row["latency_avg"] == pytest.approx(sum(latencies) / len(latencies), abs=1e-3)
    assert row["phases"]["connect"] == pytest.approx(sum(latencies) / 2 / len(latencies), rel=1e-3)
    # Against the previous day: 100 % at 40 ms.
    assert row["previous"]["uptime_pct"] == 100.0
    assert row["uptime_delta_pct"] == pytest.approx(100 * 281 / 288 - 100, abs=1e-3)
    assert row["previous"]["p95"] == pytest.approx(40.0, rel=0.05)
    assert row["p95_delta_ms"] == pytest.approx(row["p95"] - row["previous"]["p95"], abs=1e-3)

    lam = rows["vela-api"]["cold"]
    assert lam["count"] == len(cold) == 24
    assert lam["cold_avg"] == pytest.approx(sum(cold) / len(cold), abs=1e-3)
    assert lam["warm_avg"] == pytest.approx(sum(warm) / len(warm), abs=1e-3)
    assert rows["vela-api"]["uptime_pct"] == 100.0 and rows["vela-api"]["previous"]["uptime_pct"] is None

    incidents = content["incidents"]
    assert [i["duration_seconds"] for i in incidents] == [1200.0, 600.0]
    assert incidents[0]["opened_at"] == (DAY + 100 * STEP).isoformat()
    assert incidents[0]["cause"] == "connection refused (SQLSTATE 08001)" and incidents[0]["failures"] == 4

    summary = content["summary"]
    assert summary["probes"] == 288 + 144 and summary["incidents"] == 2
    assert summary["uptime_pct"] == round(100 * (281 + 144) / (288 + 144), 4)
    assert summary["steps_run"] == 1 and summary["steps_failed"] == 1
    (step,) = content["steps"]
    assert (step["operator"], step["status"], step["duration_seconds"]) == ("otto", "failed", 42.0)
    assert step["error"] == "AccessDenied: not allowed"
    # Hourly chart points for every hour of the day.
    assert len(content["series"]["targets"][str(dsql.pk)]) == 24


def test_every_format_carries_the_figures(seeded):
    environment, *_ = seeded
    rendered = build_report(environment, Period(DAY, DAY + timedelta(days=1)), now=DAY + timedelta(days=2))
    uptime = f"{100 * 281 / 288:.3f} %"
    assert uptime in rendered.html and "<svg" in rendered.html and "<script" not in rendered.html
    assert "connection refused (SQLSTATE 08001)" in rendered.html
    lines = rendered.csv.splitlines()
    assert lines[0].startswith("block,title,environment")
    target_line = next(line for line in lines if line.startswith("target,vela-dsql,"))
    assert ",288,7,97.5694," in target_line
    assert sum(line.startswith("incident,") for line in lines) == 2
    assert sum(line.startswith("step,") for line in lines) == 1
    assert rendered.pdf.startswith(b"%PDF-")


def test_a_local_day_across_a_clock_change_is_23_hours():
    from dashboard.periods import completed_period

    period = completed_period("daily", datetime(2026, 3, 30, 8, tzinfo=UTC), "Europe/Berlin")
    assert period.length == timedelta(hours=23)
    assert period.start == datetime(2026, 3, 28, 23, tzinfo=UTC)


def test_the_pdf_opens_and_pdftotext_finds_the_figures(seeded, tmp_path):
    import os
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is missing; .ci/run installs it")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    environment, *_ = seeded
    rendered = build_report(environment, Period(DAY, DAY + timedelta(days=1)), now=DAY + timedelta(days=2))
    assert gc.isenabled()  # paused while WeasyPrint renders, and on again after
    path = tmp_path / "report.pdf"
    path.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Health report: Reports" in text
    assert f"{100 * 281 / 288:.3f} %" in text  # the DSQL target's uptime
    assert f"{100 * (281 + 144) / (288 + 144):.3f} %" in text  # all targets
    assert "vela-dsql" in text and "vela-api" in text
    flat = " ".join(text.split())
    assert "connection refused (SQLSTATE 08001)" in flat and "AccessDenied:" in flat
    assert "Lambda cold starts" in text
