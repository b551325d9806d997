"""Schedules fire through a real beat (django-celery-beat's DatabaseScheduler, in a thread) and a real
worker (a subprocess on the test database): one report per occurrence, emailed into the file backend."""

import subprocess
import threading
import time
from datetime import timedelta

import pytest
from celery import beat
from django.db import connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from dashboard.models import Report, ReportDelivery, ReportRequest, ReportSchedule
from tests.fixtures.workers import stop_worker, wait_for, worker_process
from velaops.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(**extra_env: str) -> subprocess.Popen:
    return worker_process(env=extra_env)


@pytest.fixture
def fast_report_jobs(monkeypatch):
    """The schedule with the report entries merged in (as tasks.schedule declares them once merged), the
    report job every second instead of every minute."""
    import tasks.schedule
    from tasks.schedule import BEAT_SCHEDULE

    entry = {**BEAT_SCHEDULE["velaops: report jobs"], "schedule": timedelta(seconds=1)}
    schedule = {"velaops: report jobs": entry}
    # Beat prunes managed entries that tasks.schedule does not declare.
    monkeypatch.setattr(tasks.schedule, "BEAT_SCHEDULE", schedule)
    declared = app.conf.beat_schedule
    app.conf.update(beat_schedule=schedule)
    yield
    app.conf.update(beat_schedule=declared)


def test_a_missed_schedule_fires_once_through_beat_and_is_emailed(env_a, fast_report_jobs, tmp_path):
    schedule = ReportSchedule.objects.create(
        environment=env_a, name="Daily", hour=6, recipients=["lead@example.com"], formats=["pdf"]
    )
    # Due three days ago: the scheduler was down since.
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timedelta(days=3))
    mailbox = tmp_path / "mail"
    worker = start_worker(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mailbox)
    )
    service = beat.Service(app=app, scheduler_cls=DatabaseScheduler, max_interval=1)

    def run_beat():
        try:
            service.start()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run_beat, daemon=True)
    thread.start()
    try:
        wait_for(lambda: ReportDelivery.objects.filter(status="sent").exists(), timeout=90, what="the emailed report")
        time.sleep(3)  # a few more beat ticks: still one report
    finally:
        service.stop()
        thread.join(timeout=10)
        stop_worker(worker)
    report = Report.objects.get()
    assert report.schedule_id == schedule.pk and report.kind == "daily"
    assert report.period_end == ReportRequest.objects.get().period_end
    assert report.period_end <= timezone.now() < report.period_end + timedelta(days=1)  # the most recent day
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()
    (message,) = list(mailbox.iterdir())
    text = message.read_text()
    assert "To: lead@example.com" in text and report.title in text and "application/pdf" in text
