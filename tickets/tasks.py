"""Celery tasks for tickets: run one sync, and sweep up syncs whose message was lost."""

from __future__ import annotations

from celery import shared_task

from .services import SYNC_TASK, process, sweep

# Longer waits are left to the sweeper (a far-off ETA message can outlive the broker's visibility timeout).
BROKER_COUNTDOWN_MAX = 3600


@shared_task(
    name=SYNC_TASK, bind=True, acks_late=True, max_retries=None, soft_time_limit=3600, time_limit=3660
)
def sync_tickets(self, sync_id: int) -> None:
    """Run one ticket sync; schedule the next pass when it should be tried again (never a tight loop)."""
    countdown = process(sync_id)
    if countdown is not None and countdown <= BROKER_COUNTDOWN_MAX:
        raise self.retry(countdown=countdown)


@shared_task(name="tickets.tasks.sweep_ticket_syncs")
def sweep_ticket_syncs() -> int:
    """Every minute: re-publish due syncs (lost messages, retries) and those whose worker went silent."""
    return sweep()
