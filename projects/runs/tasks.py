"""Celery tasks of runs: thin wrappers that take ids and call `runs.services`.

Each keeps the name it had in `projects.tasks` (queued messages, routes, beat and PeriodicTask rows use it);
`projects/tasks.py` imports this module so Celery's autodiscovery finds them.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from ..choices import Trigger
from ..models import ScannerProfile
from .services import (
    IMPORT_UPLOAD_TASK,
    MAX_ATTEMPTS,
    RUN_SCAN_TASK,
    SCHEDULED_RUN_TASK,
    RetryLater,
    RunRefused,
    WaitLater,
    execute_run,
    execute_upload,
    request_run,
)
from .services import sweep_stale_runs as sweep

log = logging.getLogger(__name__)


@shared_task(
    name=RUN_SCAN_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_ATTEMPTS,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def run_scan(self, run_id: int) -> None:
    """Execute one run of a scanner profile; transient Tenable failures retry with backoff (bounded)."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    try:
        execute_run(run_id, redelivered=redelivered)
    except RetryLater as wait:
        raise self.retry(countdown=wait.countdown)
    except WaitLater as wait:
        # Behind another run's export on the same connection: a fresh message, so waiting spends no retry.
        run_scan.apply_async(args=[run_id], countdown=wait.countdown)


@shared_task(
    name=IMPORT_UPLOAD_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def import_uploaded_file(self, run_id: int, path: str) -> None:
    """Import an uploaded `.nessus` file (streamed to disk by the web process) into its run's project."""
    execute_upload(run_id, path, redelivered=bool((self.request.delivery_info or {}).get("redelivered")))


@shared_task(name=SCHEDULED_RUN_TASK)
def run_scheduled_profile(profile_id: int) -> None:
    """Beat's tick for a profile's Scheduler: request a run, or skip (logged) while one is still active."""
    profile = ScannerProfile.objects.filter(pk=profile_id).select_related("project").first()
    if profile is None:
        log.warning("Scheduled run skipped: scanner profile %s no longer exists", profile_id)
        return
    try:
        request_run(profile, trigger=Trigger.SCHEDULE)
    except RunRefused as refused:
        log.info("Scheduled run of profile %s skipped: %s", profile_id, refused.message)


@shared_task(name="projects.tasks.sweep_stale_runs")
def sweep_stale_runs() -> int:
    """Fail runs whose worker died without a trace (no heartbeat), so none shows 'running' forever."""
    return sweep()
