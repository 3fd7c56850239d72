"""Settings › Scanners: a project's scanner profiles, Add Scanner, and the scan configuration drawer.

The drawer follows the house protocol: GET returns the fragment into #drawer (or a full page without htmx),
an invalid POST re-renders it with errors, a valid POST closes it (`closeDrawer`) and refreshes the list
(`profilesChanged`). Picking a scan in Bind to fetches the scan summary fragment; picking "Vulnerability data"
fetches what that scope covers, with the key's role and visibility.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.htmx import close_drawer
from integrations.connectors import connectors_by_category
from integrations.models import Integration

from ..models import Project, ScannerProfile
from ..permissions import get_project
from .forms import ScannerProfileForm
from .schedules import next_run_at
from .services import (
    REVEAL_SESSION_KEY,
    delete_profile,
    profiles_for_list,
    request_run_now,
    save_profile,
    verify_bindings,
    webhook_destination,
)
from .sources import (
    SCOPE_PREFIX,
    TENABLE_STATUS_BADGE,
    ScansUnavailable,
    describe_scan,
    describe_tenable_schedule,
    epoch,
    key_info,
    list_scans,
    missing_scan_role,
    scope_label,
    visible_scans,
)

# Above this many scans, Bind to gets a search box.
SEARCH_THRESHOLD = 15
TARGETS_SHOWN = 40
SCAN_KINDS = {"ps": "scanner-based network scan", "agent": "agent scan", "remote": "remote scan"}


def _profiles(project: Project):
    return (
        ScannerProfile.objects.filter(project=project)
        .select_related("integration")
        .defer(
            "webhook_secret", "webhook_previous_secret", "integration__access_key", "integration__secret_key"
        )
    )


def _connections():
    return Integration.objects.defer("access_key", "secret_key")


@never_cache
@require_GET
def scanners(request: HttpRequest, pk: int) -> HttpResponse:
    """Settings › Scanners: profiles with bound scan, last run, next scheduled run and state; Add Scanner."""
    project = get_project(request, pk)
    profiles = profiles_for_list(project)
    if request.GET.get("verify") and profiles:
        verify_bindings(profiles)
    context = {"project": project, "profiles": profiles, "reveal": _pop_reveal(request, project)}
    if request.htmx and request.htmx.target == "profiles":
        return render(request, "projects/partials/_profiles_table.html", context)
    return render(request, "projects/scanners.html", context)


def _pop_reveal(request: HttpRequest, project: Project) -> dict | None:
    profile_pk = request.session.pop(REVEAL_SESSION_KEY, None)
    if not profile_pk:
        return None
    profile = ScannerProfile.objects.filter(project=project, pk=profile_pk).first()
    return (
        {"profile": profile, "secret": profile.webhook_secret} if profile and profile.webhook_secret else None
    )


@never_cache
@require_GET
def add_scanner(request: HttpRequest, pk: int) -> HttpResponse:
    """Add Scanner: choose the scanner type (Infra), then the scanner and its active connection, then Add."""
    project = get_project(request, pk, edit=True)
    categories = connectors_by_category()
    kind = request.GET.get("type") or categories[0][0]
    if kind not in {slug for slug, _, _ in categories}:
        kind = categories[0][0]
    active = list(_connections().filter(is_active=True))
    cards = [
        {"spec": spec, "connections": [c for c in active if c.connector == spec.slug]}
        for slug, _, specs in categories
        if slug == kind
        for spec in specs
    ]
    context = {
        "project": project,
        "categories": categories,
        "kind": kind,
        "cards": cards,
        "has_connections": any(card["connections"] for card in cards),
        "selected": request.GET.get("integration", ""),
    }
    if request.htmx:
        return render(request, "projects/partials/_add_scanner_drawer.html", context)
    return render(request, "projects/add_scanner.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def profile_new(request: HttpRequest, pk: int) -> HttpResponse:
    """The scan configuration drawer for a new profile on the connection chosen in Add Scanner."""
    project = get_project(request, pk, edit=True)
    integration_pk = request.GET.get("integration", "")
    if not integration_pk:
        return redirect("projects:add_scanner", pk=project.pk)
    if not integration_pk.isdigit():
        raise Http404("Unknown connection.")
    integration = get_object_or_404(_connections().filter(is_active=True), pk=integration_pk)
    return _drawer(request, project, ScannerProfile(project=project, integration=integration))


@never_cache
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Edit reopens the drawer with the saved values; viewers get it read-only (and 403 on POST)."""
    project = get_project(request, pk, edit=request.method == "POST")
    profile = get_object_or_404(_profiles(project), pk=profile_pk)
    return _drawer(request, project, profile)


