from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Scan-completion webhooks: the outbox, its deliveries, and the Webhook page of a scanner profile."""

    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Receivers (run_finished → outbox row; re-enable on URL save) and the tasks, published by name.
        from . import receivers, tasks  # noqa: F401
