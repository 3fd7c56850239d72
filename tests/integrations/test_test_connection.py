"""Test Connection and Save and Connect against the simulator over real HTTP (rows T1–T6 as the user sees them)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from integrations.models import Integration
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import (
    SIM_ACCESS_KEY,
    SIM_FORBIDDEN_ACCESS_KEY,
    SIM_FORBIDDEN_SECRET_KEY,
    SIM_SECRET_KEY,
)

pytestmark = pytest.mark.django_db

INVALID_KEYS = "Invalid User Key or Secret Key. Verify the API keys in the Tenable.io console under Settings &gt; My Account &gt; API Keys. Regenerate if needed."
HX = {"HX-Request": "true"}


def _form(
    url: str, access: str = SIM_ACCESS_KEY, secret: str = SIM_SECRET_KEY, name: str = "Tenable.io VM"
) -> dict:
    return {"name": name, "access_key": access, "secret_key": secret, "api_url": url}


def _scan_requests(sim) -> int:
    return sum(1 for r in sim.requests if r.path == "/scans")


def test_connection_successful_with_valid_keys(admin_client, tenable_simulator):
    response = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), _form(tenable_simulator.url), headers=HX
    )
    html = response.content.decode()
    assert "Connection successful" in html and "scans visible" in html
    assert SIM_SECRET_KEY not in html and SIM_ACCESS_KEY not in html


def test_wrong_keys_show_the_invalid_keys_message_and_are_not_retried(admin_client, tenable_simulator):
    response = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]),
        _form(tenable_simulator.url, "wrong-access", "wrong-secret"),
        headers=HX,
    )
    html = response.content.decode()
    assert "Connection failed" in html and INVALID_KEYS in html
    assert _scan_requests(tenable_simulator.sim) == 1


def test_forbidden_key_shows_the_permission_message(admin_client, tenable_simulator):
    form = _form(tenable_simulator.url, SIM_FORBIDDEN_ACCESS_KEY, SIM_FORBIDDEN_SECRET_KEY)
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), form, headers=HX
    ).content.decode()
    assert "Permission denied" in html and "Basic role with Can View" in html
    assert _scan_requests(tenable_simulator.sim) == 1


def test_zero_scans_is_a_success_with_the_seed_resolution(admin_client, tenable_simulator):
    tenable_simulator.sim.set_fault("no_scans")
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), _form(tenable_simulator.url), headers=HX
    ).content.decode()
    assert "Connection successful" in html
    assert (
        "Ensure at least one completed scan exists in your Tenable.io account and the API key has access to it."
        in html
    )


def test_unreachable_host_says_so(admin_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), _form(f"http://127.0.0.1:{port}"), headers=HX
    ).content.decode()
    assert "Connection failed" in html and "Cannot connect to 127.0.0.1" in html


def test_dns_failure_says_cannot_resolve(admin_client, monkeypatch, settings):
    settings.TENABLE_API_HOSTS = ["tenable.invalid"]  # a listed host, so the request is attempted

    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    started = time.monotonic()
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), _form("https://tenable.invalid"), headers=HX
    ).content.decode()
    assert "Cannot resolve tenable.invalid" in html
    assert time.monotonic() - started < 5


def test_hung_tenable_cannot_hang_the_web_worker(admin_client, settings):
    settings.TENABLE_TIMEOUT = (1.0, 1.0)
    settings.TENABLE_INTERACTIVE_BUDGET = 2.0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(
        target=lambda: [accepted.append(listener.accept()) for _ in range(4)], daemon=True
    ).start()
    started = time.monotonic()
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]),
        _form(f"http://127.0.0.1:{listener.getsockname()[1]}"),
        headers=HX,
    ).content.decode()
    elapsed = time.monotonic() - started
    listener.close()
    assert "did not respond within" in html
    assert elapsed < 6


def test_rate_limited_message_says_when_to_retry(admin_client, tenable_simulator, settings):
    settings.TENABLE_INTERACTIVE_BUDGET = 1.0
    tenable_simulator.sim.set_fault("rate_limit", every=1, retry_after=30)
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]), _form(tenable_simulator.url), headers=HX
    ).content.decode()
    assert "rate-limiting" in html and "30 seconds" in html


def test_plain_http_only_for_loopback(admin_client):
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]),
        _form("http://tenable.example.com"),
        headers=HX,
    ).content.decode()
    assert "Use an https:// URL" in html


def test_save_and_connect_stores_encrypted_keys_and_the_result(admin_client, admin_user, tenable_simulator):
    response = admin_client.post(
        reverse("integrations:new", args=["tenableiovm"]), _form(tenable_simulator.url), headers=HX
    )
    assert (
        "closeDrawer" in response["HX-Trigger-After-Swap"]
        and "integrationsChanged" in response["HX-Trigger-After-Swap"]
    )
    integration = Integration.objects.get()
    assert integration.access_key == SIM_ACCESS_KEY and integration.secret_key == SIM_SECRET_KEY
    assert integration.last_test_ok and integration.state == "connected"
    assert integration.access_key_hint == SIM_ACCESS_KEY[-4:]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key FROM integrations_integration")
        raw = bytes(cursor.fetchone()[0])
    assert SIM_SECRET_KEY.encode() not in raw and raw.startswith(b"gAAAA")
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "Connected" in page and "Last tested" in page
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"integration.created", "integration.changed", "integration.tested"} <= actions


def test_failing_keys_are_saved_only_after_the_user_saw_the_failure(admin_client, tenable_simulator):
    url = reverse("integrations:new", args=["tenableiovm"])
    form = _form(tenable_simulator.url, "wrong-access", "wrong-secret")
    first = admin_client.post(url, form, headers=HX)
    html = first.content.decode()
    assert (
        first["HX-Retarget"] == "#test-result" and "Save anyway" in html and not Integration.objects.exists()
    )
    token = html.split('name="confirm_failed" value="')[1].split('"')[0]
    # The token is bound to what was submitted: other keys with the same token are not saved.
    admin_client.post(url, {**form, "secret_key": "other", "confirm_failed": token}, headers=HX)
    assert not Integration.objects.exists()
    admin_client.post(url, {**form, "confirm_failed": token}, headers=HX)
    integration = Integration.objects.get()
    assert integration.state == "failing" and "Invalid User Key" in integration.last_test_message
    assert "Connection failing" in admin_client.get(reverse("integrations:scanners")).content.decode()


def test_blank_secret_keeps_the_stored_one(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    response = admin_client.post(
        reverse("integrations:settings", args=[integration.pk]),
        {"name": "Renamed", "access_key": "", "secret_key": "", "api_url": tenable_simulator.url},
        headers=HX,
    )
    assert response.status_code == 200
    integration.refresh_from_db()
    assert (
        integration.name == "Renamed"
        and integration.secret_key == SIM_SECRET_KEY
        and integration.last_test_ok
    )
    change = AuditEvent.objects.get(action="integration.changed")
    assert change.details == {"fields": ["name"]}


def test_test_connection_of_a_saved_connection_uses_stored_keys_and_updates_the_card(
    admin_client, tenable_simulator
):
    integration = make_integration(tenable_simulator.url)
    response = admin_client.post(
        reverse("integrations:test", args=[integration.pk]),
        {"name": "", "access_key": "", "secret_key": "", "api_url": tenable_simulator.url},
        headers=HX,
    )
    assert "Connection successful" in response.content.decode()
    assert "integrationsChanged" in response["HX-Trigger"]
    integration.refresh_from_db()
    assert integration.last_test_ok and integration.last_tested_at


def test_clicking_test_twice_is_harmless(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    url = reverse("integrations:test", args=[integration.pk])
    for _ in range(2):
        assert (
            "Connection successful"
            in admin_client.post(url, {"api_url": tenable_simulator.url}, headers=HX).content.decode()
        )
    assert (
        Integration.objects.count() == 1
        and AuditEvent.objects.filter(action="integration.tested").count() == 2
    )
