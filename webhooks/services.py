"""Scan-completion webhooks: the payload, the outbox, one delivery attempt at a time, and the sweeper.

Every event is a `WebhookDelivery` row written in the same transaction that finishes the run (the outbox), so
an event exists exactly when the run's completion committed. A task sends it after the commit; the sweeper
re-enqueues rows whose message was lost. Workers claim a row with a conditional update before sending, so a
duplicate message does nothing. Signing follows Standard Webhooks (`outbound.signing`), destinations are
checked again at send time (`outbound.destinations`). RELIABILITY §1.4, §2.6 H1–H9.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import record
from outbound.destinations import DeliveryResult, RestrictedDestination, deliver
from outbound.signing import generate_secret, headers, new_message_id
from projects.choices import RunStatus
from projects.models import ScannerProfile, ScanRun
from projects.profiles.services import SECRET_ROTATION_GRACE

from .models import WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)

SCAN_COMPLETED = "scan.completed"
SCAN_FAILED = "scan.failed"
WEBHOOK_TEST = "webhook.test"
# Seconds before retry 1, 2, 3, …: the Standard Webhooks example schedule after the first attempt.
RETRY_SCHEDULE = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600]
# The sweeper leaves freshly due rows to the message already on its way for this long.
SWEEP_GRACE = timedelta(seconds=30)
USER_AGENT = "TenableConsole-Webhooks/1"
# The task's name as queued messages, routes and beat know it (it was first defined in projects.webhook_tasks).
DELIVER_TASK = "projects.webhook_tasks.deliver_webhook"
Status = WebhookDelivery.Status


# ---------------------------------------------------------------------------------------------------------------
# Payloads and the outbox
# ---------------------------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_payload(run: ScanRun, event: str) -> dict:
    """The JSON body of a run event: what ran, where to see it, and what it found."""
    profile, project = run.profile, run.project
    return {
        "event": event,
        "timestamp": _iso(timezone.now()),
        "project": {"id": project.pk, "name": project.name},
        "profile": {
            "id": profile.pk,
            "name": profile.name,
            "meta_data": profile.meta_data,
            "scan_tag": profile.scan_tag,
        },
        "run": {
            "id": run.pk,
            "url": settings.SITE_URL + run.get_absolute_url(),
            "status": run.status,
            "trigger": run.trigger,
            "up_to_date": run.up_to_date,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "error": run.error,
        },
        "tenable": {
            "scan_id": run.tenable_scan_id,
            "scan_name": run.tenable_scan_name,
            "run_uuid": run.tenable_run_uuid,
        },
        "counts": run.counts(),
    }


def sample_payload(profile: ScannerProfile) -> dict:
    """A `webhook.test` body shaped like a real `scan.completed` one, so receivers can be built against it."""
    now = timezone.now()
    run = ScanRun(
        pk=0,
        project=profile.project,
        profile=profile,
        status=RunStatus.SUCCEEDED,
        tenable_scan_id=profile.scan_id,
        tenable_scan_name=profile.scan_name,
        tenable_run_uuid="00000000-0000-0000-0000-000000000000",
        started_at=now - timedelta(minutes=3),
        finished_at=now,
        count_total=12,
        count_new=2,
        count_fixed=1,
        count_reopened=1,
        count_unchanged=9,
        count_hosts=3,
        count_by_severity={"4": 1, "3": 2, "2": 4, "1": 1, "0": 4},
    )
    payload = run_payload(run, WEBHOOK_TEST)
    payload["run"]["url"] = settings.SITE_URL + profile.project.get_absolute_url()
    payload["test"] = True
    return payload


def can_send(profile: ScannerProfile) -> bool:
    """Events are queued only for a profile with a webhook URL that a 410 has not turned off."""
    return bool(profile.webhook_url) and not profile.webhook_disabled_reason


def queue_event(
    profile: ScannerProfile, event: str, payload: dict, run: ScanRun | None = None
) -> WebhookDelivery:
    """Write the outbox row and hand it to a worker once the surrounding transaction commits."""
    delivery = WebhookDelivery.objects.create(
        profile=profile,
        run=run,
        event=event,
        message_id=new_message_id(),
        payload=payload,
        url=profile.webhook_url,
        next_attempt_at=timezone.now(),
    )
    enqueue(delivery.pk)
    return delivery


def queue_run_event(run: ScanRun) -> WebhookDelivery | None:
    """Queue `scan.completed` / `scan.failed` for a finished run; call it inside the transaction that finishes it.

    Canceled runs, uploads (no profile) and profiles without an enabled webhook send nothing.
    """
    try:
        # A savepoint: a broken event must not cost the run its import (nor leave the transaction unusable).
        with transaction.atomic():
            run = ScanRun.objects.select_related("project", "profile").get(pk=run.pk)  # the caller's is stale
            event = {RunStatus.SUCCEEDED: SCAN_COMPLETED, RunStatus.FAILED: SCAN_FAILED}.get(run.status)
            if event is None or run.profile is None or not can_send(run.profile):
                return None
            if run.webhook_deliveries.filter(event=event).exists():
                return None  # one event per run, however often the run is finished
            return queue_event(run.profile, event, run_payload(run, event), run=run)
    except Exception:
        log.exception("Could not queue the webhook event of run %s", run.pk)
        return None


def enqueue(delivery_id: int) -> None:
    """Send the delivery's task after commit; a dead broker only delays it (the sweeper picks the row up)."""
    transaction.on_commit(lambda: _publish(delivery_id))


