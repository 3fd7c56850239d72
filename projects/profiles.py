"""Scanner profile workflows: what a connection's key can see in Tenable.io (cached briefly), the profile's
schedule in django-celery-beat, and saving or deleting a profile with its audit trail.

Views stay thin: they call these functions and render the outcome.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accounts.models import record
from integrations.connectors import Connector, ConnectorError
from integrations.models import Integration
from integrations.services import CredentialsUnavailable, open_connector

from .choices import RUN_BADGE, RunStatus, ScheduleFrequency, Trigger
from .models import ScannerProfile, ScanRun
from .runs import RunRefused, request_run
from .webhook_signing import generate_secret

log = logging.getLogger(__name__)

# Browsing Bind to and flicking through scans must not spend Tenable's per-key rate limit.
CACHE_SECONDS = 60
RUN_TASK = "projects.tasks.run_scheduled_profile"
# During a rotation the previous signing secret keeps signing for this long, so receivers can switch over.
SECRET_ROTATION_GRACE = timedelta(hours=24)
OTHER_SCANS = "Other scans"
# Tenable's scan statuses as badge colours (see TENABLE_API.md › Scan statuses).
TENABLE_STATUS_BADGE = {
    "completed": "success",
    "imported": "success",
    "canceled": "warning",
    "stopped": "warning",
    "aborted": "danger",
    "empty": "neutral",
}


class ScansUnavailable(Exception):
    """Tenable.io could not be asked (keys, network, permission, unknown scan); `message` is for the user."""

    def __init__(self, message: str, kind: str = "credentials"):
        super().__init__(message)
        self.message = message
        self.kind = kind


# ---------------------------------------------------------------------------------------------------
# What the connection can see
# ---------------------------------------------------------------------------------------------------


def _cache_key(integration: Integration, *parts: object) -> str:
    # Saving the connection (new keys, new URL) bumps updated_at, so a changed key never reads old answers.
    stamp = int(integration.updated_at.timestamp()) if integration.updated_at else 0
    return ":".join(["tenable", str(integration.pk), str(stamp), *map(str, parts)])


def _ask(integration: Integration, call: Callable[[Connector], Any]) -> Any:
    try:
        connector = open_connector(integration, interactive=True)
    except CredentialsUnavailable as exc:
        raise ScansUnavailable(exc.message) from None
    try:
        with connector:
            return call(connector)
    except ConnectorError as exc:
        log.info("Tenable.io call for connection %s failed: %s", integration.pk, exc.kind)
        raise ScansUnavailable(exc.message, exc.kind) from None


def list_scans(integration: Integration):
    """The folders and scans this connection's key can see (a `ScanList`), cached for a minute.

    A fresh answer also updates `scan_missing` on every profile bound through this connection.
    """
    key = _cache_key(integration, "scans")
    scans = cache.get(key)
    if scans is None:
        scans = _ask(integration, lambda connector: connector.list_sources())
        cache.set(key, scans, CACHE_SECONDS)
        _remember_presence(integration, {scan.id for scan in visible_scans(scans)})
    return scans


def describe_scan(integration: Integration, scan_id: int):
    """Targets, tags, agents, policy, schedule and history of one scan (`ScanDetails`), cached for a minute."""
    key = _cache_key(integration, "scan", scan_id)
    details = cache.get(key)
    if details is None:
        try:
            details = _ask(integration, lambda connector: connector.describe_source(scan_id))
        except ScansUnavailable as exc:
            if exc.kind == "not_found":
                ScannerProfile.objects.filter(integration=integration, scan_id=scan_id).update(
                    scan_missing=True
                )
            raise
        cache.set(key, details, CACHE_SECONDS)
    return details


def _remember_presence(integration: Integration, present: set[int]) -> None:
    bound = ScannerProfile.objects.filter(integration=integration)
    bound.exclude(scan_id__in=present).filter(scan_missing=False).update(scan_missing=True)
    bound.filter(scan_id__in=present, scan_missing=True).update(scan_missing=False)


def visible_scans(scans) -> list:
    """Scans outside the trash folder (`ScanList.visible`, the rule Test Connection counts with too)."""
    return scans.visible()


def epoch(value: int | None) -> datetime | None:
    """An aware datetime from Tenable's epoch seconds (0 and None mean "never")."""
    return datetime.fromtimestamp(value, UTC) if value else None


