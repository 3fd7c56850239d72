"""Project › Settings › Jira (the mapping, its live lookups, Test mapping, the preview, Sync now, the sync log),
and "Create Jira ticket" on a finding and in bulk. Members change things; viewers look; others get 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from accounts.models import record
from projects.models import Finding, Project
from projects.permissions import get_project

from . import content, lookups, services
from .choices import Grouping, LinkState, SyncStatus
from .display import finding_context
from .forms import MappingForm, jira_connections
from .models import TicketLink, TicketMapping, TicketSync

SYNCS_SHOWN = 10
ACTIVE = [SyncStatus.PENDING, SyncStatus.RUNNING]


def _mapping(project: Project) -> TicketMapping | None:
    return TicketMapping.objects.select_related("integration").filter(project=project).first()


def _lookup_for(data, mapping: TicketMapping | None) -> lookups.ProjectLookup | None:
    """The live lookup of the Jira project named in `data` (a POST or GET), else of the saved mapping."""
    pk = str(data.get("integration") or (mapping.integration_id if mapping else "") or "")
    key = (data.get("jira_project") or (mapping.jira_project if mapping else "") or "").strip().upper()
    integration = jira_connections().filter(pk=pk).first() if pk.isdigit() else None
    if integration is None or not key:
        return None
    return lookups.lookup_project(integration, key)


@never_cache
@require_http_methods(["GET", "POST"])
def mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """The mapping page: the form (checked live against Jira on save), the sync log, Sync now."""
    project = get_project(request, pk, edit=request.method == "POST")
    saved = _mapping(project)
    data = request.POST if request.method == "POST" else {}
    found = _lookup_for(data, saved)
    form = MappingForm(
        request.POST or None,
        instance=saved or TicketMapping(project=project),
        project_info=found.project if found else None,
        lookup_error=found.error if found else "",
    )
    if request.method == "POST" and form.is_valid():
        created = saved is None
        mapping = form.save(commit=False)
        mapping.project, mapping.updated_by = project, request.user
        mapping.save()
        # Links point into one Jira site; on another connection they mean nothing (the tickets stay where they
        # are, and their key labels find them again should the old connection come back).
        TicketLink.objects.filter(project=project).exclude(integration=mapping.integration).delete()
        record(
            request.user,
            "tickets.mapping_saved",
            project,
            request,
            jira_project=mapping.jira_project,
            fields=sorted(form.changed_data),
        )
        if created and mapping.enabled:
            services.sync_now(project, request.user, request)
            messages.success(
                request,
                f"Jira tickets set up: tickets go to {mapping.jira_project}. The first sync is on its way; "
                "after that, every run updates them.",
            )
        else:
            messages.success(request, "Jira settings saved. The next run (or Sync now) applies them.")
        return redirect("tickets:mapping", pk=project.pk)
    if not project.user_can_edit:
        for field in form.fields.values():
            field.disabled = True
    lookup_attrs = {
        "hx-get": reverse("tickets:lookup", args=[project.pk]),
        "hx-target": "#jira-project-lookup",
        "hx-include": "#id_integration, #id_jira_project",
        "hx-sync": "this:replace",
    }
    form.fields["integration"].widget.attrs.update(lookup_attrs, **{"hx-trigger": "change"})
    form.fields["jira_project"].widget.attrs.update(
        lookup_attrs, **{"hx-trigger": "change, input changed delay:600ms"}
    )
    return render(request, "tickets/mapping.html", _page_context(request, project, saved, form, found))


def _page_context(request, project, saved, form, found) -> dict:
    return {
        "project": project,
        "mapping": saved,
        "form": form,
        "lookup": found,
        "connections": list(jira_connections()),
        "inline_help": content.INLINE_PLACEHOLDERS,
        "block_help": content.BLOCK_PLACEHOLDERS,
        **_syncs_context(project),
    }


def _syncs_context(project: Project) -> dict:
    syncs = list(TicketSync.objects.filter(project=project).select_related("run")[:SYNCS_SHOWN])
    links = TicketLink.objects.filter(project=project)
    return {
        "syncs": syncs,
        "polling": any(s.status in ACTIVE for s in syncs),
        "open_tickets": links.filter(state=LinkState.OPEN).count(),
        "closed_tickets": links.filter(state=LinkState.CLOSED).count(),
    }


@never_cache
@require_GET
def syncs(request: HttpRequest, pk: int) -> HttpResponse:
    """The sync log fragment (polled while a sync is pending or running)."""
    project = get_project(request, pk)
    context = {"project": project, **_syncs_context(project)}
    response = render(request, "tickets/partials/_syncs.html", context)
    if request.htmx and not context["polling"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@never_cache
@require_GET
def lookup(request: HttpRequest, pk: int) -> HttpResponse:
    """The issue type field and the project's name and missing permissions, re-rendered when the connection or
    the project key changes."""
    project = get_project(request, pk)
    saved = _mapping(project)
    found = _lookup_for(request.GET, saved)
    form = MappingForm(
        instance=saved or TicketMapping(project=project),
        project_info=found.project if found else None,
        initial={"issue_type_id": saved.issue_type_id if saved else ""},
    )
    return render(request, "tickets/partials/_project_lookup.html", {"form": form, "lookup": found})


@require_POST
def test_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """Test mapping: the account, and the permissions it lacks in the chosen project (each named)."""
    project = get_project(request, pk, edit=True)
    key = (request.POST.get("jira_project") or "").strip().upper()
    integration = jira_connections().filter(pk=request.POST.get("integration") or 0).first()
    if integration is None or not key:
        info, error = None, "Choose a Jira connection and enter a project key first."
    else:
        info, error = lookups.test_mapping(integration, key)
    record(request.user, "tickets.mapping_tested", project, request, jira_project=key, ok=not error)
    return render(request, "tickets/partials/_test_result.html", {"info": info, "error": error, "key": key})


@require_POST
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The description (and summary, labels, priority) a ticket would get, from the project's own findings."""
    project = get_project(request, pk)
    saved = _mapping(project)
    integration = jira_connections().filter(pk=request.POST.get("integration") or 0).first() or (
        saved.integration if saved else None
    )
    if integration is None:
        return render(request, "tickets/partials/_preview.html", {"error": "Choose a Jira connection first."})
    draft = MappingForm(request.POST, instance=saved or TicketMapping(project=project))
    draft.is_valid()  # only its cleaned values matter here
    mapping = TicketMapping(
        project=project,
        integration=integration,
        grouping=draft.cleaned_data.get("grouping") or Grouping.PLUGIN,
        min_severity=draft.cleaned_data.get("min_severity") or 0,
        extra_labels=draft.cleaned_data.get("extra_labels", ""),
        label_scan_tag=draft.cleaned_data.get("label_scan_tag", False),
        label_meta_data=draft.cleaned_data.get("label_meta_data", False),
        description_template=request.POST.get("description_template", ""),
        priorities={name.split("_")[1]: request.POST.get(name, "") for name in draft.priority_names},
    )
    problems = content.template_problems(mapping.description_template)
    subject = content.sample_subject(mapping, mapping.grouping)
    if subject is None:
        return render(
            request,
            "tickets/partials/_preview.html",
            {"error": "The preview uses this project's findings: import a run first.", "problems": problems},
        )
    built, html = content.preview(mapping, subject)
    context = {"content": built, "html": mark_safe(html), "problems": problems, "subject": subject}  # noqa: S308 — the connector escaped every text
    return render(request, "tickets/partials/_preview.html", context)


