"""Scanner profile workflows: the Scanners list, saving or deleting a profile with its secret, schedule and
audit trail, and the run that Start Scan asks for on save. Views stay thin: they call these and render.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import record
from outbound.signing import generate_secret

from ..choices import RUN_BADGE, RunStatus, Trigger
from ..models import ScannerProfile, ScanRun
from ..runs.services import RunRefused, request_run
from .schedules import delete_schedule, next_run_at, sync_schedule
from .sources import ScansUnavailable, list_scans

# During a rotation the previous signing secret keeps signing for this long, so receivers can switch over.
SECRET_ROTATION_GRACE = timedelta(hours=24)
# The session remembers only *which* profile's new secret to show on the next page, never the secret.
REVEAL_SESSION_KEY = "reveal_webhook_secret"


def webhook_destination(url: str) -> str:
    """Where a webhook URL goes, without its path (which may carry a token): for read-only eyes."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


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
                **({"vulnerability_data": profile.export_scope} if profile.is_export else {}),
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
