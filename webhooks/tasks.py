"""Celery tasks for webhooks: send one delivery, and sweep up deliveries whose message was lost.

Their names are the ones they had in `projects.webhook_tasks`: queued messages, routes and beat use them.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import DELIVER_TASK, send_once, sweep

# Longer waits are left to the sweeper: a far-off ETA message can outlive the broker's visibility timeout and be
# delivered twice (harmless, the claim makes the second a no-op, but pointless).
BROKER_COUNTDOWN_MAX = 3600


@shared_task(
    name=DELIVER_TASK,
    bind=True,
    acks_late=True,
    max_retries=None,
    soft_time_limit=int(3 * settings.WEBHOOK_TIMEOUT) + 30,
    time_limit=int(3 * settings.WEBHOOK_TIMEOUT) + 60,
)
def deliver_webhook(self, delivery_id: int) -> None:
    """Make one attempt at a webhook delivery; schedule the next one when it should be retried."""
    countdown = send_once(delivery_id)
    if countdown is not None and countdown <= BROKER_COUNTDOWN_MAX:
        raise self.retry(countdown=countdown)


@shared_task(name="projects.webhook_tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Every minute: re-enqueue pending deliveries that are due (lost messages, retries, lapsed claims)."""
    return sweep()
