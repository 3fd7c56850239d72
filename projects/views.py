from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import record
from accounts.permissions import deny
from integrations.models import Integration

from .forms import ProjectForm
from .permissions import get_project, visible_projects


@require_GET
def dashboard(request):
    """The start page: what is connected, which projects exist, and the next step when nothing does."""
    projects = visible_projects(request.user)
    integrations = Integration.objects.defer("access_key", "secret_key") if request.user.is_admin else None
    return render(
        request,
        "projects/dashboard.html",
        {"projects": projects[:8], "project_count": projects.count(), "integrations": integrations},
    )


@require_GET
def project_list(request):
    return render(request, "projects/list.html", {"projects": visible_projects(request.user)})


@require_http_methods(["GET", "POST"])
def project_create(request):
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
def project_detail(request, pk: int):
    project = get_project(request, pk)
    return render(request, "projects/detail.html", {"project": project})
