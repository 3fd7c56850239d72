"""A run of a scanner profile (or an upload), its state changes, and the hosts it covered.

Background writers change a run with `filter(pk=…, status__in=active).update(…)`, never `save()`, so a cancel
or another worker's change is never overwritten; each transition below is one such update.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone

from ..choices import ACTIVE_RUN_STATUSES, SEVERITY_BADGE, RunStatus, Trigger
from ..signals import run_finished
from .profile import ScannerProfile
from .project import Project

log = logging.getLogger(__name__)

# A run that did not succeed kept nothing, whatever its progress reports wrote while importing.
NOTHING_KEPT = dict(
    count_total=0,
    count_new=0,
    count_fixed=0,
    count_reopened=0,
    count_unchanged=0,
    count_hosts=0,
    count_by_severity={},
)


class RunCanceled(Exception):
    """The run was canceled while a worker had it: stop, and let the import roll back."""


class ScanRun(models.Model):
    """One execution of a profile (or one upload): the row every page, progress bar, API call and webhook reads."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    profile = models.ForeignKey(
        ScannerProfile, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    tenable_scan_id = models.BigIntegerField(null=True, blank=True)
    tenable_scan_name = models.CharField(max_length=300, blank=True)
    tenable_run_uuid = models.CharField(max_length=100, blank=True)
    tenable_history_id = models.BigIntegerField(null=True, blank=True)
    tenable_status = models.CharField(max_length=32, blank=True)
    source_name = models.CharField(max_length=300, blank=True)  # uploaded file name, shown only
    # A vulnerability-data sync: the Tenable export job it follows (a redelivered task adopts it again) and
    # when that job was requested (Tenable's own clock where it says): the profile's cursor once it succeeds.
    export_job_uuid = models.CharField(max_length=100, blank=True)
    export_requested_at = models.DateTimeField(null=True, blank=True)
    export_since = models.DateTimeField(null=True, blank=True)  # the `since` it asked for (None: everything)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    count_total = models.PositiveIntegerField(default=0)
    count_new = models.PositiveIntegerField(default=0)
    count_fixed = models.PositiveIntegerField(default=0)
    count_reopened = models.PositiveIntegerField(default=0)
    count_unchanged = models.PositiveIntegerField(default=0)
    count_hosts = models.PositiveIntegerField(default=0)
    count_by_severity = models.JSONField(default=dict, blank=True)  # {"4": 3, "3": 10, ...} of findings seen
    up_to_date = models.BooleanField(default=False)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One active run per profile, enforced by the database rather than a check-then-act.
            models.UniqueConstraint(
                fields=["profile"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="one_active_run_per_profile",
            ),
        ]
        indexes = [models.Index(fields=["profile", "-created_at"])]

    def __str__(self) -> str:
        return f"Run #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("projects:run", args=[self.project_id, self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def progress_unit(self) -> str:
        """What `progress_done` / `progress_total` count: export chunks for vulnerability data, else hosts."""
        return "chunks" if self.profile_id and self.profile.is_export else "hosts"

    @property
    def progress_percent(self) -> int | None:
        if self.status == RunStatus.SUCCEEDED:
            return 100
        if not self.progress_total:
            return None
        return min(100, int(100 * self.progress_done / self.progress_total))

    def counts(self) -> dict:
        """The run's counts as the API, webhooks and kdt show them, severities by name (critical first)."""
        return {
            "total": self.count_total,
            "new": self.count_new,
            "fixed": self.count_fixed,
            "reopened": self.count_reopened,
            "unchanged": self.count_unchanged,
            "hosts": self.count_hosts,
            "by_severity": {
                SEVERITY_BADGE[s]: int(self.count_by_severity.get(str(s), 0) or 0)
                for s in sorted(SEVERITY_BADGE, reverse=True)
            },
        }

    @property
    def elapsed(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # -- transitions (like NetBox's Job.start()/terminate()) ---------------------------------------------------

    MAX_ATTEMPTS = 4

    @classmethod
    def claim(cls, run_id: int, *, redelivered: bool = False) -> ScanRun | None:
        """Take the run for this worker, or None if another worker has it, it is finished, or it was canceled.

        A redelivered message (the previous worker died) may take over an active run, up to MAX_ATTEMPTS times.
        """
        statuses = ACTIVE_RUN_STATUSES if redelivered else [RunStatus.QUEUED]
        now = timezone.now()
        claimed = cls.objects.filter(pk=run_id, status__in=statuses).update(
            status=RunStatus.QUEUED,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            progress_done=0,
        )
        if not claimed:
            return None
        run = cls.objects.select_related("project", "profile__integration").get(pk=run_id)
        if run.attempts > cls.MAX_ATTEMPTS:
            reason = "the worker stopped (killed or out of memory)" if redelivered else "it kept failing"
            run.fail(
                f"Gave up after {cls.MAX_ATTEMPTS} attempts: {reason}. Check the worker's logs and memory."
            )
            return None
        return run

    def check_canceled(self) -> None:
        """Raise RunCanceled if someone canceled the run meanwhile (workers look between steps)."""
        if type(self).objects.filter(pk=self.pk, status=RunStatus.CANCELED).exists():
            raise RunCanceled

    def start(self, status: str, message: str) -> None:
        """Enter a working phase (launching, waiting, exporting, importing) with the line the run page shows."""
        self.check_canceled()
        type(self).objects.filter(pk=self.pk, status__in=ACTIVE_RUN_STATUSES).update(
            status=status, message=message, heartbeat_at=timezone.now()
        )

    def report_progress(self, items: int, hosts: int) -> None:
        """Hosts and findings read so far (and a heartbeat); stops the import if the run was canceled."""
        self.check_canceled()
        type(self).objects.filter(pk=self.pk).update(
            progress_done=hosts, count_total=items, heartbeat_at=timezone.now()
        )

    def finish(self, status: str = RunStatus.SUCCEEDED, **fields) -> bool:
        """End an active run; False if it had already ended. A failed run says it kept nothing.

        `run_finished` is sent in the same transaction as the update (inside the import's, when there is one),
        so what receivers write commits with the run's outcome.
        """
        fields.setdefault("finished_at", timezone.now())
        if status == RunStatus.FAILED:
            fields = {**fields, **NOTHING_KEPT}
        with transaction.atomic():
            finished = (
                type(self)
                .objects.filter(pk=self.pk, status__in=ACTIVE_RUN_STATUSES)
                .update(status=status, **fields)
            )
            if finished:
                for name, value in {"status": status, **fields}.items():
                    setattr(self, name, value)
                run_finished.send(sender=type(self), run=self)
        if status == RunStatus.FAILED:
            log.warning("Run %s failed: %s", self.pk, fields.get("error", ""))
        return bool(finished)

    def fail(self, error: str, **fields) -> bool:
        """End an active run as failed with a sentence an admin can act on; nothing it imported is kept."""
        return self.finish(RunStatus.FAILED, error=error, **fields)

    def wait_for_connection(self, message: str) -> None:
        """Back in the queue behind another run's export on the same connection: a wait, not an attempt."""
        type(self).objects.filter(pk=self.pk, status__in=ACTIVE_RUN_STATUSES).update(
            status=RunStatus.QUEUED,
            message=message[:500],
            heartbeat_at=timezone.now(),
            attempts=Greatest(F("attempts") - 1, 0),
        )

    def requeue(self, message: str) -> None:
        """Put a run that hit a transient failure back in the queue for its retry, keeping nothing."""
        type(self).objects.filter(pk=self.pk, status__in=ACTIVE_RUN_STATUSES).update(
            status=RunStatus.QUEUED, message=message[:500], error="", **NOTHING_KEPT
        )

    def cancel(self, by: str = "system") -> bool:
        """Cancel an active run; the worker notices between steps and rolls back anything unfinished."""
        return bool(
            type(self)
            .objects.filter(pk=self.pk, status__in=ACTIVE_RUN_STATUSES)
            .update(
                status=RunStatus.CANCELED,
                finished_at=timezone.now(),
                message=f"Canceled by {by}",
                **NOTHING_KEPT,  # the worker rolls back whatever it had merged
            )
        )


class RunAsset(models.Model):
    """A host a run covered. Closure of fixed findings is scoped to these, and it records "last seen" per run/host
    so that re-imports need not rewrite every unchanged finding."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="run_assets")
    asset = models.ForeignKey("projects.Asset", on_delete=models.CASCADE, related_name="run_assets")
    findings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "asset"], name="run_asset_unique")]

    def __str__(self) -> str:
        return f"{self.asset_id} in run {self.run_id}"
