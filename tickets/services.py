"""Ticket syncs: the outbox (a row per run, written in the run's transaction), claiming and processing a row,
the per-connection lease (one request stream per Jira connection across workers), the sweeper, and the manual
"Create Jira ticket" and "Sync now", which go through the same outbox.

Every sync is a `TicketSync` row created inside a transaction and handed to a worker after the commit. The task
claims the row with a conditional update, takes the connection's lease, runs `sync.TicketSyncer`, and records the
outcome; a transient failure (rate limit, timeout, a lost answer) puts the row back with its next attempt time,
never in a tight loop. Syncs are reconciliations, so a retried one is simply run again.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import record
from integrations.connectors import TICKETING, TicketingError
from integrations.services import CredentialsUnavailable, open_connector
from projects.choices import RunStatus
from projects.models import Finding, Project, ScanRun

from .choices import LinkState, SyncStatus, SyncTrigger
from .models import ConnectionLease, TicketLink, TicketMapping, TicketRequest, TicketSync
from .sync import Outcome, TicketSyncer

log = logging.getLogger(__name__)

SYNC_TASK = "tickets.tasks.sync_tickets"
LEASE_SECONDS = 300  # a sync renews its lease well before this; a dead worker's lease lapses after it
BUSY_RETRY = 15.0  # seconds before trying again when another sync holds the connection
MAX_ATTEMPTS = 10  # transient failures before a sync is marked failed
RETRY_BASE, RETRY_MAX = 30.0, 900.0  # backoff after a transient failure without Retry-After, and its bound
SWEEP_GRACE = timedelta(seconds=30)
# Per call to Jira: retries (429 honoured) within this many seconds before the sync gives up and comes back later.
CALL_BUDGET = 60.0


class Busy(Exception):
    """Another worker holds the connection's lease: try again shortly."""


class LeaseLost(Exception):
    """The lease lapsed while this worker held it (a long stall): stop, another worker may be calling Jira."""


# ---------------------------------------------------------------------------------------------------------------
# The outbox
# ---------------------------------------------------------------------------------------------------------------
def mapping_for(project: Project) -> TicketMapping | None:
    return TicketMapping.objects.select_related("integration").filter(project=project).first()


def queue_for_run(run: ScanRun) -> TicketSync | None:
    """Write the sync row of a finished run; call it inside the transaction that finishes the run.

    Failed, canceled and up-to-date runs change no finding, so they queue nothing; neither does a project
    without an active mapping.
    """
    try:
        with transaction.atomic():  # a savepoint: a broken sync row must not cost the run its import
            run = ScanRun.objects.select_related("project").get(pk=run.pk)  # the caller's copy is stale
            if run.status != RunStatus.SUCCEEDED or run.up_to_date:
                return None
            mapping = mapping_for(run.project)
            if mapping is None or not mapping.active:
                return None
            sync, created = TicketSync.objects.get_or_create(
                run=run, defaults={"project": run.project, "trigger": SyncTrigger.RUN}
            )
            if created:
                enqueue(sync.pk)
            return sync
    except Exception:
        log.exception("Could not queue the ticket sync of run %s", run.pk)
        return None


def queue(project: Project, trigger: str, user=None) -> TicketSync:
    """A sync row for Create Jira ticket or Sync now, handed to a worker when the transaction commits."""
    sync = TicketSync.objects.create(project=project, trigger=trigger, requested_by=_user(user))
    enqueue(sync.pk)
    return sync


def enqueue(sync_id: int) -> None:
    """Publish the sync's task after commit; a dead broker only delays it (the sweeper picks the row up)."""
    transaction.on_commit(lambda: _publish(sync_id))


def _publish(sync_id: int, countdown: float | None = None) -> None:
    try:
        # By name: the task module imports this one, not the other way round.
        current_app.tasks[SYNC_TASK].apply_async(args=[sync_id], countdown=countdown, retry=False)
    except Exception:
        log.warning("Could not queue ticket sync %s; the sweeper will retry", sync_id, exc_info=True)


@dataclass
class Requested:
    """What Create Jira ticket did: findings asked for, and those refused with why."""

    sync: TicketSync | None
    accepted: int
    refused: list[str]


