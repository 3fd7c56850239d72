"""Stored keys only ever go to the API URL saved with them; custom API URLs are limited to Tenable's hosts (S8)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from integrations.models import Integration
from integrations.services import (
    NOT_ALLOWED,
    URL_CHANGED,
    AddressNotAllowed,
    CredentialsUnavailable,
    is_allowed_api_url,
    open_connector,
)
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_SECRET_KEY

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


class Listener:
    """A loopback TCP listener that keeps every byte sent to it and answers 401, so a client never hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _form(url: str, access: str = "", secret: str = "", name: str = "Tenable.io VM") -> dict:
    return {"name": name, "access_key": access, "secret_key": secret, "api_url": url}


def test_test_connection_to_a_new_url_with_blank_keys_sends_no_keys(
    admin_client, tenable_simulator, listener
):
    """S8: a loopback listener as the new URL receives no X-ApiKeys header (nor any request at all)."""
    integration = make_integration(tenable_simulator.url)
    response = admin_client.post(
        reverse("integrations:test", args=[integration.pk]),
        _form(f"http://127.0.0.1:{listener.port}"),
        headers=HX,
    )
    html = response.content.decode()
    assert "enter the User Key and Secret Key again" in html
    assert b"x-apikeys" not in b"".join(listener.received).lower()
    assert listener.received == []
    integration.refresh_from_db()
    assert integration.api_url == tenable_simulator.url and integration.last_tested_at is None


def test_save_with_a_new_url_and_blank_keys_is_refused(admin_client, tenable_simulator, listener):
    integration = make_integration(tenable_simulator.url)
    response = admin_client.post(
        reverse("integrations:settings", args=[integration.pk]),
        _form(f"http://127.0.0.1:{listener.port}", access=SIM_ACCESS_KEY),  # one key is not enough
        headers=HX,
    )
    assert response.status_code == 200
    assert "enter the User Key and Secret Key again" in response.content.decode()
    assert listener.received == []
    integration.refresh_from_db()
    assert integration.api_url == tenable_simulator.url
    assert not AuditEvent.objects.filter(action="integration.changed").exists()


def test_stored_keys_never_leave_for_another_url_at_the_lowest_layer(tenable_simulator, listener):
    """Even a caller that skips the form (or an instance a form edited in memory) cannot redirect stored keys."""
    integration = make_integration(tenable_simulator.url)
    other = f"http://127.0.0.1:{listener.port}"
    with pytest.raises(CredentialsUnavailable) as refused:
        open_connector(integration, api_url=other)
    assert refused.value.message == URL_CHANGED
    integration.api_url = other  # what ModelForm validation does to the instance
    with pytest.raises(CredentialsUnavailable):
        open_connector(
            integration, access_key=SIM_ACCESS_KEY
        )  # half typed: the secret would be the stored one
    with pytest.raises(CredentialsUnavailable):
        open_connector(integration)
    assert listener.received == []
    # Both keys typed in are the user's own trial: they may go to the new (allowed) URL.
    assert open_connector(integration, access_key="typed-a", secret_key="typed-s").client.api_url == other


def test_new_url_with_both_keys_is_saved_and_the_audit_names_the_urls(admin_client, tenable_simulator):
    from integrations.connectors.tenable_io.simulator import TenableSimulator

    integration = make_integration("http://127.0.0.1:9")
    second = TenableSimulator(access_key=SIM_ACCESS_KEY, secret_key=SIM_SECRET_KEY).serve()
    try:
        response = admin_client.post(
            reverse("integrations:settings", args=[integration.pk]),
            _form(second.url, SIM_ACCESS_KEY, SIM_SECRET_KEY),
            headers=HX,
        )
    finally:
        second.stop()
    assert "closeDrawer" in response["HX-Trigger-After-Swap"]
    integration.refresh_from_db()
    assert integration.api_url == second.url and integration.last_test_ok
    change = AuditEvent.objects.get(action="integration.changed")
    assert change.details["api_url"] == second.url
    assert change.details["previous_api_url"] == "http://127.0.0.1:9"
    assert set(change.details["fields"]) == {"access_key", "api_url", "secret_key"}
    tested = AuditEvent.objects.get(action="integration.tested")
    assert tested.details["api_url"] == second.url
    assert SIM_SECRET_KEY not in str(change.details) + str(tested.details)


