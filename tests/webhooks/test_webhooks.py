"""Scan-completion webhooks (issue #8): RELIABILITY §2.6 rows H1–H9, the outbox, and the Webhook page.

Deliveries go to a real receiver on 127.0.0.1 that checks every request with the reference `standardwebhooks`
package. Refusals use faked DNS answers and a connect spy: nothing ever connects beyond loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from celery.exceptions import Ignore
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import AuditEvent
from integrations.connectors.tenable_io.simulator import TenableSimulator
from outbound.signing import generate_secret, sign
from projects.choices import RunStatus
from projects.models import ScannerProfile, ScanRun
from projects.runs import services as runs
from projects.runs.services import execute_run
from tests.conftest import make_project
from tests.integrations.conftest import make_integration
from webhooks import services as webhooks
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import claim, queue_event, queue_run_event, send_once, sweep
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


# ---------------------------------------------------------------------------------------------------------------
# A loopback receiver that verifies what it gets
# ---------------------------------------------------------------------------------------------------------------
class Receiver:
    """Answers POSTs from a script of (status, headers, delay seconds, body) and records each request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple] = []
        self.secrets: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": headers,
                        "body": body,
                        "verified": receiver.verify(body, headers),
                    }
                )
                status, extra, delay, reply = (
                    receiver.script.pop(0) if receiver.script else (200, {}, 0, b"ok")
                )
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    if reply == "endless":
                        self.send_header("Content-Length", str(10**9))
                        self.end_headers()
                        while True:
                            self.wfile.write(b"x" * 65536)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client hung up (timeout or capped body), as intended

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/tenable"

    def verify(self, body: bytes, headers: dict) -> list[bool]:
        results = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                results.append(True)
            except WebhookVerificationError:
                results.append(False)
        return results

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1/32"]
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_TIMEOUT = 2.0
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def profile(receiver):
    project = make_project("Payments")
    profile = ScannerProfile.objects.create(
        project=project,
        integration=make_integration("https://cloud.tenable.example"),
        name="Weekly infra",
        scan_id=42,
        scan_name="Weekly infra scan",
        meta_data="env=prod",
        scan_tag="payments",
        webhook_url=receiver.url,
        webhook_secret=generate_secret(),
    )
    receiver.secrets = [profile.webhook_secret]
    return profile


@pytest.fixture
def no_publish(monkeypatch):
    """Collect what would be handed to the broker instead of sending it."""
    published: list[int] = []
    monkeypatch.setattr(webhooks, "_publish", published.append)
    return published


@pytest.fixture
def clock(monkeypatch):
    """Each attempt's webhook-timestamp one second after the previous one (still inside the 5 min tolerance)."""
    ticks = iter(range(1000))
    monkeypatch.setattr(webhooks, "time", SimpleNamespace(time=lambda: time.time() + next(ticks)))


def _test_delivery(profile) -> WebhookDelivery:
    return queue_event(profile, webhooks.WEBHOOK_TEST, webhooks.sample_payload(profile))


