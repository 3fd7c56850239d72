"""Runs of scanner profiles: requesting one, and the pipeline a worker executes (DESIGN §4, steps 1–6).

Every run is a `ScanRun` row whose state changes are its methods (claim, start, finish, fail). Workers claim
it with a conditional update, report progress by updating the row, and finish it inside the import's
transaction. Failures leave findings exactly as they were and put a
sentence an admin can act on in `run.error`.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from accounts.models import record
from integrations.connectors import Connector, ConnectorError
from integrations.connectors.base import CAN_READ_SCAN_RESULTS
from integrations.formats import nessus
from integrations.formats.records import FormatError
from integrations.services import CredentialsUnavailable, open_connector

from ..choices import ACTIVE_RUN_STATUSES, RunStatus, Trigger
from ..models import ExportLease, ScannerProfile, ScanRun
from ..models.run import RunCanceled
from .export_sync import SyncFailed, WaitForConnection, sync_vulnerability_data
from .importer import ImportCounts, import_hosts

log = logging.getLogger(__name__)

MAX_ATTEMPTS = ScanRun.MAX_ATTEMPTS
# The tasks' names as queued messages, routes and beat know them (published by name: the task module imports
# this one, not the other way round).
RUN_SCAN_TASK = "projects.tasks.run_scan"
IMPORT_UPLOAD_TASK = "projects.tasks.import_uploaded_file"
SCHEDULED_RUN_TASK = "projects.tasks.run_scheduled_profile"  # what a profile's PeriodicTask calls
TERMINAL_TENABLE = {"completed", "imported", "canceled", "aborted", "stopped", "empty"}
# The run stays in the history as failed (its audit event and any scan.failed webhook refer to it): say so.
QUEUE_UNAVAILABLE = (
    "The job queue is unavailable, so this run could not be queued and is recorded as failed; nothing was "
    "imported. Try again in a minute; if it keeps failing, an administrator should check that Redis and the "
    "Celery worker are running."
)
NOT_QUEUED = "Not queued: the job queue was unavailable"


class RunRefused(Exception):
    """A run could not be requested; `run` is the active run that blocks it, or the run that could not be queued."""

    def __init__(self, message: str, run: ScanRun | None = None):
        super().__init__(message)
        self.message = message
        self.run = run


class RetryLater(Exception):
    """A transient failure: the task should try the run again after `countdown` seconds."""

    def __init__(self, countdown: float):
        super().__init__(countdown)
        self.countdown = countdown


class WaitLater(Exception):
    """The run waits for its connection (another run's export holds it): queue it again after `countdown`
    seconds as a fresh message, which spends neither an attempt nor a Celery retry."""

    def __init__(self, countdown: float):
        super().__init__(countdown)
        self.countdown = countdown


# ---------------------------------------------------------------------------------------------------------------
# Requesting runs
# ---------------------------------------------------------------------------------------------------------------
def request_run(profile: ScannerProfile, *, trigger: str = Trigger.MANUAL, user=None) -> ScanRun:
    """Create a queued run of `profile` and hand it to a worker; raises RunRefused when one is already active."""
    try:
        with transaction.atomic():
            run = ScanRun.objects.create(
                project=profile.project,
                profile=profile,
                trigger=trigger,
                requested_by=user if getattr(user, "is_authenticated", False) else None,
                tenable_scan_id=profile.scan_id,
                tenable_scan_name=profile.bound_label,
                message="Waiting for a worker",
            )
    except IntegrityError:
        active = profile.runs.filter(status__in=ACTIVE_RUN_STATUSES).first()
        label = f" (run #{active.pk}, {active.get_status_display().lower()})" if active else ""
        raise RunRefused(f"A run of {profile.name} is already in progress{label}.", active) from None
    record(user, "run.requested", run, None, profile=profile.name, trigger=trigger)
    enqueue(run)
    run.refresh_from_db()
    if run.status == RunStatus.FAILED:
        raise RunRefused(run.error, run)
    return run


def enqueue(run: ScanRun) -> None:
    """Publish the run's task once the row is committed; a dead or hung broker fails the run within seconds."""
    transaction.on_commit(partial(_publish, run.pk))


def _publish(run_id: int) -> None:
    try:
        # No publish retries: the broker's socket timeouts (settings.BROKER_TIMEOUT) bound a hung Redis (C4).
        current_app.tasks[RUN_SCAN_TASK].apply_async(args=[run_id], retry=False)
    except Exception:
        log.exception("Could not queue run %s", run_id)
        _fail_unqueued(run_id)


def _fail_unqueued(run_id: int) -> None:
    run = ScanRun.objects.filter(pk=run_id).first()
    if run is not None:
        run.fail(QUEUE_UNAVAILABLE, message=NOT_QUEUED)


def enqueue_upload(run: ScanRun, path: str) -> None:
    """Queue the import of an uploaded file; if the queue is down, fail the run and remove the file."""

    def publish() -> None:
        try:
            current_app.tasks[IMPORT_UPLOAD_TASK].apply_async(args=[run.pk, path], retry=False)
        except Exception:
            log.exception("Could not queue upload run %s", run.pk)
            Path(path).unlink(missing_ok=True)
            _fail_unqueued(run.pk)

    transaction.on_commit(publish)


def execute_upload(run_id: int, path: str, *, redelivered: bool = False) -> None:
    """Import an uploaded file for a claimed run, then delete the file whatever happened."""
    try:
        run = ScanRun.claim(run_id, redelivered=redelivered)
        if run is not None:
            try:
                import_upload(run, path)
            except RunCanceled:
                pass
            except Exception:
                log.exception("Upload run %s failed unexpectedly", run_id)
                run.fail(f"An unexpected error stopped run #{run_id}; nothing was imported.")
    finally:
        Path(path).unlink(missing_ok=True)


def cancel_run(run: ScanRun, user=None) -> bool:
    """Cancel an active run; the worker notices between steps and rolls back anything unfinished."""
    changed = run.cancel(by=getattr(user, "username", "system"))
    if changed:
        record(user, "run.canceled", run, None)
    return bool(changed)


# ---------------------------------------------------------------------------------------------------------------
# Executing runs (called by the Celery task)
# ---------------------------------------------------------------------------------------------------------------
def execute_run(run_id: int, *, redelivered: bool = False) -> None:
    """Run the whole pipeline for one claimed run; raises RetryLater for transient failures and WaitLater
    while another run's export holds the connection."""
    run = ScanRun.claim(run_id, redelivered=redelivered)
    if run is None:
        return
    try:
        _pipeline(run)
    except RunCanceled:
        log.info("Run %s was canceled", run.pk)
    except WaitForConnection as busy:
        run.wait_for_connection(busy.message)
        raise WaitLater(busy.countdown) from None
    except SyncFailed as exc:
        run.fail(exc.message)
    except SoftTimeLimitExceeded:
        minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT // 60
        run.fail(
            f"The run took longer than its {minutes}-minute limit and was stopped; nothing was imported. "
            "Very large scans may need a higher CELERY_TASK_SOFT_TIME_LIMIT.",
        )
    except ConnectorError as exc:
        _fail_or_retry(run, exc.message, permanent=exc.permanent, retry_after=exc.retry_after)
    except CredentialsUnavailable as exc:
        run.fail(exc.message)
    except FormatError as exc:
        run.fail(f"{exc.message} Nothing was imported from this run.")
    except Exception:
        log.exception("Run %s failed unexpectedly", run.pk)
        run.fail(
            f"An unexpected error stopped run #{run.pk}; nothing was imported. Details are in the worker log.",
        )


def _pipeline(run: ScanRun) -> None:
    profile = run.profile
    if profile.is_export:
        options = {"max_chunk_downloads": settings.EXPORT_CHUNK_DOWNLOADS}
        with open_connector(profile.integration, budget=300.0, **options) as connector:
            sync_vulnerability_data(run, connector)
        return
    with open_connector(profile.integration, budget=300.0) as connector:
        _pipeline_with(run, connector)


def _pipeline_with(run: ScanRun, connector: Connector) -> None:
    profile = run.profile
    scan_id = profile.scan_id
    run_uuid = ""
    if profile.start_scan:
        run.start(RunStatus.LAUNCHING, "Launching the Tenable.io scan")
        run_uuid = run.tenable_run_uuid or connector.launch(scan_id)
        ScanRun.objects.filter(pk=run.pk).update(tenable_run_uuid=run_uuid)
        run.start(RunStatus.WAITING, "Waiting for the Tenable.io scan to finish")
        status = _wait_for_scan(run, connector, scan_id)
        if status in ("canceled", "aborted", "stopped"):
            run.fail(
                tenable_status=status,
                error=f"The Tenable.io scan ended as “{status}”, so there is nothing complete to import. Check the scan in Tenable.io and run again.",
            )
            return
    try:
        details = connector.describe_source(scan_id)
    except ConnectorError as exc:
        if exc.kind == "forbidden":
            raise _forbidden_scan(connector, exc) from None
        raise
    entry = _choose_history(details.history, run_uuid)
    if entry is None:
        run.fail(
            "This Tenable.io scan has no completed run to import yet. Run it in Tenable.io, or turn on Start Scan.",
        )
        return
    ScanRun.objects.filter(pk=run.pk).update(
        tenable_run_uuid=entry.uuid,
        tenable_history_id=entry.history_id,
        tenable_status=entry.status,
        tenable_scan_name=details.name[:300],
        progress_total=details.host_count,
    )
    # Name the run that imported this Tenable run, never a later up-to-date run that merely found it.
    importer = (
        profile.runs.filter(status=RunStatus.SUCCEEDED, up_to_date=False, tenable_run_uuid=entry.uuid)
        .exclude(pk=run.pk)
        .order_by("created_at", "pk")
        .first()
    )
    if importer:
        run.finish(
            RunStatus.SUCCEEDED,
            up_to_date=True,
            message=f"Up to date: this Tenable.io run was already imported by run #{importer.pk}",
            # Nothing was left to do: report the work as complete (done == total), not 0 of N at 100 %.
            progress_done=details.host_count or 0,
            progress_total=details.host_count,
        )
        return
    run.start(RunStatus.EXPORTING, "Exporting the results from Tenable.io")
    with connector.open_findings(
        scan_id, entry.history_id, deadline=settings.TENABLE_EXPORT_DEADLINE
    ) as hosts:
        run.start(RunStatus.IMPORTING, "Importing findings")
        import_hosts(
            run,
            hosts,
            severity_shift=profile.severity_shift,
            on_progress=run.report_progress,
            on_merged=partial(_succeed, run),
        )


def _forbidden_scan(connector: Connector, refused: ConnectorError) -> ConnectorError:
    """A refused scan read, in the words of the key's checklist: which role it lacks (a Basic key lists scans but
    may not read them), and the way that works with it."""
    try:
        capability = connector.test_connection().capability(CAN_READ_SCAN_RESULTS)
    except ConnectorError:
        return refused
    if capability is None or capability.usable:
        return refused
    return ConnectorError(
        f"{capability.sentence} Bind this profile to Vulnerability data instead (Tenable.io's exports work with "
        "this key), or give the key's user that role.",
        kind="forbidden",
        permanent=True,
        status=refused.status,
    )


def import_upload(run: ScanRun, path: str) -> None:
    """Import an uploaded `.nessus` file through the same importer (no Tenable calls, no severity shift)."""
    run.start(RunStatus.IMPORTING, "Importing the uploaded file")
    try:
        import_hosts(
            run, nessus.iter_hosts(path), on_progress=run.report_progress, on_merged=partial(_succeed, run)
        )
    except FormatError as exc:
        run.fail(f"{exc.message} Nothing was imported.")


def _wait_for_scan(run: ScanRun, connector: Connector, scan_id) -> str:
    """Poll the cheap latest-status call with backoff until the scan ends or the deadline passes."""
    deadline = time.monotonic() + settings.TENABLE_SCAN_WAIT_SECONDS
    delay = settings.TENABLE_POLL_INITIAL
    while True:
        status = connector.latest_status(scan_id)
        ScanRun.objects.filter(pk=run.pk).update(tenable_status=status, heartbeat_at=timezone.now())
        if status in TERMINAL_TENABLE:
            return status
        run.check_canceled()
        if time.monotonic() + delay > deadline:
            raise ConnectorError(
                f"The Tenable.io scan was still “{status}” after {settings.TENABLE_SCAN_WAIT_SECONDS // 60} minutes; "
                "the next run will pick up its results.",
                kind="timeout",
                permanent=True,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, settings.TENABLE_POLL_MAX)


def _choose_history(history, run_uuid: str):
    """The launched run when there is one, else the newest completed (or imported) run."""
    if run_uuid:
        return next(
            (h for h in history if h.uuid == run_uuid and h.status in ("completed", "imported")), None
        )
    return next((h for h in history if h.status in ("completed", "imported")), None)


def imported_message(findings: int, hosts: int) -> str:
    """The run's one-line summary, in words: "Imported 1 finding from 1 host", "Imported 1,200 findings from 3 hosts"."""
    return f"Imported {intcomma(findings)} finding{pluralize(findings)} from {intcomma(hosts)} host{pluralize(hosts)}"


def _succeed(run: ScanRun, counts: ImportCounts) -> None:
    """Finish the run inside the import transaction: counts, status, audit event."""
    run.check_canceled()
    run.finish(
        RunStatus.SUCCEEDED,
        message=imported_message(counts.total, counts.hosts),
        count_total=counts.total,
        count_new=counts.new,
        count_fixed=counts.fixed,
        count_reopened=counts.reopened,
        count_unchanged=counts.unchanged,
        count_hosts=counts.hosts,
        count_by_severity=counts.by_severity,
        log=counts.log,
        progress_done=counts.hosts,
        progress_total=counts.hosts,
    )
    record(
        None,
        "run.succeeded",
        run,
        None,
        new=counts.new,
        fixed=counts.fixed,
        reopened=counts.reopened,
        total=counts.total,
    )


def _fail_or_retry(run: ScanRun, message: str, *, permanent: bool, retry_after: float | None) -> None:
    if permanent or run.attempts >= MAX_ATTEMPTS:
        run.fail(message)
        ExportLease.release(run)  # a sync that kept its connection for a retry gives it back now
        return
    countdown = max(retry_after or 0, settings.RUN_RETRY_BASE * 2 ** (run.attempts - 1))
    run.requeue(f"Retrying in {int(countdown)} s: {message}")
    if run.profile is not None and run.profile.is_export:
        # The retry continues the same export job: it keeps the connection until then (and a while after).
        ExportLease.extend(run.profile.integration_id, run, countdown + settings.EXPORT_LEASE_SECONDS)
    raise RetryLater(countdown)


def sweep_stale_runs(now=None) -> int:
    """Fail runs whose worker went silent (no heartbeat), so nothing shows 'running' forever."""
    now = now or timezone.now()
    stale = ScanRun.objects.filter(
        status__in=[s for s in ACTIVE_RUN_STATUSES if s != RunStatus.QUEUED],
        heartbeat_at__lt=now - timedelta(seconds=settings.RUN_STALE_AFTER),
    ).exclude(
        status=RunStatus.WAITING, heartbeat_at__gte=now - timedelta(seconds=settings.RUN_STALE_AFTER * 4)
    )
    # A queued run that waits for its connection (another run's export) or a retry keeps a fresh heartbeat.
    never_started = ScanRun.objects.filter(
        status=RunStatus.QUEUED, created_at__lt=now - timedelta(seconds=settings.RUN_STALE_AFTER * 2)
    ).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=settings.RUN_STALE_AFTER))
    )
    count = 0
    for run in [*stale, *never_started]:
        run.fail(
            "The worker stopped responding during this run; nothing from it was imported. Run it again.",
        )
        count += 1
    return count
