"""A scanner profile's Webhook page: where events go, the delivery log, Send test event, Redeliver, Rotate secret.

Members of the project use the buttons; viewers only look (403 on POST); everyone else gets 404.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from projects.models import ScannerProfile
from projects.permissions import get_profile
from projects.profiles.services import REVEAL_SESSION_KEY, SECRET_ROTATION_GRACE, webhook_destination

from .models import WebhookAttempt, WebhookDelivery
from .services import enable, redeliver, rotate_secret, send_test

PER_PAGE = 20
ACTIVE = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING]


@never_cache
@require_GET
def webhook(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """The Webhook page; with htmx and `#webhook-log` as the target, only the delivery log (for polling)."""
    profile = get_profile(request, pk, profile_pk)
    deliveries = profile.webhook_deliveries.select_related("run").prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("-number", "-id"))
    )
    page = Paginator(deliveries, PER_PAGE).get_page(request.GET.get("page"))
    for delivery in page:
        delivery.attempts_shown = list(delivery.attempt_log.all())
        delivery.last_attempt = delivery.attempts_shown[0] if delivery.attempts_shown else None
    context = {
        "project": profile.project,
        "profile": profile,
        "page": page,
        "polling": any(d.status in ACTIVE for d in page),
        "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS,
        "grace_hours": f"{SECRET_ROTATION_GRACE.total_seconds() / 3600:g}",
    }
    if request.htmx and request.htmx.target == "webhook-log":
        return render(request, "projects/partials/_webhook_log.html", context)
    context |= {
        "shown_url": profile.webhook_url
        if profile.project.user_can_edit or not profile.webhook_url
        else webhook_destination(profile.webhook_url),
        "previous_valid": bool(
            profile.webhook_previous_secret_expires
            and profile.webhook_previous_secret_expires > timezone.now()
        ),
        "reveal": _pop_reveal(request, profile),
    }
    return render(request, "projects/webhook.html", context)


def _pop_reveal(request: HttpRequest, profile: ScannerProfile) -> dict | None:
    # The session holds only which profile's new secret to show, once; the secret is read from the row.
    if request.session.get(REVEAL_SESSION_KEY) != profile.pk:
        return None
    request.session.pop(REVEAL_SESSION_KEY)
    return {"profile": profile, "secret": profile.webhook_secret} if profile.webhook_secret else None


def _back(profile: ScannerProfile):
    return redirect("webhooks:detail", pk=profile.project_id, profile_pk=profile.pk)


def _refusal(profile: ScannerProfile) -> str:
    if not profile.webhook_url:
        return "This profile has no webhook URL. Edit the profile and enter one first."
    if profile.webhook_disabled_reason:
        return f"This webhook is turned off: {profile.webhook_disabled_reason} Turn it back on first."
    return ""


@require_POST
def webhook_test(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Send test event: a `webhook.test` event through the same outbox and task as real events."""
    profile = get_profile(request, pk, profile_pk, edit=True)
    refusal = _refusal(profile)
    if refusal:
        messages.error(request, refusal)
    else:
        send_test(profile, request.user, request)
        messages.success(request, "Test event queued. Its delivery appears in the log below.")
    return _back(profile)


@require_POST
def webhook_redeliver(request: HttpRequest, pk: int, profile_pk: int, delivery_pk: int) -> HttpResponse:
    """Redeliver: one more attempt of a failed delivery, with the same webhook-id."""
    profile = get_profile(request, pk, profile_pk, edit=True)
    delivery = get_object_or_404(profile.webhook_deliveries, pk=delivery_pk)
    refusal = _refusal(profile)
    if refusal:
        messages.error(request, refusal)
    elif redeliver(delivery, request.user, request):
        messages.success(request, f"Redelivery of {delivery.event} ({delivery.message_id}) queued.")
    else:
        messages.warning(request, "Only a failed delivery can be redelivered.")
    return _back(profile)


@require_POST
def webhook_rotate(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Rotate secret: a new signing secret, shown once; the old one keeps signing through the grace period."""
    profile = get_profile(request, pk, profile_pk, edit=True)
    if not profile.webhook_url:
        messages.error(request, _refusal(profile))
        return _back(profile)
    rotate_secret(profile, request.user, request)
    messages.success(
        request,
        f"New signing secret created. Requests carry both signatures (new first) for the next "
        f"{SECRET_ROTATION_GRACE.total_seconds() / 3600:g} hours: update your receiver before then.",
    )
    request.session[REVEAL_SESSION_KEY] = profile.pk
    return _back(profile)


@require_POST
def webhook_enable(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Turn back on a webhook that a 410 Gone answer turned off."""
    profile = get_profile(request, pk, profile_pk, edit=True)
    if profile.webhook_disabled_reason:
        enable(profile, request.user, request)
        messages.success(request, "Webhook turned back on: the next events will be sent.")
    return _back(profile)
