"""A project's scanner profile: its binding to one scanner source, with how and when to import it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.urls import reverse

from integrations.fields import SecretField
from integrations.models import Integration

from ..choices import ACTIVE_RUN_STATUSES, ScheduleFrequency, SeverityShift, SourceKind
from .project import Project

if TYPE_CHECKING:
    from .run import ScanRun


class ScannerProfile(models.Model):
    """A project's binding to one Tenable.io source, with how and when to import it.

    The source is one scan (`scan_id`, imported run by run) or "Vulnerability data" (`export_scope`: all the
    assets the key may view, or one tag), synced through Tenable's bulk exports: everything on the first sync
    (or the last `first_sync_days`), then incrementally from `sync_cursor`, the time the last fully
    successful sync requested its export. Check constraints keep the two kinds coherent.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="profiles")
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="profiles")
    name = models.CharField("Profile Name", max_length=100)
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.SCAN)
    scan_id = models.BigIntegerField("Bind to", null=True, blank=True)
    scan_schedule_uuid = models.CharField(max_length=100, blank=True)
    scan_name = models.CharField(max_length=300, blank=True)
    scan_missing = models.BooleanField(default=False)
    # Vulnerability data: "all", or "tag:<tag value uuid>" with its category and value (the export's filter)
    # and the label as last seen ("All assets this key can view", "Location: Dallas").
    export_scope = models.CharField(max_length=150, blank=True)
    scope_category = models.CharField(max_length=255, blank=True)
    scope_value = models.CharField(max_length=255, blank=True)
    scope_label = models.CharField(max_length=600, blank=True)
    sync_severities = models.CharField(max_length=50, blank=True)  # "critical,high"; blank = all
    include_unlicensed = models.BooleanField(default=False)
    first_sync_days = models.PositiveIntegerField(null=True, blank=True)  # None = everything
    sync_cursor = models.DateTimeField(null=True, blank=True)
    meta_data = models.CharField("Meta Data", max_length=500)
    scan_tag = models.CharField("Scan Tag", max_length=100, blank=True)
    start_scan = models.BooleanField("Start Scan", default=False)
    severity_shift = models.SmallIntegerField(choices=SeverityShift.choices, default=SeverityShift.NONE)
    scheduler_enabled = models.BooleanField("Scheduler", default=False)
    schedule_frequency = models.CharField(
        max_length=10, choices=ScheduleFrequency.choices, default=ScheduleFrequency.DAILY
    )
    schedule_time = models.TimeField(null=True, blank=True)
    schedule_days = models.CharField(max_length=20, blank=True)  # cron day-of-week numbers, "1,3,5"
    schedule_cron = models.CharField(max_length=100, blank=True)
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_url = models.URLField("Webhook", max_length=2048, blank=True)
    webhook_secret = SecretField(blank=True)
    webhook_previous_secret = SecretField(blank=True)
    webhook_previous_secret_expires = models.DateTimeField(null=True, blank=True)
    webhook_disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="profile_name_unique_in_project"),
            # Severity+ and Severity- are one field, so both cannot be on; this keeps the value in range.
            models.CheckConstraint(
                condition=Q(severity_shift__in=[-1, 0, 1]), name="severity_shift_in_range"
            ),
            # A scan profile has a scan and no scope; a vulnerability-data profile has a scope, no scan, and
            # nothing to start (Start Scan does not apply to a bulk export).
            models.CheckConstraint(
                condition=(
                    Q(source_kind=SourceKind.SCAN, scan_id__isnull=False, export_scope="")
                    | (
                        Q(source_kind=SourceKind.EXPORT, scan_id__isnull=True, start_scan=False)
                        & ~Q(export_scope="")
                    )
                ),
                name="profile_source_coherent",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:profile", args=[self.project_id, self.pk])

    @property
    def is_export(self) -> bool:
        """Bound to "Vulnerability data" (bulk exports) rather than one scan."""
        return self.source_kind == SourceKind.EXPORT

    @property
    def bound_label(self) -> str:
        """What the profile is bound to, in words: the scan's or the scope's name as last seen."""
        return (self.scope_label if self.is_export else self.scan_name) or ""

    @property
    def severities(self) -> tuple[str, ...]:
        """The severity words a sync asks for (empty: all of them)."""
        return tuple(word for word in self.sync_severities.split(",") if word)

    @property
    def active_run(self) -> ScanRun | None:
        return self.runs.filter(status__in=ACTIVE_RUN_STATUSES).first()

    @property
    def last_run(self) -> ScanRun | None:
        return self.runs.order_by("-created_at").first()
