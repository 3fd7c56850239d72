"""What the finding page and the findings list show of tickets (shared by the template tags and the views)."""

from __future__ import annotations

from projects.models import Finding, Project

from .choices import Grouping, SyncStatus
from .models import TicketLink, TicketMapping, TicketRequest, TicketSync


def finding_context(finding: Finding, project: Project, user) -> dict:
    """The finding's Jira card: its ticket (and, grouped, its vulnerability's), whether one is being created,
    and whether "Create Jira ticket" applies."""
    mapping = TicketMapping.objects.select_related("integration").filter(project=project).first()
    links = list(
        TicketLink.objects.filter(project=project, finding=finding, kind=Grouping.FINDING).select_related(
            "integration"
        )
    ) + list(
        TicketLink.objects.filter(
            project=project, plugin_id=finding.plugin_id, kind=Grouping.PLUGIN
        ).select_related("integration")
    )
    for link in links:
        link.for_this_host = link.kind == Grouping.FINDING or any(
            h[3] == finding.pk for h in link.hosts or []
        )
    requested = TicketRequest.objects.filter(finding=finding).exists()
    pending = TicketSync.objects.filter(
        project=project, status__in=[SyncStatus.PENDING, SyncStatus.RUNNING]
    ).exists()
    has_ticket = any(link.issue_key and link.state != "gone" for link in links)
    creating = pending and (requested or any(link.state == "creating" for link in links)) and not has_ticket
    can_edit = getattr(project, "user_can_edit", False)
    return {
        "project": project,
        "finding": finding,
        "mapping": mapping,
        "links": [link for link in links if link.issue_key or link.state == "creating"],
        "creating": creating,
        "can_create": bool(
            can_edit and mapping and mapping.active and finding.is_open and not has_ticket and not creating
        ),
        "below_threshold": bool(mapping and finding.effective_severity < mapping.min_severity),
    }