def scan_label(scan) -> str:
    """How a scan reads in Bind to: name, status and when it last ran."""
    status = (scan.status or "empty").replace("_", " ")
    if status == "empty" or not scan.last_modification_date:
        when = "never run"
    else:
        when = "last run " + timezone.localtime(epoch(scan.last_modification_date)).strftime(
            "%b %-d, %Y %H:%M"
        )
    agent = " · agent scan" if scan.type == "agent" else ""
    return f"{scan.name} — {status.capitalize()} · {when}{agent}"


def bind_to_choices(scans) -> list[tuple[str, list[tuple[int, str]]]]:
    """Bind to options grouped by folder: the main folder first, then custom folders, then the rest."""
    folders = {folder.id: folder for folder in scans.folders}
    groups: dict[str, list[tuple[int, str]]] = {}
    rank: dict[str, tuple[int, str]] = {}
    for scan in sorted(visible_scans(scans), key=lambda s: s.name.lower()):
        folder = folders.get(scan.folder_id)
        name = folder.name if folder else OTHER_SCANS
        groups.setdefault(name, []).append((scan.id, scan_label(scan)))
        order = 0 if folder and folder.type == "main" else (2 if folder is None else 1)
        rank[name] = (order, name.lower())
    return [(name, groups[name]) for name in sorted(groups, key=rank.__getitem__)]