def _due_now(delivery: WebhookDelivery) -> None:
    """Fast-forward to the next attempt."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def _run(profile, status=RunStatus.IMPORTING, **fields) -> ScanRun:
    return ScanRun.objects.create(
        project=profile.project,
        profile=profile,
        status=status,
        tenable_scan_id=profile.scan_id,
        tenable_scan_name=profile.scan_name,
        started_at=timezone.now() - timedelta(minutes=2),
        **fields,
    )


# ---------------------------------------------------------------------------------------------------------------
# Refusals at send time (H1–H3): faked DNS, a connect spy, nothing leaves loopback
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def net(monkeypatch):
    """Fake DNS answers per host, and record (never make) every outgoing connect."""
    spy = SimpleNamespace(answers={}, lookups=[], connects=[])

    def getaddrinfo(host, port, *args, **kwargs):
        spy.lookups.append(host)
        answers = spy.answers.get(host, [])
        if answers and isinstance(answers[0], list):  # a sequence of answers: one per lookup
            answers = answers.pop(0)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers
        ]

    def connect(self, address):
        spy.connects.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return spy


@pytest.fixture
def remote_profile(settings, net):
    settings.WEBHOOK_ALLOWED_PRIVATE = []
    settings.WEBHOOK_ALLOW_HTTP = False
    return ScannerProfile.objects.create(
        project=make_project("Remote"),
        integration=make_integration("https://cloud.tenable.example"),
        name="Remote",
        scan_id=7,
        meta_data="x",
        webhook_url="https://hooks.example.com/x",
        webhook_secret=generate_secret(),
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:pass@example.com/hook",
        "https://example.com/a%0d%0aHost:evil",
        "https://example.com:25/hook",
    ],
)
def test_h1_loopback_and_bad_urls_are_refused_at_send_time_without_connecting(
    remote_profile, net, url, no_publish
):
    delivery = _test_delivery(remote_profile)
    ScannerProfile.objects.filter(pk=remote_profile.pk).update(webhook_url=url)  # bypassing the form's check

    assert send_once(delivery.pk) is None  # refused for good: not retried
    delivery.refresh_from_db()
    attempt = delivery.attempt_log.get()
    assert delivery.status == Status.FAILED and delivery.attempts == 1
    assert attempt.status_code is None and "Webhook destination not allowed" in attempt.error
    assert net.connects == []


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "224.0.0.1",
        "fe80::1",
    ],
)
def test_h2_metadata_and_private_addresses_are_refused(remote_profile, net, address, no_publish):
    net.answers["hooks.example.com"] = [address]
    delivery = _test_delivery(remote_profile)

    assert send_once(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED
    assert f"resolves to {address}" in delivery.last_error
    assert net.connects == []


def test_h3_one_private_record_among_public_ones_is_refused(remote_profile, net, no_publish):
    net.answers["hooks.example.com"] = ["93.184.216.34", "169.254.169.254"]
    delivery = _test_delivery(remote_profile)

    send_once(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and "169.254.169.254" in delivery.last_error
    assert net.connects == []


def test_h3_rebinding_cannot_swap_the_checked_address(remote_profile, net, no_publish):
    # First answer public, any later one private: the connection goes to the address that was checked.
    net.answers["hooks.example.com"] = [["93.184.216.34"], ["169.254.169.254"]]
    delivery = _test_delivery(remote_profile)

    delay = send_once(delivery.pk)
    assert net.lookups == ["hooks.example.com"]
    assert net.connects == [("93.184.216.34", 443)]  # the spy refuses it: nothing left the machine
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING and delivery.last_error == "connection refused"
    assert delay is not None  # a refused connection is worth retrying


def test_unresolvable_host_is_a_transient_refusal_and_retried(remote_profile, net, no_publish):
    delivery = _test_delivery(remote_profile)

    delay = send_once(delivery.pk)
    delivery.refresh_from_db()
    assert delay is not None and delivery.status == Status.PENDING
    assert "cannot be resolved" in delivery.last_error
    assert net.connects == []


# ---------------------------------------------------------------------------------------------------------------
# Delivery to the loopback receiver (H4–H8)
# ---------------------------------------------------------------------------------------------------------------
def test_h8_request_is_signed_the_standard_webhooks_way(profile, receiver, no_publish):
    delivery = _test_delivery(profile)

    assert send_once(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED and delivery.last_status_code == 200 and delivery.delivered_at
    (request,) = receiver.requests
    assert request["verified"] == [True]  # the reference implementation accepts it
    assert request["path"] == "/hooks/tenable"
    assert request["headers"]["webhook-id"] == delivery.message_id
    assert request["headers"]["content-type"] == "application/json"
    assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 10
    assert json.loads(request["body"]) == delivery.payload
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    assert attempt.duration_ms is not None


def test_h8_known_answer_vector():
    signature = sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_h8_rotation_signs_with_both_secrets_during_the_grace_period(profile, receiver, member, no_publish):
    old = profile.webhook_secret
    new = webhooks.rotate_secret(profile, member)
    profile.refresh_from_db()
    assert new.startswith("whsec_") and new != old
    assert profile.webhook_secret == new and profile.webhook_previous_secret == old
    assert (
        timedelta(hours=23) < profile.webhook_previous_secret_expires - timezone.now() <= timedelta(hours=24)
    )

    receiver.secrets = [new, old]
    send_once(_test_delivery(profile).pk)
    signatures = receiver.requests[-1]["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and receiver.requests[-1]["verified"] == [True, True]
    assert signatures[0] == sign(
        receiver.requests[-1]["headers"]["webhook-id"],
        int(receiver.requests[-1]["headers"]["webhook-timestamp"]),
        receiver.requests[-1]["body"],
        [new],
    )

    # After the grace period only the new secret signs.
    ScannerProfile.objects.filter(pk=profile.pk).update(
        webhook_previous_secret_expires=timezone.now() - timedelta(seconds=1)
    )
    send_once(_test_delivery(profile).pk)
    assert len(receiver.requests[-1]["headers"]["webhook-signature"].split(" ")) == 1
    assert receiver.requests[-1]["verified"] == [True, False]

    event = AuditEvent.objects.get(action="webhook.secret_rotated")
    assert new not in json.dumps(event.details) and old not in json.dumps(event.details)


def test_h6_retries_keep_the_webhook_id_and_change_timestamp_and_signature(
    profile, receiver, clock, no_publish
):
    receiver.script = [(500, {}, 0, b"boom"), (500, {}, 0, b"boom")]
    delivery = _test_delivery(profile)

    first = send_once(delivery.pk)
    assert 0 <= first <= 5  # the first retry comes after about 5 s
    assert send_once(delivery.pk) is None  # not due yet: a duplicate message does nothing
    _due_now(delivery)
    second = send_once(delivery.pk)
    assert 5 <= second <= 300
    _due_now(delivery)
    assert send_once(delivery.pk) is None

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED and delivery.attempts == 3
    headers = [r["headers"] for r in receiver.requests]
    assert len(headers) == 3 and all(r["verified"] == [True] for r in receiver.requests)
    assert {h["webhook-id"] for h in headers} == {delivery.message_id}
    stamps = [int(h["webhook-timestamp"]) for h in headers]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert len({h["webhook-signature"] for h in headers}) == 3
    codes = list(delivery.attempt_log.order_by("number").values_list("number", "status_code"))
    assert codes == [(1, 500), (2, 500), (3, 200)]


def test_h6_task_schedules_the_retry_and_honours_retry_after(profile, receiver, monkeypatch, no_publish):
    receiver.script = [(429, {"Retry-After": "120"}, 0, b"slow down")]
    delivery = _test_delivery(profile)
    countdowns: list[float] = []

    def retry(**kwargs):
        countdowns.append(kwargs["countdown"])
        return Ignore()

    monkeypatch.setattr(deliver_webhook, "retry", retry)
    deliver_webhook.apply(args=[delivery.pk])

    delivery.refresh_from_db()
    assert countdowns and countdowns[0] >= 120  # never sooner than Retry-After (the schedule says ~5 s)
    assert delivery.status == Status.PENDING and delivery.last_status_code == 429
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=115)


def test_retry_delay_follows_the_schedule_with_jitter():
    for _ in range(50):
        assert 0 <= webhooks.retry_delay(1) <= 5
        assert 5 <= webhooks.retry_delay(2) <= 300
        assert 300 <= webhooks.retry_delay(3) <= 1800
        assert 1800 <= webhooks.retry_delay(4) <= 7200
        assert webhooks.retry_delay(1, retry_after=60) >= 60
        assert webhooks.retry_delay(99) <= 24 * 3600


def test_h6_exhausted_attempts_fail_and_redeliver_sends_the_same_id_again(
    profile, receiver, settings, member, django_capture_on_commit_callbacks, no_publish
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.script = [(500, {}, 0, b""), (503, {}, 0, b"")]
    delivery = _test_delivery(profile)
    send_once(delivery.pk)
    _due_now(delivery)
    assert send_once(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and delivery.attempts == 2
    assert delivery.last_status_code == 503 and "503" in delivery.last_error

    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.redeliver(delivery, member) is True
    assert no_publish == [delivery.pk]
    send_once(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED and delivery.attempts == 3
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    assert webhooks.redeliver(delivery, member) is False  # delivered: nothing to redeliver
    assert AuditEvent.objects.filter(action="webhook.redelivered").count() == 1


def test_h4_redirect_is_not_followed_and_recorded(profile, receiver, no_publish):
    receiver.script = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, 0, b"")]
    delivery = _test_delivery(profile)

    assert send_once(delivery.pk) is None  # the URL is wrong: retrying cannot help
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert delivery.status == Status.FAILED and delivery.last_status_code == 302
    assert delivery.last_error == "redirect (302) not followed; update the webhook URL"


def test_h5_slow_receiver_times_out_and_is_retried(profile, receiver, settings, no_publish):
    settings.WEBHOOK_TIMEOUT = 1.0
    receiver.script = [(200, {}, 3, b"late")]
    delivery = _test_delivery(profile)

    started = time.monotonic()
    delay = send_once(delivery.pk)
    assert time.monotonic() - started < 2.5
    delivery.refresh_from_db()
    assert delay is not None and delivery.status == Status.PENDING
    assert delivery.attempt_log.get().error == "timeout after 1 s"


def test_h5_endless_response_body_is_capped(profile, receiver, no_publish):
    receiver.script = [(200, {}, 0, "endless")]
    delivery = _test_delivery(profile)

    started = time.monotonic()
    send_once(delivery.pk)
    assert time.monotonic() - started < 5
    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED


def test_h7_gone_disables_the_webhook_until_the_url_is_saved_again(profile, receiver, no_publish):
    waiting = _test_delivery(profile)
    receiver.script = [(410, {}, 0, b"gone")]
    delivery = _test_delivery(profile)

    assert send_once(delivery.pk) is None
    profile.refresh_from_db()
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and delivery.last_status_code == 410
    assert "410 Gone" in profile.webhook_disabled_reason
    assert AuditEvent.objects.filter(action="webhook.disabled").exists()

    # No further sends: events are not queued, and one queued before is not sent.
    run = _run(profile)
    run.finish(RunStatus.SUCCEEDED)
    assert not WebhookDelivery.objects.filter(run=run).exists()
    send_once(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELED and "410 Gone" in waiting.last_error
    assert len(receiver.requests) == 1

    # Bookkeeping saves leave it off; saving the profile (same URL or a new one) turns it back on.
    profile.save(update_fields=["scan_name"])
    profile.refresh_from_db()
    assert profile.webhook_disabled_reason
    profile.save()
    profile.refresh_from_db()
    assert profile.webhook_disabled_reason == ""
    run = _run(profile, status=RunStatus.WAITING)
    run.finish(RunStatus.FAILED, error="Tenable said no.")
    assert WebhookDelivery.objects.filter(run=run, event="scan.failed").exists()


# ---------------------------------------------------------------------------------------------------------------
# Events and the outbox (H9)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def sim(settings):
    settings.TENABLE_POLL_INITIAL = 0.05
    settings.TENABLE_POLL_MAX = 0.1
    simulator = TenableSimulator(scans=1, launch_seconds=0.2, hosts_down=0)
    server = simulator.serve()
    yield server
    server.stop()


@pytest.fixture
def sim_profile(sim, profile):
    scan_id = sim.sim.add_scan("Webhook scan", hosts=3, findings_per_host=5, runs=1)
    ScannerProfile.objects.filter(pk=profile.pk).update(
        scan_id=scan_id, integration=make_integration(sim.url, name="Sim")
    )
    profile.refresh_from_db()
    return profile


def test_completed_run_queues_one_event_with_the_full_payload(
    sim_profile, settings, django_capture_on_commit_callbacks, no_publish
):
    settings.SITE_URL = "https://console.example.com"
    run = _run(sim_profile, status=RunStatus.QUEUED, trigger="schedule")
    with django_capture_on_commit_callbacks(execute=True):
        execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    delivery = WebhookDelivery.objects.get(run=run)
    assert no_publish == [delivery.pk]  # handed to the broker after the commit
    assert delivery.event == "scan.completed" and delivery.status == Status.PENDING
    assert delivery.url == sim_profile.webhook_url and delivery.message_id.startswith("msg_")
    payload = delivery.payload
    assert payload["event"] == "scan.completed"
    assert payload["project"] == {"id": run.project_id, "name": "Payments"}
    assert payload["profile"] == {
        "id": sim_profile.pk,
        "name": "Weekly infra",
        "meta_data": "env=prod",
        "scan_tag": "payments",
    }
    assert payload["run"]["id"] == run.pk and payload["run"]["status"] == "succeeded"
    assert payload["run"]["url"] == f"https://console.example.com/projects/{run.project_id}/runs/{run.pk}/"
    assert payload["run"]["trigger"] == "schedule" and payload["run"]["finished_at"]
    assert payload["tenable"] == {
        "scan_id": sim_profile.scan_id,
        "scan_name": run.tenable_scan_name,
        "run_uuid": run.tenable_run_uuid,
    }
    counts = payload["counts"]
    assert counts["new"] == run.count_new > 0 and counts["fixed"] == 0 and counts["reopened"] == 0
    assert sum(counts["by_severity"].values()) == run.count_total
    assert set(counts["by_severity"]) == {"critical", "high", "medium", "low", "info"}

    # The same Tenable run again is "up to date": scan.completed with nothing new or fixed.
    again = _run(sim_profile, status=RunStatus.QUEUED)
    execute_run(again.pk)
    again.refresh_from_db()
    assert again.up_to_date
    payload = WebhookDelivery.objects.get(run=again).payload
    assert payload["event"] == "scan.completed" and payload["run"]["up_to_date"] is True
    assert payload["counts"]["new"] == payload["counts"]["fixed"] == 0


def test_failed_run_sends_scan_failed_and_canceled_run_sends_nothing(profile, no_publish):
    failed = _run(profile, status=RunStatus.WAITING)
    failed.finish(RunStatus.FAILED, error="The Tenable.io scan ended as “aborted”.")
    delivery = WebhookDelivery.objects.get(run=failed)
    assert delivery.event == "scan.failed"
    assert delivery.payload["run"]["error"] == "The Tenable.io scan ended as “aborted”."
    failed.finish(RunStatus.FAILED, error="again")  # already finished: no second event
    assert WebhookDelivery.objects.filter(run=failed).count() == 1

    canceled = _run(profile, status=RunStatus.IMPORTING)
    runs.cancel_run(canceled)
    canceled.finish(RunStatus.SUCCEEDED)  # the worker finishing after the cancel changes nothing
    assert not WebhookDelivery.objects.filter(run=canceled).exists()


def test_no_event_without_a_webhook_url_or_for_uploads(profile, no_publish):
    ScannerProfile.objects.filter(pk=profile.pk).update(webhook_url="")
    run = _run(profile)
    run.finish(RunStatus.SUCCEEDED)
    upload = ScanRun.objects.create(project=profile.project, status=RunStatus.IMPORTING, trigger="upload")
    upload.finish(RunStatus.SUCCEEDED)
    assert not WebhookDelivery.objects.exists()
    assert queue_run_event(run) is None


def test_h9_event_exists_only_if_the_completion_commits(profile, no_publish):
    run = _run(profile)
    with pytest.raises(RuntimeError), transaction.atomic():
        run.finish(RunStatus.SUCCEEDED, count_new=3)
        assert WebhookDelivery.objects.filter(run=run).exists()  # written with the completion…
        raise RuntimeError("the import failed after finishing the run")
    run.refresh_from_db()
    assert run.status == RunStatus.IMPORTING and not WebhookDelivery.objects.exists()  # …and gone with it
    assert no_publish == []


def test_h9_crash_after_commit_before_send_is_delivered_once_by_the_sweeper(
    sim_profile, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    run = _run(sim_profile, status=RunStatus.QUEUED)
    with django_capture_on_commit_callbacks(execute=False):  # the worker died before the message went out
        execute_run(run.pk)
    delivery = WebhookDelivery.objects.get(run=run)
    assert delivery.status == Status.PENDING and receiver.requests == []

    sent: list[int] = []
    monkeypatch.setattr(webhooks, "_publish", lambda pk: (sent.append(pk), deliver_webhook.apply(args=[pk])))
    assert sweep(now=timezone.now()) == 0  # just due: the original message gets a moment first
    later = timezone.now() + timedelta(minutes=1)
    assert sweep(now=later) == 1
    assert sweep(now=later) == 0
    deliver_webhook.apply(args=[delivery.pk])  # a late duplicate of the lost message does nothing

    delivery.refresh_from_db()
    assert sent == [delivery.pk] and delivery.status == Status.DELIVERED
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"] == [True]
    assert receiver.requests[0]["headers"]["webhook-id"] == delivery.message_id


def test_h9_a_second_concurrent_claim_does_nothing(profile, receiver, no_publish):
    delivery = _test_delivery(profile)
    assert claim(delivery.pk) is not None
    assert claim(delivery.pk) is None
    assert send_once(delivery.pk) is None  # a duplicate message while the first worker sends
    assert receiver.requests == [] and WebhookAttempt.objects.count() == 0

    # The first worker died mid-attempt: once its claim lapses, the sweeper makes the row due again.
    assert sweep() == 0
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # the lease ran out
    assert sweep() == 1
    assert no_publish == [delivery.pk]
    send_once(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED and delivery.attempts == 2 and len(receiver.requests) == 1


def test_a_dead_broker_does_not_break_the_run(profile, monkeypatch, django_capture_on_commit_callbacks):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(deliver_webhook, "apply_async", refuse)
    run = _run(profile)
    with django_capture_on_commit_callbacks(execute=True):
        run.finish(RunStatus.SUCCEEDED)
    assert WebhookDelivery.objects.get(run=run).status == Status.PENDING  # the sweeper will send it


# ---------------------------------------------------------------------------------------------------------------
# The Webhook page
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def page_profile(profile, member, viewer):
    profile.project.memberships.create(user=member, role="member")
    profile.project.memberships.create(user=viewer, role="viewer")
    return profile


def _url(profile, name="webhooks:detail", *extra):
    return reverse(name, args=[profile.project_id, profile.pk, *extra])


def test_member_sends_a_test_event_and_sees_it_in_the_log(
    client, member, page_profile, receiver, django_capture_on_commit_callbacks, no_publish
):
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(page_profile, "webhooks:test"))
    assert response.status_code == 302 and response["Location"] == _url(page_profile)
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "webhook.test" and delivery.payload["test"] is True
    assert no_publish == [delivery.pk]
    send_once(delivery.pk)

    response = client.get(_url(page_profile))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Test event queued" in html and "webhook.test" in html and delivery.message_id in html
    assert page_profile.webhook_url in html and ">200<" in html
    assert page_profile.webhook_secret not in html
    event = AuditEvent.objects.get(action="webhook.test_sent")
    assert event.actor == member and page_profile.webhook_secret not in json.dumps(event.details)

    # The log alone, for htmx polling.
    partial = client.get(_url(page_profile), headers={"HX-Request": "true", "HX-Target": "webhook-log"})
    assert b'id="webhook-log"' in partial.content and b"<html" not in partial.content


def test_rotate_shows_the_new_secret_once(client, member, page_profile):
    client.force_login(member)
    old = page_profile.webhook_secret
    response = client.post(_url(page_profile, "webhooks:rotate"), follow=True)
    page_profile.refresh_from_db()
    html = response.content.decode()
    assert page_profile.webhook_secret != old and page_profile.webhook_secret in html
    assert old not in html
    assert "Rotation in progress" in html
    assert page_profile.webhook_secret not in client.get(_url(page_profile)).content.decode()


def test_redeliver_from_the_page(
    client, member, page_profile, django_capture_on_commit_callbacks, no_publish
):
    client.force_login(member)
    delivery = _test_delivery(page_profile)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.FAILED, attempts=8, last_error="HTTP 500"
    )
    assert "Redeliver" in client.get(_url(page_profile)).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url(page_profile, "webhooks:redeliver", delivery.pk))
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING and no_publish[-1] == delivery.pk


def test_turn_back_on_after_gone(client, member, page_profile):
    ScannerProfile.objects.filter(pk=page_profile.pk).update(
        webhook_disabled_reason="The receiver answered 410 Gone."
    )
    client.force_login(member)
    html = client.get(_url(page_profile)).content.decode()
    assert "turned off" in html and "Turn back on" in html
    client.post(_url(page_profile, "webhooks:test"))
    assert not WebhookDelivery.objects.exists()  # refused while off

    client.post(_url(page_profile, "webhooks:enable"))
    page_profile.refresh_from_db()
    assert page_profile.webhook_disabled_reason == ""
    assert AuditEvent.objects.filter(action="webhook.enabled").exists()


def test_viewer_looks_but_cannot_act(client, viewer, page_profile):
    client.force_login(viewer)
    delivery = _test_delivery(page_profile)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED)
    response = client.get(_url(page_profile))
    html = response.content.decode()
    assert response.status_code == 200 and delivery.message_id in html
    assert "Send test event" not in html and "Redeliver" not in html and "Rotate secret" not in html
    assert "/hooks/tenable" not in html  # the path may carry a token: viewers see the host only
    for name, extra in [
        ("webhooks:test", ()),
        ("webhooks:rotate", ()),
        ("webhooks:enable", ()),
        ("webhooks:redeliver", (delivery.pk,)),
    ]:
        assert client.post(_url(page_profile, name, *extra)).status_code == 403
    assert WebhookDelivery.objects.count() == 1


def test_outsiders_get_404(client, outsider, page_profile):
    client.force_login(outsider)
    assert client.get(_url(page_profile)).status_code == 404
    assert client.post(_url(page_profile, "webhooks:test")).status_code == 404
    other = make_project("Other", members=[outsider])
    assert client.get(reverse("webhooks:detail", args=[other.pk, page_profile.pk])).status_code == 404


def test_profiles_list_links_to_the_webhook_page(client, member, page_profile):
    client.force_login(member)
    html = client.get(reverse("projects:scanners", args=[page_profile.project_id])).content.decode()
    assert _url(page_profile) in html