@require_POST
def sync_now(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project(request, pk, edit=True)
    saved = _mapping(project)
    if saved is None or not saved.active:
        messages.error(request, "Set up Jira tickets (and turn them on) first.")
    else:
        services.sync_now(project, request.user, request)
        messages.success(request, "Sync queued: the log below shows it as it runs.")
    return redirect("tickets:mapping", pk=project.pk)


@require_POST
def remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop sending tickets: the mapping goes; links stay, so setting it up again finds the same tickets."""
    project = get_project(request, pk, edit=True)
    saved = _mapping(project)
    if saved is not None:
        saved.delete()
        record(request.user, "tickets.mapping_removed", project, request)
        messages.success(request, "Jira tickets turned off. Existing tickets stay in Jira as they are.")
    return redirect("tickets:mapping", pk=project.pk)


# ---------------------------------------------------------------------------------------------------------------
# On findings
# ---------------------------------------------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
def finding_ticket(request: HttpRequest, pk: int, finding_pk: int) -> HttpResponse:
    """GET: the finding's Jira card (polled while its ticket is being created). POST: Create Jira ticket."""
    project = get_project(request, pk, edit=request.method == "POST")
    finding = get_object_or_404(
        Finding.objects.select_related("asset", "plugin"), project=project, pk=finding_pk
    )
    if request.method == "GET":
        context = finding_context(finding, project, request.user)
        response = render(request, "tickets/partials/_finding_ticket.html", context)
        if request.htmx and not context["creating"]:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    outcome = services.request_tickets(project, [finding], request.user, request)
    _say(request, outcome)
    return redirect(finding)


@require_POST
def bulk_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Create Jira tickets for the findings selected on the findings list (ids of other projects are ignored)."""
    project = get_project(request, pk, edit=True)
    back = reverse("projects:findings", args=[project.pk])
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        back = target
    ids = [int(i) for i in request.POST.getlist("ids") if str(i).isdigit()][:1000]
    if not ids:
        messages.error(request, "Nothing requested. Select at least one finding first.")
        return redirect(back)
    findings = Finding.objects.filter(project=project, pk__in=ids).select_related("asset", "plugin")
    _say(request, services.request_tickets(project, findings, request.user, request))
    return redirect(back)


def _say(request: HttpRequest, outcome: services.Requested) -> None:
    if outcome.accepted:
        many = outcome.accepted != 1
        messages.success(
            request,
            f"Jira ticket{'s' if many else ''} requested for {outcome.accepted} finding{'s' if many else ''}: "
            "created in the background (existing tickets are reused, never duplicated).",
        )
    for sentence in outcome.refused[:5]:
        messages.warning(request, f"No ticket: {sentence}")
    if len(outcome.refused) > 5:
        messages.warning(request, f"And {len(outcome.refused) - 5} more findings got no ticket.")
