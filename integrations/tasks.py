"""Celery tasks of integrations: the scheduled connection check (beat runs `check_connections`)."""

from __future__ import annotations

from celery import shared_task

from .models import Integration
from .services import CheckLater
from .services import check_connection as check

CHECK_RETRIES = 3  # a transient failure is retried after 5, 10, then 20 minutes before it counts
CHECK_RETRY_BASE = 300


@shared_task(name="integrations.tasks.check_connections")
def check_connections() -> int:
    """Queue a check of every active connection with saved keys; returns how many were queued."""
    ids = list(
        Integration.objects.filter(is_active=True).exclude(access_key_hint="").values_list("pk", flat=True)
    )
    for pk in ids:
        check_connection.delay(pk)
    return len(ids)


@shared_task(name="integrations.tasks.check_connection", bind=True, max_retries=CHECK_RETRIES)
def check_connection(self, integration_id: int) -> None:
    """Re-test one connection's saved keys and record the outcome; admins hear once when it starts failing."""
    try:
        check(integration_id, final=self.request.retries >= CHECK_RETRIES)
    except CheckLater as exc:
        raise self.retry(countdown=CHECK_RETRY_BASE * 2**self.request.retries, exc=exc) from None