_RRULE_DAYS = {"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}
_RRULE_UNITS = {"HOURLY": "hour", "DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


def describe_tenable_schedule(schedule) -> str:
    """A Tenable schedule (iCalendar RRULE + start time + zone) in words, e.g. "Weekly on Mon at 01:00 (US/Central)"."""
    if schedule is None or not schedule.rrules:
        return "Not scheduled in Tenable.io (started by hand or through the API)"
    rule = dict(part.split("=", 1) for part in schedule.rrules.split(";") if "=" in part)
    freq = rule.get("FREQ", "").upper()
    try:
        interval = max(1, int(rule.get("INTERVAL") or 1))
    except ValueError:
        interval = 1
    start = None
    if schedule.starttime:
        try:
            start = datetime.strptime(schedule.starttime[:15], "%Y%m%dT%H%M%S")
        except ValueError:
            start = None
    if freq == "ONETIME":
        text = "Once" + (f" on {start:%b %-d, %Y}" if start else "")
    elif freq in _RRULE_UNITS:
        unit = _RRULE_UNITS[freq]
        text = (
            f"Every {interval} {unit}s"
            if interval > 1
            else {"day": "Daily"}.get(unit, f"{unit.capitalize()}ly")
        )
        days = [_RRULE_DAYS.get(day[-2:].upper(), day) for day in rule.get("BYDAY", "").split(",") if day]
        if days and freq in ("WEEKLY", "MONTHLY"):
            text += " on " + ", ".join(days)
        elif rule.get("BYMONTHDAY") and freq == "MONTHLY":
            text += f" on day {rule['BYMONTHDAY']}"
    else:
        text = schedule.rrules
    if start and freq != "HOURLY":
        text += f" at {start:%H:%M}"
    if schedule.timezone:
        text += f" ({schedule.timezone})"
    if not schedule.enabled:
        text += " — disabled in Tenable.io"
    return text


# ---------------------------------------------------------------------------------------------------
# Schedules: one django-celery-beat PeriodicTask per profile
# ---------------------------------------------------------------------------------------------------


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


def profiles_for_list(project) -> list[ScannerProfile]:
    """The project's profiles with what the Scanners table shows: connection, schedule, last run, next run."""
    last = ScanRun.objects.filter(profile=OuterRef("pk")).order_by("-created_at", "-id")
    profiles = list(
        ScannerProfile.objects.filter(project=project)
        .select_related("integration", "periodic_task__crontab")
        .defer(
            "webhook_secret", "webhook_previous_secret", "integration__access_key", "integration__secret_key"
        )
        .annotate(
            last_run_id=Subquery(last.values("id")[:1]),
            last_run_status=Subquery(last.values("status")[:1]),
            last_run_created=Subquery(last.values("created_at")[:1]),
            last_run_finished=Subquery(last.values("finished_at")[:1]),
        )
    )
    now = timezone.now()
    for profile in profiles:
        profile.next_run = next_run_at(profile, now)
        if profile.last_run_status:
            profile.last_run_label = RunStatus(profile.last_run_status).label
            profile.last_run_badge = RUN_BADGE.get(profile.last_run_status, "neutral")
    return profiles


def verify_bindings(profiles: list[ScannerProfile]) -> None:
    """Ask each connection (cached) which scans it sees, so missing bound scans get their warning."""
    seen: set[int] = set()
    for profile in profiles:
        if profile.integration_id in seen:
            continue
        seen.add(profile.integration_id)
        try:
            list_scans(profile.integration)
        except ScansUnavailable:
            continue  # the connection's own state says why; a failing call proves nothing about the scan
    present = dict(
        ScannerProfile.objects.filter(pk__in=[p.pk for p in profiles]).values_list("pk", "scan_missing")
    )
    for profile in profiles:
        profile.scan_missing = present.get(profile.pk, profile.scan_missing)


# ---------------------------------------------------------------------------------------------------
# Saving and deleting
# ---------------------------------------------------------------------------------------------------


@dataclass
class SaveOutcome:
    """What a save did: `new_secret` says a webhook signing secret was generated now (show it once)."""

    profile: ScannerProfile
    created: bool
    changed: list[str]
    new_secret: bool


@sensitive_variables("current")
def save_profile(form, user, request=None) -> SaveOutcome:
    """Save the drawer: the profile, its webhook signing secret, its schedule and the audit event, in one transaction."""
    created = form.instance.pk is None
    changed = form.changed_fields()
    had_webhook = bool(form.initial.get("webhook_url")) and not created
    with transaction.atomic():
        profile = form.save(commit=False)
        new_secret = False
        if profile.webhook_url and (not had_webhook or form.cleaned_data.get("regenerate_secret")):
            if had_webhook:
                current = ScannerProfile.objects.only("webhook_secret").get(pk=profile.pk).webhook_secret
                profile.webhook_previous_secret = current
                profile.webhook_previous_secret_expires = timezone.now() + SECRET_ROTATION_GRACE
            profile.webhook_secret = generate_secret()
            profile.webhook_disabled_reason = ""
            new_secret = True
            changed.append("webhook_secret")
        elif not profile.webhook_url and had_webhook:
            # No webhook, no secret: a later webhook starts with a fresh one.
            profile.webhook_secret = profile.webhook_previous_secret = ""
            profile.webhook_previous_secret_expires = None
            profile.webhook_disabled_reason = ""
            changed.append("webhook_secret")
        profile.scan_missing = False  # just validated against the scans this key sees
        profile.save()
        sync_schedule(profile)
        if created:
            record(
                user,
                "profile.created",
                profile,
                request,
                project=profile.project.name,
                connection=profile.integration.name,
                scan_id=profile.scan_id,
                scheduler=profile.scheduler_enabled,
                webhook=bool(profile.webhook_url),
            )
        elif changed:
            # Field names only: never values (a webhook URL can carry a token; secrets never).
            record(user, "profile.changed", profile, request, fields=sorted(set(changed)))
    return SaveOutcome(profile=profile, created=created, changed=sorted(set(changed)), new_secret=new_secret)


def delete_profile(profile: ScannerProfile, user, request=None) -> None:
    """Delete a profile with its schedule; its runs go with it, the findings it imported stay in the project."""
    with transaction.atomic():
        delete_schedule(profile.periodic_task_id)
        name, project = profile.name, profile.project.name
        pk = profile.pk
        profile.delete()
        record(user, "profile.deleted", None, request, profile=name, profile_id=pk, project=project)


def request_run_now(profile: ScannerProfile, user, request=None) -> tuple[str, str]:
    """Saving with Start Scan on asks for a run at once; returns (message level, message) for the user."""
    try:
        run = request_run(profile, trigger=Trigger.MANUAL, user=user)
    except RunRefused as exc:
        return "warning", f"{profile.name}: {exc.message}"
    return (
        "success",
        f"{profile.name}: run #{run.pk} queued — Tenable.io launches the scan, then it is imported.",
    )
