"""What the tickets app listens to: a finished run (the outbox row), and Test Connection asking which Jira
projects a connection serves."""

from __future__ import annotations

from django.dispatch import receiver

from integrations.signals import ticket_projects
from projects.models import ScanRun
from projects.signals import run_finished

from .models import TicketMapping
from .services import queue_for_run


@receiver(run_finished, dispatch_uid="tickets.queue_for_run")
def _queue_for_run(sender, run: ScanRun, **kwargs) -> None:
    """Sent inside the transaction that finishes the run, so the sync row commits with it or not at all."""
    queue_for_run(run)


@receiver(ticket_projects, dispatch_uid="tickets.ticket_projects")
def _ticket_projects(sender, integrations, **kwargs) -> dict[int, list[str]]:
    """{integration pk: [Jira project keys its mappings send tickets to]}."""
    answer: dict[int, list[str]] = {}
    rows = TicketMapping.objects.filter(integration__in=integrations).values_list(
        "integration_id", "jira_project"
    )
    for pk, key in rows:
        answer.setdefault(pk, []).append(key)
    return answer
