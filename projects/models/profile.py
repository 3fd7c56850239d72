"""A project's scanner profile: its binding to one scanner source, with how and when to import it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.urls import reverse

from integrations.fields import SecretField
from integrations.models import Integration

from ..choices import ACTIVE_RUN_STATUSES, ScheduleFrequency, SeverityShift
from .project import Project

if TYPE_CHECKING:
    from .run import ScanRun


class ScannerProfile(models.Model):
    """A project's binding to one Tenable.io scan, with how and when to import it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="profiles")
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="profiles")
    name = models.CharField("Profile Name", max_length=100)
    scan_id = models.BigIntegerField("Bind to")
    scan_schedule_uuid = models.CharField(max_length=100, blank=True)
    scan_name = models.CharField(max_length=300, blank=True)
    scan_missing = models.BooleanField(default=False)
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
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:profile", args=[self.project_id, self.pk])

    @property
    def active_run(self) -> ScanRun | None:
        return self.runs.filter(status__in=ACTIVE_RUN_STATUSES).first()

    @property
    def last_run(self) -> ScanRun | None:
        return self.runs.order_by("-created_at").first()
