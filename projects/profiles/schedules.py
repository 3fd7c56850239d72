"""A profile's Scheduler as one django-celery-beat PeriodicTask: create, update, disable, delete, next run."""

from __future__ import annotations

import json
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ..choices import ScheduleFrequency
from ..models import ScannerProfile
from ..runs.services import SCHEDULED_RUN_TASK as RUN_TASK


def crontab_fields(profile: ScannerProfile) -> dict[str, str]:
    """The profile's Scheduler settings as crontab fields (minute, hour, day_of_month, month_of_year, day_of_week)."""
    at = profile.schedule_time or time(0, 0)
    fields = {"minute": str(at.minute), "hour": str(at.hour), "day_of_month": "*", "month_of_year": "*"}
    frequency = profile.schedule_frequency
    if frequency == ScheduleFrequency.HOURLY:
        return {**fields, "hour": "*", "day_of_week": "*"}
    if frequency == ScheduleFrequency.WEEKLY:
        return {**fields, "day_of_week": profile.schedule_days or "*"}
    if frequency == ScheduleFrequency.CRON:
        minute, hour, day_of_month, month_of_year, day_of_week = profile.schedule_cron.split()
        return {
            "minute": minute,
            "hour": hour,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
            "day_of_week": day_of_week,
        }
    return {**fields, "day_of_week": "*"}


def _task_name(profile: ScannerProfile) -> str:
    # Unique through the id; the rest makes the beat admin and logs readable.
    return f"Scanner profile #{profile.pk}: {profile.project} / {profile.name}"[:200]


@transaction.atomic
def sync_schedule(profile: ScannerProfile) -> PeriodicTask | None:
    """Create, update or disable the profile's PeriodicTask so it matches the Scheduler settings."""
    task = (
        PeriodicTask.objects.filter(pk=profile.periodic_task_id).first() if profile.periodic_task_id else None
    )
    if not profile.scheduler_enabled:
        if task is not None and task.enabled:
            task.enabled = False
            task.save()
        return task
    fields = crontab_fields(profile)
    crontab = CrontabSchedule.objects.filter(**fields, timezone=profile.schedule_timezone).first()
    if crontab is None:
        crontab = CrontabSchedule.objects.create(**fields, timezone=ZoneInfo(profile.schedule_timezone))
    if task is None:
        task = PeriodicTask(task=RUN_TASK)
    task.name = _task_name(profile)
    task.task = RUN_TASK
    task.kwargs = json.dumps({"profile_id": profile.pk})
    task.crontab, task.interval = crontab, None
    task.enabled = True
    task.save()
    if profile.periodic_task_id != task.pk:
        ScannerProfile.objects.filter(pk=profile.pk).update(periodic_task=task)
        profile.periodic_task = task
    return task


def delete_schedule(periodic_task_id: int | None) -> None:
    """Delete a profile's PeriodicTask (one by one, so beat's change tracking sees it)."""
    if periodic_task_id:
        for task in PeriodicTask.objects.filter(pk=periodic_task_id):
            task.delete()


def next_run_at(profile: ScannerProfile, now: datetime | None = None) -> datetime | None:
    """When beat will next run the profile, or None when the Scheduler is off."""
    task = profile.periodic_task
    if not profile.scheduler_enabled or task is None or not task.enabled or task.crontab is None:
        return None
    # The first crontab match strictly after `now`, in the crontab's own timezone (wall clock across DST).
    last, delta, _ = task.crontab.schedule.remaining_delta(now or timezone.now())
    return last + delta


@receiver(post_delete, sender=ScannerProfile, dispatch_uid="projects.profile_schedule_cleanup")
def delete_profile_schedule(sender, instance: ScannerProfile, **kwargs) -> None:
    """A profile's schedule goes with it, however the profile is deleted (directly or with its project)."""
    delete_schedule(instance.periodic_task_id)