def _publish(delivery_id: int) -> None:
    try:
        # By name: the task module imports this one, not the other way round.
        current_app.tasks[DELIVER_TASK].apply_async(args=[delivery_id], retry=False)
    except Exception:
        log.warning("Could not queue webhook delivery %s; the sweeper will retry", delivery_id, exc_info=True)


# ---------------------------------------------------------------------------------------------------------------
# Sending (called by the task)
# ---------------------------------------------------------------------------------------------------------------
def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before the attempt after `attempt` (1-based): full jitter within that step of the schedule,
    and never less than the receiver's Retry-After."""
    step = min(attempt, len(RETRY_SCHEDULE)) - 1
    low = RETRY_SCHEDULE[step - 1] if step > 0 else 0
    return max(random.uniform(low, RETRY_SCHEDULE[step]), retry_after or 0.0)


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due, pending delivery for this worker (one conditional update), or None if it is not ours to send."""
    now = timezone.now()
    lease = timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT + 30)  # an attempt never takes longer
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + lease)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("profile").get(pk=delivery_id)


@sensitive_variables("secrets")
def signing_secrets(profile: ScannerProfile, now: datetime | None = None) -> list[str]:
    """The current secret, then the previous one while its rotation grace period lasts."""
    secrets = [profile.webhook_secret]
    expires = profile.webhook_previous_secret_expires
    if profile.webhook_previous_secret and expires and expires > (now or timezone.now()):
        secrets.append(profile.webhook_previous_secret)
    return [s for s in secrets if s]


def send_once(delivery_id: int) -> float | None:
    """Claim the delivery, POST it once and record the attempt.

    Returns the seconds until the next attempt when it should be retried, else None (delivered, failed for
    good, canceled, or not ours to send).
    """
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    profile = delivery.profile
    if not profile.webhook_url or profile.webhook_disabled_reason:
        reason = profile.webhook_disabled_reason or "the webhook URL was removed"
        _close(delivery, Status.CANCELED, error=f"Not sent: {reason}"[:500])
        return None
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    retryable = True
    try:
        request_headers = headers(delivery.message_id, int(time.time()), body, signing_secrets(profile))
        request_headers["user-agent"] = USER_AGENT
        result = deliver(
            profile.webhook_url,
            body,
            request_headers,
            timeout=settings.WEBHOOK_TIMEOUT,
            allow_http=settings.WEBHOOK_ALLOW_HTTP,
            allowed_private=settings.WEBHOOK_ALLOWED_PRIVATE,
        )
    except RestrictedDestination as exc:
        result = DeliveryResult(
            status=None, duration_ms=0, error=exc.message, retry_after=None, body_excerpt=""
        )
        retryable = exc.transient
    except ValueError:  # no usable signing secret
        result = DeliveryResult(
            status=None,
            duration_ms=0,
            error="Not sent: the webhook has no signing secret. Use Rotate secret to create one.",
            retry_after=None,
            body_excerpt="",
        )
        retryable = False
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        status_code=result.status,
        error=(result.error or "")[:500],
        duration_ms=result.duration_ms,
    )
    if result.error is None:
        _close(delivery, Status.DELIVERED, code=result.status, delivered_at=timezone.now())
        return None
    if result.status == 410:
        disable(profile, f"The receiver answered 410 Gone at {timezone.now():%Y-%m-%d %H:%M} UTC.")
        _close(delivery, Status.FAILED, code=410, error=result.error)
        return None
    if result.status is not None and 300 <= result.status < 400:
        retryable = False  # the URL is wrong; the same request will be redirected again
    if retryable and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts, result.retry_after)
        WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING).update(
            status=Status.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_status_code=result.status,
            last_error=result.error[:500],
        )
        return delay
    _close(delivery, Status.FAILED, code=result.status, error=result.error)
    log.warning(
        "Webhook delivery %s (%s) of profile %s failed after %s attempts: %s",
        delivery.pk,
        delivery.event,
        profile.pk,
        delivery.attempts,
        result.error,
    )
    return None


def _close(
    delivery: WebhookDelivery, status: str, *, code: int | None = None, error: str = "", **fields
) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING).update(
        status=status, next_attempt_at=None, last_status_code=code, last_error=error[:500], **fields
    )


def disable(profile: ScannerProfile, reason: str) -> None:
    """Stop sending to a receiver that asked for it (410 Gone); saving the webhook URL again turns it back on."""
    ScannerProfile.objects.filter(pk=profile.pk).update(webhook_disabled_reason=reason[:300])
    profile.webhook_disabled_reason = reason[:300]
    record(None, "webhook.disabled", profile, None, project=profile.project_id, reason=reason)
    log.warning("Webhook of profile %s disabled: %s", profile.pk, reason)


def sweep(now: datetime | None = None) -> int:
    """Re-enqueue due deliveries whose message was lost (dead broker, crash after commit, lapsed claim).

    Returns how many were enqueued. Duplicates are harmless: only one worker can claim a row.
    """
    now = now or timezone.now()
    # A claim that lapsed means its worker died mid-attempt: the row is due again, at once.
    lapsed = WebhookDelivery.objects.filter(status=Status.SENDING, next_attempt_at__lte=now)
    due = list(lapsed.values_list("pk", flat=True)[:500])
    WebhookDelivery.objects.filter(pk__in=due, status=Status.SENDING).update(status=Status.PENDING)
    due += (
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now - SWEEP_GRACE)
        .exclude(pk__in=due)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: 500 - len(due)]
    )
    for pk in due:
        _publish(pk)
    return len(due)


# ---------------------------------------------------------------------------------------------------------------
# What people do on the Webhook page
# ---------------------------------------------------------------------------------------------------------------
def send_test(profile: ScannerProfile, user, request=None) -> WebhookDelivery:
    """Queue a `webhook.test` event through the same outbox and task as real events."""
    with transaction.atomic():
        delivery = queue_event(profile, WEBHOOK_TEST, sample_payload(profile))
        record(user, "webhook.test_sent", profile, request, message_id=delivery.message_id)
    return delivery


def redeliver(delivery: WebhookDelivery, user, request=None) -> bool:
    """Try a failed (or unsent) delivery once more, with the same webhook-id; False if it is not failed."""
    with transaction.atomic():
        changed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status__in=[Status.FAILED, Status.CANCELED]
        ).update(status=Status.PENDING, next_attempt_at=timezone.now(), delivered_at=None)
        if changed:
            enqueue(delivery.pk)
            record(
                user,
                "webhook.redelivered",
                delivery.profile,
                request,
                event=delivery.event,
                message_id=delivery.message_id,
            )
    return bool(changed)


@sensitive_variables("secret")
def rotate_secret(profile: ScannerProfile, user, request=None) -> str:
    """A new signing secret; the current one keeps signing (second) for the grace period. Returns the new one."""
    secret = generate_secret()
    with transaction.atomic():
        current = ScannerProfile.objects.select_for_update().only("webhook_secret").get(pk=profile.pk)
        expires = timezone.now() + SECRET_ROTATION_GRACE
        profile.webhook_previous_secret = current.webhook_secret
        profile.webhook_previous_secret_expires = expires if current.webhook_secret else None
        profile.webhook_secret = secret
        profile.save(
            update_fields=["webhook_secret", "webhook_previous_secret", "webhook_previous_secret_expires"]
        )
        record(user, "webhook.secret_rotated", profile, request, previous_valid_until=_iso(expires))
    return secret


def enable(profile: ScannerProfile, user, request=None) -> None:
    """Turn a webhook disabled by a 410 back on (events from now on are sent again)."""
    ScannerProfile.objects.filter(pk=profile.pk).update(webhook_disabled_reason="")
    profile.webhook_disabled_reason = ""
    record(user, "webhook.enabled", profile, request)
