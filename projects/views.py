from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import record
from accounts.permissions import deny
from integrations.models import Integration
from integrations.services import UNDECRYPTABLE, attach_advice

from .choices import SEVERITY_BADGE, Severity
from .findings.overview import project_overview
from .forms import MembershipForm, MembershipRoleForm, ProjectDeleteForm, ProjectForm
from .models import Finding, FindingQuerySet, Membership, ScannerProfile
from .permissions import get_project, visible_projects
from .profiles.schedules import delete_schedule


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The start page: what is connected, which projects exist, and the next step when nothing does; admins also
    see connections that need them (failing, keys due for rotation, profiles their key cannot serve)."""
    projects = visible_projects(request.user)
    integrations = None
    attention = []
    if request.user.is_admin:
        integrations = attach_advice(list(Integration.objects.for_listing().select_related("keys_set_by")))
        attention = [
            c
            for c in integrations
            if c.state in ("failing", "unreadable")
            or (c.is_active and c.rotation_due)
            or any(a.kind == "less" for a in c.advice)
        ]
    context = {
        "projects": projects[:8],
        "project_count": projects.count(),
        "integrations": integrations,
        "attention": attention,
        "rotation_days": settings.KEY_ROTATION_DAYS,
        "undecryptable": UNDECRYPTABLE,
        "open_findings": Finding.objects.filter(project__in=projects).needs_attention().count(),
    }
    return render(request, "projects/dashboard.html", context)


def with_finding_counts(projects):
    """Open findings per effective severity and the number of scanner profiles, in the one list query."""
    is_open = FindingQuerySet.needs_attention_q(prefix="findings__")
    by_severity = {
        f"open_{SEVERITY_BADGE[value]}": Count(
            "findings", filter=is_open & Q(findings__effective_severity=value)
        )
        for value in Severity.values
    }
    # A subquery, not a second join: joining profiles too would multiply the finding counts.
    profiles = (
        ScannerProfile.objects.filter(project=OuterRef("pk"))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
    )
    return projects.annotate(
        **by_severity,
        open_total=Count("findings", filter=is_open),
        profile_count=Coalesce(Subquery(profiles.values("n")), 0),
    )


@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    """Every project the user can see, with its open findings by severity."""
    projects = list(with_finding_counts(visible_projects(request.user)))
    for project in projects:
        project.severity_counts = [
            (Severity(value).label, SEVERITY_BADGE[value], getattr(project, f"open_{SEVERITY_BADGE[value]}"))
            for value in sorted(Severity.values, reverse=True)
        ]
    return render(request, "projects/list.html", {"projects": projects})


@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_admin:
        raise deny(request, "project.create")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = form.save(commit=False)
        project.created_by = request.user
        project.save()
        record(request.user, "project.created", project, request)
        messages.success(
            request, f"Project {project.name} created. Next: add a scanner under Settings › Scanners."
        )
        return redirect(project)
    return render(request, "projects/form.html", {"form": form})


@require_GET
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The project's overview: open findings by severity, the last run's changes, the trend, profiles, hosts."""
    project = get_project(request, pk)
    return render(request, "projects/detail.html", {"project": project, **project_overview(project)})


@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Settings › General: name and description. Renaming changes what `kdt scan -p` must say."""
    project = get_project(request, pk, edit=True)
    old_name = project.name
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        changed = form.changed_data
        form.save()
        if changed:
            record(request.user, "project.changed", project, request, fields=changed)
        text = f"Project {project.name} saved."
        if "name" in changed:
            text += f" Command lines that use -p {old_name} must now use -p {project.name}."
        messages.success(request, text)
        return redirect("projects:edit", pk=project.pk)
    return render(request, "projects/settings_general.html", {"project": project, "form": form})


def _delete_impact(project) -> dict[str, int]:
    profiles = project.profiles.all()
    return {
        "profiles": profiles.count(),
        "schedules": profiles.filter(periodic_task__isnull=False).count(),
        "runs": project.runs.count(),
        "findings": project.findings.count(),
        "hosts": project.assets.count(),
        "members": project.memberships.count(),
    }


@require_http_methods(["GET", "POST"])
def project_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a project with everything in it, after the name is typed; admins only."""
    project = get_project(request, pk)
    if not request.user.is_admin:
        raise deny(request, "project.delete", project)
    form = ProjectDeleteForm(request.POST or None, project=project)
    impact = _delete_impact(project)
    if request.method == "POST" and form.is_valid():
        name = project.name
        with transaction.atomic():
            for task_id in project.profiles.exclude(periodic_task=None).values_list(
                "periodic_task", flat=True
            ):
                delete_schedule(task_id)
            project.delete()
            record(request.user, "project.deleted", None, request, name=name, **impact)
        messages.success(request, f"Project {name} deleted with its scanners, schedules, runs and findings.")
        return redirect("projects:list")
    return render(request, "projects/delete.html", {"project": project, "form": form, "impact": impact})


@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, pk: int) -> HttpResponse:
    """Settings › Members: who is in the project with which role; admins add, change and remove."""
    project = get_project(request, pk)
    is_admin = request.user.is_admin
    form = MembershipForm(request.POST or None, project=project) if is_admin else None
    if request.method == "POST":
        if not is_admin:
            raise deny(request, "project.member_add", project)
        if form.is_valid():
            membership = form.save()
            record(
                request.user,
                "project.member_added",
                project,
                request,
                user=membership.user.username,
                role=membership.role,
            )
            messages.success(
                request,
                f"{membership.user.username} added to {project.name} as {membership.get_role_display()}.",
            )
            return redirect("projects:members", pk=project.pk)
    memberships = project.memberships.select_related("user").order_by("user__username")
    return render(
        request,
        "projects/members.html",
        {"project": project, "memberships": memberships, "form": form, "can_manage": is_admin},
    )


def _membership(request: HttpRequest, pk: int, membership_pk: int, action: str) -> Membership:
    project = get_project(request, pk)
    if not request.user.is_admin:
        raise deny(request, action, project)
    return get_object_or_404(project.memberships.select_related("user", "project"), pk=membership_pk)


@require_POST
def member_role(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    membership = _membership(request, pk, membership_pk, "project.member_change")
    old_role = membership.role
    form = MembershipRoleForm(request.POST, instance=membership)
    if form.is_valid() and membership.role != old_role:
        if membership.user.is_read_only and membership.role != "viewer":
            messages.error(
                request, f"{membership.user.username} is a viewer across the app; they stay a Viewer."
            )
        else:
            form.save()
            record(
                request.user,
                "project.member_changed",
                membership.project,
                request,
                user=membership.user.username,
                role=membership.role,
            )
            messages.success(request, f"{membership.user.username} is now {membership.get_role_display()}.")
    elif not form.is_valid():
        messages.error(request, "Choose Member or Viewer.")
    return redirect("projects:members", pk=pk)


@require_POST
def member_remove(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    membership = _membership(request, pk, membership_pk, "project.member_remove")
    username = membership.user.username
    membership.delete()
    record(request.user, "project.member_removed", membership.project, request, user=username)
    messages.success(request, f"{username} removed from {membership.project.name}.")
    return redirect("projects:members", pk=pk)
