"""Project-scoped access: objects of projects a user cannot see answer 404, read-only users get 403 on writes."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.permissions import deny

from .choices import ProjectRole
from .models import Project, ScannerProfile


def visible_projects(user) -> QuerySet[Project]:
    if user.is_admin:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def can_edit(user, project: Project) -> bool:
    """Admins edit everything; members edit their projects unless their global role is viewer."""
    if user.is_admin:
        return True
    if user.is_read_only:
        return False
    return project.memberships.filter(user=user, role=ProjectRole.MEMBER).exists()


def get_project(request, pk: int, *, edit: bool = False) -> Project:
    """The project if the user may see it (else 404); with `edit`, 403 unless they may change it."""
    project = get_object_or_404(visible_projects(request.user), pk=pk)
    if edit and not can_edit(request.user, project):
        raise deny(request, "project.edit", project)
    project.user_can_edit = can_edit(request.user, project)
    return project


def get_profile(request, pk: int, profile_pk: int, *, edit: bool = False) -> ScannerProfile:
    """A scanner profile of a project the user may see (else 404); with `edit`, 403 unless they may change it."""
    project = get_project(request, pk, edit=edit)
    profile = get_object_or_404(
        ScannerProfile.objects.select_related("integration"), pk=profile_pk, project=project
    )
    profile.project = project  # keeps `user_can_edit`
    return profile