def test_a_trial_test_connection_records_the_url_it_reached(admin_client, tenable_simulator):
    admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]),
        _form(tenable_simulator.url, SIM_ACCESS_KEY, SIM_SECRET_KEY),
        headers=HX,
    )
    assert AuditEvent.objects.get(action="integration.tested").details["api_url"] == tenable_simulator.url


@pytest.mark.parametrize(
    "url,allowed",
    [
        ("https://cloud.tenable.com", True),
        ("https://fedcloud.tenable.com", True),
        ("https://eu.cloud.tenable.com/", True),
        ("https://CLOUD.TENABLE.COM", True),
        ("https://any-host/", False),
        ("http://cloud.tenable.com", False),
        ("https://cloud.tenable.com:8443", False),
        ("https://cloud.tenable.com.evil.example", False),
        ("https://eviltenable.com", False),
        ("https://user:pw@cloud.tenable.com", False),
        ("https://127.0.0.2", False),
        ("http://localhost:8834", False),
        ("ftp://cloud.tenable.com", False),
    ],
)
def test_custom_hosts_are_limited_to_tenable(settings, url, allowed):
    settings.DEBUG = False
    settings.TENABLE_API_HOSTS = []
    assert is_allowed_api_url(url) is allowed


def test_listed_hosts_and_loopback_under_debug(settings):
    settings.DEBUG, settings.TENABLE_API_HOSTS = False, []
    assert not is_allowed_api_url("http://127.0.0.1:8834")
    settings.TENABLE_API_HOSTS = ["127.0.0.1", "tenable-proxy.example.com"]
    assert is_allowed_api_url("http://127.0.0.1:8834")
    assert is_allowed_api_url("https://tenable-proxy.example.com/")
    assert not is_allowed_api_url("http://tenable-proxy.example.com/")  # plain http only to loopback
    assert not is_allowed_api_url("https://other.example.com/")
    settings.DEBUG, settings.TENABLE_API_HOSTS = True, []
    assert is_allowed_api_url("http://127.0.0.1:8834") and is_allowed_api_url("http://localhost:8834")
    assert not is_allowed_api_url("https://any-host/")


def test_any_host_is_refused_before_anything_is_sent(admin_client, settings):
    """The audit's example (any host outside Tenable): typed keys are not sent there either."""
    html = admin_client.post(
        reverse("integrations:test_new", args=["tenableiovm"]),
        _form("https://any-host.example/", "typed-access", "typed-secret"),
        headers=HX,
    ).content.decode()
    assert "not an allowed Tenable.io address" in html
    response = admin_client.post(
        reverse("integrations:new", args=["tenableiovm"]),
        _form("https://any-host.example/", "typed-access", "typed-secret"),
        headers=HX,
    )
    assert "not an allowed Tenable.io address" in response.content.decode()
    assert not Integration.objects.exists()
    with pytest.raises(AddressNotAllowed):
        open_connector(
            Integration(connector="tenableiovm", api_url="https://any-host.example"),
            access_key="a",
            secret_key="s",
        )


def test_refused_and_tls_failure_outside_the_allowed_set_read_the_same(admin_client, settings, listener):
    """Error wording must not reveal which internal addresses exist: nothing is contacted, one sentence."""
    settings.TENABLE_API_HOSTS = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once we leave: a refused connection
    answers = []
    for url in (f"http://127.0.0.1:{closed}", f"https://127.0.0.1:{listener.port}"):  # refused / TLS failure
        html = admin_client.post(
            reverse("integrations:test_new", args=["tenableiovm"]),
            _form(url, "typed-access", "typed-secret"),
            headers=HX,
        ).content.decode()
        answers.append(html)
    assert all("not an allowed Tenable.io address" in html for html in answers)
    assert answers[0] == answers[1]
    assert listener.received == []
    assert NOT_ALLOWED.startswith("This is not an allowed Tenable.io address")
