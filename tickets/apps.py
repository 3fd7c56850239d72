from django.apps import AppConfig


class TicketsConfig(AppConfig):
    """Tickets in a ticketing service (Jira Cloud) for a project's findings: the mapping, the links, the outbox."""

    name = "tickets"
    verbose_name = "Tickets"

    def ready(self) -> None:
        # Receivers (run_finished → outbox row; Test Connection's project keys) and the tasks, published by name.
        from . import receivers, tasks  # noqa: F401
