"""Template tags the projects' pages include (they never import this app): a finding's Jira card, and the
"Create Jira tickets" button of the findings list."""

from __future__ import annotations

from django import template

from ..display import finding_context
from ..models import TicketMapping

register = template.Library()


@register.inclusion_tag("tickets/partials/_finding_ticket.html", takes_context=True)
def finding_ticket(context, finding, project):
    """The Jira card of a finding page."""
    return finding_context(finding, project, context.get("user"))


@register.simple_tag
def ticket_mapping(project) -> TicketMapping | None:
    """The project's active mapping, or None: `{% ticket_mapping project as mapping %}`."""
    mapping = TicketMapping.objects.select_related("integration").filter(project=project).first()
    return mapping if mapping and mapping.active else None
