"""The bookkeeping of vulnerability-data syncs: which export chunks a run merged, and who holds a connection.

`ExportChunk` is the ledger: a row is written in the same transaction as the chunk's findings, so a chunk is
merged exactly once per run however often its task is redelivered or retried, and the run's counts are the
sum of its rows. `ExportLease` makes one export job per connection run at a time across all workers.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, models
from django.db.models import Q
from django.utils import timezone

from integrations.models import Integration

from .run import ScanRun


class ExportChunk(models.Model):
    """One merged chunk of a run's export job (vulnerabilities or assets), with what merging it did.

    Unique per run, job and chunk: a redelivered or retried task of the same run skips what it merged; a new
    run of the profile merges again (idempotently) and counts only what it changed. `by_severity` counts the
    findings this run had not yet touched, by effective severity.
    """

    class Kind(models.TextChoices):
        VULNS = "vulns", "Vulnerabilities"
        ASSETS = "assets", "Assets"

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="export_chunks")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VULNS)
    job_uuid = models.CharField(max_length=100)
    chunk_id = models.IntegerField()
    findings = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    fixed = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    hosts = models.PositiveIntegerField(default=0)
    assets_gone = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(
        default=0
    )  # records set aside (schema drift), never silently dropped
    by_severity = models.JSONField(default=dict, blank=True)
    bytes = models.BigIntegerField(default=0)
    merged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "job_uuid", "chunk_id"], name="export_chunk_once_per_run")
        ]

    def __str__(self) -> str:
        return f"chunk {self.chunk_id} of {self.job_uuid} (run {self.run_id})"


class ExportLease(models.Model):
    """Which run may use a connection's bulk exports now: taken with a conditional update, so exactly one.

    A holder extends `expires_at` while it works (a heartbeat); a worker that died stops extending it, so its
    lease lapses and the next run (or the same run, redelivered) takes it.
    """

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="export_lease")
    run = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"export lease of {self.integration_id} (run {self.run_id})"

    @classmethod
    def take(cls, integration_id: int, run: ScanRun, seconds: float) -> tuple[bool, ScanRun | None]:
        """Take the connection's lease for `run` (or keep it, if `run` holds it): (True, None), or (False, the
        run that holds it). A lease that lapsed, or whose run has ended, is taken over."""
        try:
            cls.objects.get_or_create(integration_id=integration_id)
        except IntegrityError:  # another worker created the row this instant: it exists now
            pass
        for _ in range(2):
            now = timezone.now()
            taken = (
                cls.objects.filter(integration_id=integration_id)
                .filter(Q(run__isnull=True) | Q(run_id=run.pk) | Q(expires_at__lt=now))
                .update(run=run, expires_at=now + timedelta(seconds=seconds), taken_at=now)
            )
            if taken:
                return True, None
            holder_id = (
                cls.objects.filter(integration_id=integration_id).values_list("run_id", flat=True).first()
            )
            holder = ScanRun.objects.filter(pk=holder_id).select_related("profile").first()
            if holder is not None and holder.is_active:
                return False, holder
            # The holder ended without releasing it (a crash between its end and its release): free it, once.
            cls.objects.filter(integration_id=integration_id, run_id=holder_id).update(
                run=None, expires_at=None
            )
        return False, holder

    @classmethod
    def extend(cls, integration_id: int, run: ScanRun, seconds: float) -> bool:
        """The holder's heartbeat: keep the lease `seconds` more; False if `run` no longer holds it."""
        expires = timezone.now() + timedelta(seconds=seconds)
        return bool(
            cls.objects.filter(integration_id=integration_id, run_id=run.pk).update(expires_at=expires)
        )

    @classmethod
    def release(cls, run: ScanRun) -> None:
        """Give back whatever lease `run` holds (nothing happens if it holds none)."""
        cls.objects.filter(run_id=run.pk).update(run=None, expires_at=None)
