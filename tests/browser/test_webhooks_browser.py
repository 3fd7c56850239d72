"""The Webhook page (issue 8): open it from Settings › Scanners, Send test event, see the 2xx in the log."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.choices import Role
from outbound.signing import generate_secret, new_message_id
from projects.choices import RunStatus
from projects.models import ScannerProfile, ScanRun
from tests.conftest import login, make_project, make_user
from tests.integrations.conftest import make_integration
from tests.webhooks.test_webhooks import Receiver
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import run_payload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOT_DIR", "/tmp/shots")


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1/32"]
    settings.WEBHOOK_ALLOW_HTTP = True
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def eager_celery():
    """Run the delivery task inline when it is published (after the request's commit): no broker, no race."""
    from config.celery import app

    previous, app.conf.task_always_eager = app.conf.task_always_eager, True
    yield
    app.conf.task_always_eager = previous


def _history(profile: ScannerProfile) -> None:
    """Two earlier events, so the log shows a failed delivery (with Redeliver) and a delivered one."""
    now = timezone.now()
    run = ScanRun.objects.create(
        project=profile.project,
        profile=profile,
        status=RunStatus.FAILED,
        error="The Tenable.io scan ended as “aborted”.",
        started_at=now - timedelta(hours=5),
        finished_at=now - timedelta(hours=5),
    )
    failed = WebhookDelivery.objects.create(
        profile=profile,
        run=run,
        event="scan.failed",
        message_id=new_message_id(),
        payload=run_payload(run, "scan.failed"),
        url=profile.webhook_url,
        status=WebhookDelivery.Status.FAILED,
        attempts=3,
        last_status_code=500,
        last_error="HTTP 500 Internal Server Error",
        created_at=now - timedelta(hours=5),
    )
    for number, (code, error) in enumerate(
        [
            (None, "connection refused"),
            (503, "HTTP 503 Service Unavailable"),
            (500, "HTTP 500 Internal Server Error"),
        ],
        start=1,
    ):
        WebhookAttempt.objects.create(
            delivery=failed,
            number=number,
            at=now - timedelta(hours=5) + timedelta(minutes=number * 7),
            status_code=code,
            error=error,
            duration_ms=40 + number * 13,
        )
    done = WebhookDelivery.objects.create(
        profile=profile,
        event="scan.completed",
        message_id=new_message_id(),
        payload={},
        url=profile.webhook_url,
        status=WebhookDelivery.Status.DELIVERED,
        attempts=1,
        last_status_code=204,
        created_at=now - timedelta(hours=2),
        delivered_at=now - timedelta(hours=2),
    )
    WebhookAttempt.objects.create(
        delivery=done, number=1, at=now - timedelta(hours=2), status_code=204, duration_ms=87
    )


def test_send_test_event_shows_in_the_delivery_log(page, receiver, eager_celery):
    member = make_user("secops", Role.MEMBER)
    project = make_project("Payments", members=[member])
    profile = ScannerProfile.objects.create(
        project=project,
        integration=make_integration("https://cloud.tenable.example"),
        name="Weekly infra",
        scan_id=42,
        scan_name="Weekly infra scan",
        meta_data="env=prod",
        webhook_url=receiver.url,
        webhook_secret=generate_secret(),
    )
    receiver.secrets = [profile.webhook_secret]
    _history(profile)

    login(page, "secops")
    page.goto(f"/projects/{project.pk}/settings/scanners/")
    page.locator(f"#profile-{profile.pk}").get_by_role("link", name="Webhook").click()
    expect(page.get_by_role("heading", name="Webhook · Weekly infra")).to_be_visible()
    expect(page.get_by_text(receiver.url)).to_be_visible()
    expect(page.get_by_role("button", name="Redeliver")).to_have_count(1)

    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    row = page.locator("#webhook-log tbody tr", has_text="webhook.test")
    expect(row).to_have_count(1)
    expect(row.locator(".badge-success", has_text="200")).to_be_visible()
    expect(row.get_by_text("Delivered")).to_be_visible()

    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"] == [True]
    delivery = WebhookDelivery.objects.get(event="webhook.test")
    assert receiver.requests[0]["headers"]["webhook-id"] == delivery.message_id
    assert page.dialogs == []

    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, "issue8-webhook.png"), full_page=True)