def request_tickets(project: Project, findings: Iterable[Finding], user, request=None) -> Requested:
    """Create Jira ticket (one finding, or a selection): remember the findings (they get a ticket whatever the
    threshold) and queue a sync; the worker creates the tickets through the same path as after a run."""
    mapping = mapping_for(project)
    if mapping is None or not mapping.active:
        return Requested(None, 0, ["Jira tickets are not set up for this project (Settings › Jira)."])
    accepted, refused = 0, []
    today = timezone.localdate()
    with transaction.atomic():
        for finding in findings:
            label = f"{finding.plugin.name} on {finding.asset.name}"
            if not finding.is_open:
                refused.append(f"{label} is fixed.")
                continue
            if finding.triage and not (
                finding.triage_until and finding.triage_until < today and finding.triage == "risk_accepted"
            ):
                refused.append(
                    f"{label} is marked {finding.get_triage_display().lower()}: clear its triage first."
                )
                continue
            TicketRequest.objects.get_or_create(
                finding=finding, defaults={"project": project, "requested_by": _user(user)}
            )
            # A ticket deleted in Jira is replaced only when someone asks.
            TicketLink.objects.filter(project=project, finding=finding, state=LinkState.GONE).delete()
            accepted += 1
        sync = queue(project, SyncTrigger.MANUAL, user) if accepted else None
        if accepted:
            record(user, "tickets.requested", project, request, findings=accepted)
    return Requested(sync, accepted, refused)


def sync_now(project: Project, user, request=None) -> TicketSync:
    with transaction.atomic():
        sync = queue(project, SyncTrigger.SYNC_NOW, user)
        record(user, "tickets.sync_requested", project, request)
    return sync


# ---------------------------------------------------------------------------------------------------------------
# The lease: one request stream per ticketing connection
# ---------------------------------------------------------------------------------------------------------------
class Lease:
    """The connection's lease for one sync: taken with a conditional update, renewed as calls go out, released."""

    def __init__(self, integration_id: int, holder: str, seconds: float = LEASE_SECONDS) -> None:
        self.integration_id, self.holder, self.seconds = integration_id, holder, seconds
        self.renewed_at = None

    def take(self) -> bool:
        now = timezone.now()
        try:
            ConnectionLease.objects.get_or_create(integration_id=self.integration_id)
        except IntegrityError:
            pass  # another worker made the row at the same moment
        taken = (
            ConnectionLease.objects.filter(integration_id=self.integration_id)
            .filter(Q(expires_at__lt=now) | Q(holder=self.holder) | Q(holder=""))
            .update(holder=self.holder, expires_at=now + timedelta(seconds=self.seconds))
        )
        self.renewed_at = now if taken else None
        return bool(taken)

    def renew(self) -> None:
        """Called before each call to the service; extends the lease once a third of it has passed."""
        now = timezone.now()
        if self.renewed_at and now - self.renewed_at < timedelta(seconds=self.seconds / 3):
            return
        kept = ConnectionLease.objects.filter(integration_id=self.integration_id, holder=self.holder).update(
            expires_at=now + timedelta(seconds=self.seconds)
        )
        if not kept:
            raise LeaseLost
        self.renewed_at = now

    def release(self) -> None:
        ConnectionLease.objects.filter(integration_id=self.integration_id, holder=self.holder).update(
            holder="", expires_at=timezone.now()
        )


# ---------------------------------------------------------------------------------------------------------------
# Processing one row (called by the task)
# ---------------------------------------------------------------------------------------------------------------
def claim(sync_id: int) -> TicketSync | None:
    """Take a due, pending sync for this worker (one conditional update), or None if it is not ours to run."""
    now = timezone.now()
    claimed = TicketSync.objects.filter(
        pk=sync_id, status=SyncStatus.PENDING, next_attempt_at__lte=now
    ).update(
        status=SyncStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        next_attempt_at=now + timedelta(seconds=LEASE_SECONDS),
    )
    if not claimed:
        return None
    return TicketSync.objects.select_related("project", "run").get(pk=sync_id)


def connector_options() -> dict[str, Any]:
    """Options for the ticketing connector of a background sync (tests add a fake clock here)."""
    return {"budget": CALL_BUDGET}