def _drawer(request: HttpRequest, project: Project, profile: ScannerProfile) -> HttpResponse:
    integration = profile.integration
    scans, scan_error = None, ""
    try:
        scans = list_scans(integration)
    except ScansUnavailable as exc:
        scan_error = exc.message
    listed = {scan.id for scan in visible_scans(scans)} if scans is not None else set()
    scopes = {scope.id for scope in scans.scopes} if scans is not None else set()
    if profile.pk and scans is not None:
        if profile.is_export:
            profile.scan_missing = profile.export_scope not in scopes
        else:
            profile.scan_missing = profile.scan_id not in listed
    form = ScannerProfileForm(request.POST or None, instance=profile, scan_list=scans, scan_error=scan_error)
    form.fields["scan_id"].widget.attrs.update(
        {
            "hx-get": reverse("projects:scan_summary", args=[project.pk]),
            "hx-trigger": "change",
            "hx-target": "#scan-summary",
            "hx-include": "input[name=integration]",
            "hx-indicator": "#field-scan_id",
            "hx-sync": "this:replace",
            "data-bind-to": "",
        }
    )
    if scans is None or not (listed or scopes):
        form.fields["scan_id"].widget.attrs["disabled"] = True
    read_only = not project.user_can_edit
    if read_only:
        for field in form.fields.values():
            field.disabled = True
        if profile.webhook_url:
            # A webhook URL may carry a token in its path: read-only users see where it goes, not the path.
            form.initial["webhook_url"] = webhook_destination(profile.webhook_url)
    if request.method == "POST" and form.is_valid():
        outcome = save_profile(form, request.user, request)
        run = request_run_now(outcome.profile, request.user, request) if outcome.profile.start_scan else None
        return _saved(request, project, outcome, run)

    context = {
        "project": project,
        "profile": profile,
        "integration": integration,
        "form": form,
        "read_only": read_only,
        "scan_error": scan_error,
        "no_scans": scans is not None and not listed,
        "no_sources": scans is not None and not listed and not scopes,
        "no_scans_resolution": integration.spec.no_scans_resolution,
        "searchable": len(listed) > SEARCH_THRESHOLD,
        "binds_export": form.binds_export,
        "action": _drawer_url(project, profile),
        **_summary_context(integration, _selected_source(form, listed, scopes)),
    }
    if request.htmx:
        return render(request, "projects/partials/_profile_drawer.html", context)
    return render(request, "projects/profile.html", context)


def _drawer_url(project: Project, profile: ScannerProfile) -> str:
    if profile.pk:
        return reverse("projects:profile", args=[project.pk, profile.pk])
    return f"{reverse('projects:profile_new', args=[project.pk])}?integration={profile.integration_id}"


def _selected_source(form: ScannerProfileForm, listed: set[int], scopes: set[str]) -> int | str | None:
    """What Bind to shows (posted or saved), if the connection lists it: a scan id, or "scope:<id>"."""
    return _listed_source(str(form["scan_id"].value() or ""), listed, scopes)


def _listed_source(value: str, listed: set[int] | None, scopes: set[str] | None) -> int | str | None:
    """A Bind to value as a scan id or a "scope:<id>" string; None when it names nothing (`listed`/`scopes`
    None: not checked here, the summary asks Tenable)."""
    if value.startswith(SCOPE_PREFIX):
        return value if scopes is None or value[len(SCOPE_PREFIX) :] in scopes else None
    if not value.isdigit():
        return None
    return int(value) if listed is None or int(value) in listed else None


def _summary_context(integration: Integration, selected: int | str | None) -> dict:
    if selected is None:
        return {"scan": None, "scan_id": None}
    if isinstance(selected, str):
        return _scope_context(integration, selected[len(SCOPE_PREFIX) :])
    scan_id = selected
    try:
        scan = describe_scan(integration, scan_id)
    except ScansUnavailable as exc:
        lacks = missing_scan_role(integration) if exc.kind == "forbidden" else ""
        return {
            "scan": None,
            "scan_id": scan_id,
            "summary_error": lacks or exc.message,
            "summary_kind": exc.kind,
            "lacks_role": bool(lacks),
        }
    last = scan.history[0] if scan.history else None
    return {
        "scan": scan,
        "folder": _folder_of(integration, scan),
        "scan_id": scan_id,
        "status_badge": TENABLE_STATUS_BADGE.get(scan.status, "progress"),
        "scan_kind": SCAN_KINDS.get(scan.scan_type or "", scan.scan_type or ""),
        "targets_shown": scan.targets[:TARGETS_SHOWN],
        "targets_more": max(0, len(scan.targets) - TARGETS_SHOWN),
        "last_history": last,
        "last_badge": TENABLE_STATUS_BADGE.get(last.status, "progress") if last else "",
        "last_run_at": epoch(last.last_modification_date or last.creation_date) if last else None,
        "tenable_schedule": describe_tenable_schedule(scan.schedule),
    }


