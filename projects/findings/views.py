"""Reviewing imported findings: the list (flat or grouped), CSV export, one finding, triage, and hosts.

Members triage; viewers read (403 on POST); other projects' objects answer 404. Filters come from the query
string through `FindingFilters`, so the URL is the shareable view and nothing reaches the ORM unparsed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from ..choices import SEVERITY_BADGE, RunStatus, Severity, Triage
from ..models import Asset, Finding, Plugin, Project
from ..permissions import get_project
from .csv_export import csv_rows
from .filters import (
    CHANGE_CHOICES,
    GROUP_CHOICES,
    SORTS,
    STATE_CHOICES,
    TRIAGE_CHOICES,
    TRIAGE_STATUS_LABELS,
    FindingFilters,
    filter_findings,
    last_seen,
    last_seen_expr,
    order_findings,
    triage_status,
    triage_status_expr,
)
from .queries import (
    finding_history,
    group_by_host,
    group_by_plugin,
    list_findings,
    list_hosts,
    open_counts_by_host,
)
from .triage import BulkTriageForm, TriageForm, clear_triage, set_triage

SEVERITY_OPTIONS = [(s.value, s.label, SEVERITY_BADGE[s.value]) for s in reversed(Severity)]
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
CWE_RE = re.compile(r"^(?:CWE-)?(\d{1,6})$", re.IGNORECASE)
LONG_OUTPUT_CHARS = 3000
LONG_OUTPUT_LINES = 40


# ---------------------------------------------------------------------------
# The list
# ---------------------------------------------------------------------------
def _filter_options(project: Project, filters: FindingFilters) -> dict:
    """Choices for the filter form: profiles and recent runs of this project, plugin families."""
    runs = list(
        project.runs.filter(status=RunStatus.SUCCEEDED)
        .select_related("profile")
        .order_by("-created_at", "-id")[:25]
    )
    if filters.run and filters.run not in {run.pk for run in runs}:
        runs += list(project.runs.filter(pk=filters.run).select_related("profile"))
    return {
        "severity_options": SEVERITY_OPTIONS,
        "state_choices": STATE_CHOICES,
        "triage_choices": TRIAGE_CHOICES,
        "change_choices": CHANGE_CHOICES,
        "group_choices": GROUP_CHOICES,
        "profiles": project.profiles.only("id", "name").order_by("name"),
        "runs": runs,
        # Tenable's family names are a fixed public catalogue, not project data.
        "families": Plugin.objects.exclude(family="")
        .order_by("family")
        .values_list("family", flat=True)
        .distinct(),
    }


def _results(project: Project, filters: FindingFilters) -> dict:
    qs = filter_findings(project, filters)
    if filters.group == "plugin":
        page = group_by_plugin(qs, filters.page)
    elif filters.group == "host":
        page = group_by_host(qs, filters.page)
    else:
        page = list_findings(project, filters)
        for finding in page.rows:
            finding.effective_badge = SEVERITY_BADGE[finding.effective_severity]
            finding.triage_label = TRIAGE_STATUS_LABELS.get(finding.triage_status, "")
    return {
        "page": page,
        "filters": filters,
        "triage_labels": TRIAGE_STATUS_LABELS,
        "querystring": filters.querystring(page=page.number),
        "sort_links": {key: filters.sort_link(key) for key in SORTS},
        "sort_key": filters.sort.lstrip("-"),
        "sort_desc": filters.sort.startswith("-"),
        "previous_qs": filters.querystring(page=page.number - 1),
        "next_qs": filters.querystring(page=page.number + 1),
        "export_qs": filters.querystring(page=1, group=""),
        "plugin_drill_qs": filters.querystring(page=1, group="", q=""),
        "host_drill_qs": filters.querystring(page=1, group="", asset=None, host=""),
    }


def _render_findings(
    request: HttpRequest, project: Project, template: str, context: dict, filters: FindingFilters
) -> HttpResponse:
    context = {"project": project, **_results(project, filters), **context}
    if request.htmx and not request.htmx.boosted:
        return render(request, "projects/partials/_findings_table.html", context)
    context.update(_filter_options(project, filters))
    return render(request, template, context)


@require_GET
def findings_list(request: HttpRequest, pk: int) -> HttpResponse:
    """All findings of a project, filtered, sorted and grouped as the query string says."""
    project = get_project(request, pk)
    filters = FindingFilters.from_query(request.GET)
    return _render_findings(
        request,
        project,
        "projects/findings.html",
        {"list_url": reverse("projects:findings", args=[project.pk]), "bulk_form": BulkTriageForm()},
        filters,
    )


@require_GET
def findings_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The current filtered list as CSV, streamed in chunks so a million rows never sit in memory."""
    project = get_project(request, pk)
    filters = FindingFilters.from_query(request.GET)
    qs = order_findings(
        filter_findings(project, filters).annotate(
            seen_at=last_seen_expr(), triage_status=triage_status_expr()
        ),
        filters.sort,
        filters.state,
    ).values_list(
        "asset__name",
        "asset__ip",
        "asset__fqdn",
        "plugin_id",
        "plugin__name",
        "plugin__family",
        "severity",
        "effective_severity",
        "port",
        "protocol",
        "state",
        "triage_status",
        "first_seen",
        "seen_at",
        "plugin__cves",
    )
    name = slugify(project.name) or f"project-{project.pk}"
    response = StreamingHttpResponse(csv_rows(qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{name}-findings-{timezone.localdate():%Y%m%d}.csv"'
    )
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------
# One finding
# ---------------------------------------------------------------------------
def _get_finding(project: Project, finding_pk: int) -> Finding:
    return get_object_or_404(
        Finding.objects.filter(project=project).select_related(
            "asset", "plugin", "profile", "first_run", "last_run", "fixed_by_run", "triage_by"
        ),
        pk=finding_pk,
    )


def _links(values, pattern: re.Pattern, url: str) -> list[tuple[str, str | None]]:
    """(text, url or None) per value: only values matching `pattern` become links."""
    out = []
    for value in values or []:
        text = str(value).strip()
        match = pattern.match(text)
        out.append((text, url.format(match.group(1) if match.groups() else text) if match else None))
    return out


def _see_also(urls) -> list[tuple[str, str | None]]:
    """Only http(s) URLs become links; anything else (javascript:, data:, text) is shown as text."""
    out = []
    for value in urls or []:
        text = str(value).strip()
        parts = urlsplit(text)
        out.append((text, text if parts.scheme in ("http", "https") and parts.netloc else None))
    return out


def _finding_context(project: Project, finding: Finding, form: TriageForm | None = None) -> dict:
    history, older_runs = finding_history(finding)
    plugin, output = finding.plugin, finding.plugin_output or ""
    status = triage_status(finding)
    return {
        "project": project,
        "finding": finding,
        "plugin": plugin,
        "asset": finding.asset,
        "severity_badge": SEVERITY_BADGE[finding.effective_severity],
        "tenable_badge": SEVERITY_BADGE[finding.severity],
        "default_badge": SEVERITY_BADGE.get(finding.severity_default, ""),
        "severity_differs": finding.severity != finding.effective_severity,
        "triage_status": status,
        "triage_label": TRIAGE_STATUS_LABELS.get(status, ""),
        "triage_active": status in (Triage.FALSE_POSITIVE, Triage.RISK_ACCEPTED),
        "cves": _links(plugin.cves, CVE_RE, "https://nvd.nist.gov/vuln/detail/{}"),
        "cwes": _links(plugin.cwes, CWE_RE, "https://cwe.mitre.org/data/definitions/{}.html"),
        "see_also": _see_also(plugin.see_also),
        "output_long": len(output) > LONG_OUTPUT_CHARS or output.count("\n") > LONG_OUTPUT_LINES,
        "output_lines": output.count("\n") + 1 if output else 0,
        "last_seen": last_seen(finding),
        "history": history,
        "older_runs": older_runs,
        "form": form or TriageForm(),  # no preselected decision: the reviewer picks one
    }


@require_GET
def finding_detail(request: HttpRequest, pk: int, finding_pk: int) -> HttpResponse:
    """One finding: both severities and why they differ, Tenable's text, the host, its history, triage."""
    project = get_project(request, pk)
    finding = _get_finding(project, finding_pk)
    return render(request, "projects/finding.html", _finding_context(project, finding))


@require_POST
def finding_triage(request: HttpRequest, pk: int, finding_pk: int) -> HttpResponse:
    """Mark one finding false positive or risk accepted (members only)."""
    project = get_project(request, pk, edit=True)
    finding = _get_finding(project, finding_pk)
    form = TriageForm(request.POST)
    if not form.is_valid():
        return render(request, "projects/finding.html", _finding_context(project, finding, form), status=400)
    data = form.cleaned_data
    set_triage(
        Finding.objects.filter(project=project, pk=finding.pk),
        user=request.user,
        triage=data["triage"],
        reason=data["reason"],
        until=data["until"],
        request=request,
    )
    messages.success(request, f"Marked as {Triage(data['triage']).label.lower()}.")
    return redirect(finding)


@require_POST
def finding_untriage(request: HttpRequest, pk: int, finding_pk: int) -> HttpResponse:
    """Undo one finding's triage (members only)."""
    project = get_project(request, pk, edit=True)
    finding = _get_finding(project, finding_pk)
    if clear_triage(
        Finding.objects.filter(project=project, pk=finding.pk), user=request.user, request=request
    ):
        messages.success(request, "Triage cleared: the finding counts as open again.")
    return redirect(finding)


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        if target.startswith("/"):
            return target
    return default


@require_POST
def findings_bulk_triage(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one triage action to the selected findings of this project (ids elsewhere are ignored)."""
    project = get_project(request, pk, edit=True)
    back = _back(request, reverse("projects:findings", args=[project.pk]))
    form = BulkTriageForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        if "ids" in form.errors and not request.POST.getlist("ids"):
            errors = "Select at least one finding first."
        messages.error(request, f"Nothing changed. {errors}")
        return redirect(back)
    data = form.cleaned_data
    selected = Finding.objects.filter(project=project, pk__in=data["ids"])
    if data["triage"] == BulkTriageForm.CLEAR:
        changed = clear_triage(selected, user=request.user, request=request)
        messages.success(request, f"Triage cleared on {changed} finding{'s' if changed != 1 else ''}.")
    else:
        changed = set_triage(
            selected,
            user=request.user,
            triage=data["triage"],
            reason=data["reason"],
            until=data["until"],
            request=request,
        )
        label = Triage(data["triage"]).label.lower()
        messages.success(request, f"Marked {changed} finding{'s' if changed != 1 else ''} as {label}.")
    return redirect(back)


# ---------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------
@require_GET
def host_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The project's hosts with their open findings by severity."""
    project = get_project(request, pk)
    page, params = list_hosts(project, request.GET)
    context = {"project": project, "page": page, "params": params, "total_hosts": project.assets.count()}
    if request.htmx and not request.htmx.boosted:
        return render(request, "projects/partials/_hosts_table.html", context)
    return render(request, "projects/hosts.html", context)


@require_GET
def host_detail(request: HttpRequest, pk: int, asset_pk: int) -> HttpResponse:
    """One host: its identities and its findings (the findings list, fixed to this host)."""
    project = get_project(request, pk)
    asset = get_object_or_404(Asset.objects.filter(project=project).select_related("last_run"), pk=asset_pk)
    query = request.GET.copy()
    query.pop("host", None)
    query["asset"] = str(asset.pk)
    filters = FindingFilters.from_query(query)
    counts = open_counts_by_host(project, [asset.pk])[asset.pk]
    return _render_findings(
        request,
        project,
        "projects/host.html",
        {
            "asset": asset,
            "host_counts": [(value, label, badge, counts[badge]) for value, label, badge in SEVERITY_OPTIONS],
            "list_url": reverse("projects:host", args=[project.pk, asset.pk]),
            "bulk_form": BulkTriageForm(),
            "fixed_asset": True,
        },
        filters,
    )