def process(sync_id: int) -> float | None:
    """Claim the sync, run it under the connection's lease, record the outcome.

    Returns the seconds until the next attempt when it should be tried again (busy connection, rate limit,
    transient failure, search catching up), else None.
    """
    sync = claim(sync_id)
    if sync is None:
        return None
    mapping = mapping_for(sync.project)
    if mapping is None or not mapping.active:
        _finish(sync, Outcome(), message="Jira tickets are turned off for this project: nothing was sent.")
        return None
    lease = Lease(mapping.integration_id, f"sync-{sync.pk}-{uuid.uuid4().hex[:12]}")
    if not lease.take():
        return _again(sync, BUSY_RETRY, "Another sync is using this Jira connection; this one follows.")
    try:
        try:
            connector = open_connector(mapping.integration, kind=TICKETING, **connector_options())
        except CredentialsUnavailable as exc:
            return _fail(sync, exc.message)
        with connector:
            outcome = TicketSyncer(sync, mapping, connector, tick=lease.renew).run()
    except LeaseLost:
        return _again(
            sync, BUSY_RETRY, "This sync lost its hold on the Jira connection; it continues shortly."
        )
    except TicketingError as exc:
        if exc.permanent:
            return _fail(sync, exc.message)
        wait = exc.retry_after or min(RETRY_MAX, RETRY_BASE * 2 ** max(sync.attempts - 1, 0))
        if exc.outcome_unknown:
            wait = max(wait, settings.TICKETS_SEARCH_SETTLE_SECONDS)  # let search catch up before looking
        wait = min(wait, RETRY_MAX) * random.uniform(1.0, 1.2)
        if sync.attempts >= MAX_ATTEMPTS:
            return _fail(sync, f"Gave up after {sync.attempts} attempts: {exc.message}")
        return _again(sync, wait, f"{exc.message} Continuing in {wait:.0f} s.")
    finally:
        lease.release()
    if outcome.retry_after is not None and sync.attempts < MAX_ATTEMPTS:
        _record(sync, outcome)
        return _again(sync, outcome.retry_after, " ".join(outcome.messages))
    _finish(sync, outcome)
    return None


def _record(sync: TicketSync, outcome: Outcome) -> None:
    """Add what this pass did to the row's counts (a sync may take several passes)."""
    TicketSync.objects.filter(pk=sync.pk).update(
        **{name: F(name) + value for name, value in outcome.counts().items() if name != "waiting"},
        waiting=outcome.waiting,
    )


def _finish(sync: TicketSync, outcome: Outcome, message: str = "") -> None:
    now = timezone.now()
    with transaction.atomic():
        _record(sync, outcome)
        TicketSync.objects.filter(pk=sync.pk).update(
            status=SyncStatus.DONE,
            finished_at=now,
            message=(message or " ".join(outcome.messages))[:500],
            error="",
        )
        # Rows queued before this one started are covered by it: it read the findings after they committed.
        TicketSync.objects.filter(
            project=sync.project, status=SyncStatus.PENDING, created_at__lte=sync.started_at
        ).exclude(pk=sync.pk).update(
            status=SyncStatus.DONE, finished_at=now, message=f"Covered by sync #{sync.pk}."
        )


def _again(sync: TicketSync, seconds: float, message: str) -> float:
    TicketSync.objects.filter(pk=sync.pk, status=SyncStatus.RUNNING).update(
        status=SyncStatus.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=seconds),
        message=message[:500],
    )
    return seconds


def _fail(sync: TicketSync, message: str) -> None:
    log.warning("Ticket sync %s failed: %s", sync.pk, message)
    TicketSync.objects.filter(pk=sync.pk).update(
        status=SyncStatus.FAILED, finished_at=timezone.now(), error=message, message=""
    )
    return None


def sweep() -> int:
    """Re-publish due pending syncs (lost messages, retries) and put back running ones whose worker went silent."""
    now = timezone.now()
    TicketSync.objects.filter(status=SyncStatus.RUNNING, next_attempt_at__lt=now).update(
        status=SyncStatus.PENDING, next_attempt_at=now
    )
    due = list(
        TicketSync.objects.filter(
            status=SyncStatus.PENDING, next_attempt_at__lte=now - SWEEP_GRACE
        ).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        _publish(pk)
    return len(due)


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None