def _scope_context(integration: Integration, scope_id: str) -> dict:
    """What a "Vulnerability data" scope covers, and the key's role and visibility (both cached)."""
    try:
        scope = next((s for s in list_scans(integration).scopes if s.id == scope_id), None)
    except ScansUnavailable as exc:
        return {"scan": None, "scan_id": None, "summary_error": exc.message, "summary_kind": exc.kind}
    if scope is None:
        return {
            "scan": None,
            "scan_id": None,
            "summary_error": "This tag is no longer visible to this API key in Tenable.io. Choose another "
            "scope in Bind to.",
            "summary_kind": "not_found",
        }
    context = {"scan": None, "scan_id": None, "scope": scope, "scope_title": scope_label(scope)}
    try:
        context["key"] = key_info(integration)
    except ScansUnavailable as exc:
        context["key_error"] = exc.message
    return context


def _folder_of(integration: Integration, scan):
    """The folder the scan's own details name (the listing's folder bookkeeping may not know it)."""
    folder_id = getattr(scan, "folder_id", None)
    if folder_id is None:
        return None
    try:
        folders = list_scans(integration).folders  # cached with the Bind to list
    except ScansUnavailable:
        return None
    return next((folder for folder in folders if folder.id == folder_id), None)


def _saved(request: HttpRequest, project: Project, outcome, run: tuple[str, str] | None) -> HttpResponse:
    profile = outcome.profile
    verb = "added" if outcome.created else "saved"
    text = f"Scanner profile {profile.name} {verb}."
    next_run = next_run_at(profile)
    if next_run:
        local = timezone.localtime(next_run, ZoneInfo(profile.schedule_timezone))
        text += f" Next scheduled run: {local:%a %b %-d, %H:%M} ({profile.schedule_timezone})."
    elif not profile.scheduler_enabled and "scheduler_enabled" in outcome.changed:
        text += " Its schedule is off."
    messages.success(request, text)
    if run:
        level, run_text = run
        getattr(messages, level)(request, run_text)
    if request.htmx:
        # The secret is written into this one response only; nothing stores it for later.
        secret = profile.webhook_secret if outcome.new_secret else ""
        response = render(
            request, "projects/partials/_saved.html", {"secret": secret, "secret_profile": profile}
        )
        return close_drawer(response, refresh="profilesChanged")
    if outcome.new_secret:
        request.session[REVEAL_SESSION_KEY] = profile.pk
    return redirect("projects:scanners", pk=project.pk)


@never_cache
@require_GET
def scan_summary(request: HttpRequest, pk: int) -> HttpResponse:
    """The Bind to summary: a scan's targets, tags, agents, policy, scanner, schedule, last run and host count;
    or what a vulnerability data scope covers, with the key's role and visibility."""
    project = get_project(request, pk)
    integration_pk = request.GET.get("integration", "")
    connections = _connections().filter(is_active=True) | _connections().filter(profiles__project=project)
    if not integration_pk.isdigit():
        raise Http404("Unknown connection.")
    integration = get_object_or_404(connections.distinct(), pk=integration_pk)
    selected = _listed_source(request.GET.get("scan_id", ""), None, None)
    context = {"project": project, "integration": integration, "oob": bool(request.htmx)}
    context.update(_summary_context(integration, selected))
    return render(request, "projects/partials/_scan_summary.html", context)


@require_http_methods(["GET", "POST"])
def profile_delete(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Delete a profile and its schedule (GET asks first when htmx is not there to confirm)."""
    project = get_project(request, pk, edit=True)
    profile = get_object_or_404(_profiles(project), pk=profile_pk)
    if request.method == "GET":
        return render(
            request,
            "projects/profile_delete.html",
            {"project": project, "profile": profile, "run_count": profile.runs.count()},
        )
    name = profile.name
    delete_profile(profile, request.user, request)
    messages.success(request, f"Scanner profile {name} deleted with its schedule.")
    if request.htmx:
        return close_drawer(render(request, "partials/_messages.html"), refresh="profilesChanged")
    return redirect("projects:scanners", pk=project.pk)
