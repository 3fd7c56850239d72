"""Keys at rest and everywhere else (RELIABILITY rows S1–S7)."""

from __future__ import annotations

import io
import logging
import secrets

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.urls import reverse

from integrations.models import Integration
from tests.integrations.conftest import make_integration
from tests.test_crawl import crawl_urls

pytestmark = pytest.mark.django_db

SENTINEL_ACCESS = "SENTINELACCESS0000000000000000000000000000000000000000000000abcd"
SENTINEL_SECRET = "SENTINELSECRET11111111111111111111111111111111111111111111111111"


@pytest.fixture
def sentinel(db):
    return make_integration("http://127.0.0.1:9", access_key=SENTINEL_ACCESS, secret_key=SENTINEL_SECRET)


def test_sentinel_secret_absent_from_every_page_fragment_and_log(admin_client, sentinel, caplog):
    caplog.set_level(logging.DEBUG)
    seen = 0
    for url, response in crawl_urls(admin_client, {"pk": sentinel.pk}):
        body = response.content.decode(errors="replace")
        assert SENTINEL_SECRET not in body and SENTINEL_ACCESS not in body, url
        seen += 1
    # The settings drawer, the admin change form and the test fragment too.
    for url in (
        reverse("integrations:settings", args=[sentinel.pk]),
        reverse("admin:integrations_integration_change", args=[sentinel.pk]),
        reverse("admin:integrations_integration_changelist"),
    ):
        for headers in ({}, {"HX-Request": "true"}):
            body = admin_client.get(url, headers=headers).content.decode()
            assert SENTINEL_SECRET not in body and SENTINEL_ACCESS[:-4] not in body, url
    body = admin_client.post(
        reverse("integrations:test", args=[sentinel.pk]), {"api_url": "http://127.0.0.1:9"}
    ).content.decode()
    assert SENTINEL_SECRET not in body
    assert "••••abcd" in admin_client.get(reverse("integrations:scanners")).content.decode()
    assert SENTINEL_SECRET not in caplog.text and SENTINEL_ACCESS not in caplog.text
    assert seen > 5


def test_dumpdata_never_contains_keys(sentinel):
    out = io.StringIO()
    call_command("dumpdata", "integrations", stdout=out)
    assert SENTINEL_SECRET not in out.getvalue() and SENTINEL_ACCESS not in out.getvalue()


def test_audit_events_never_hold_keys(admin_client, sentinel):
    from accounts.models import AuditEvent

    admin_client.post(
        reverse("integrations:settings", args=[sentinel.pk]),
        {
            "name": "x",
            "access_key": "NEWACCESS",
            "secret_key": "NEWSECRET",
            "api_url": "http://127.0.0.1:9",
            "confirm_failed": "nope",
        },
    )
    for event in AuditEvent.objects.all():
        assert "NEWSECRET" not in str(event.details) and SENTINEL_SECRET not in str(event.details)


def test_forms_never_echo_a_typed_secret(admin_client):
    response = admin_client.post(
        reverse("integrations:new", args=["tenableiovm"]),
        {
            "name": "",
            "access_key": "TYPEDACCESS",
            "secret_key": "TYPEDSECRET",
            "api_url": "https://x.example",
        },
    )
    assert (
        response.status_code == 200
        and b"TYPEDSECRET" not in response.content
        and b"TYPEDACCESS" not in response.content
    )


def test_rotation_re_encrypts_with_the_new_key(fernet_keys, settings):
    old, new = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    fernet_keys([old])
    integration = make_integration("https://cloud.tenable.com", access_key="A" * 20, secret_key="S" * 20)
    fernet_keys([new, old])  # add + promote
    out = io.StringIO()
    call_command("rotate_fernet_keys", stdout=out)
    assert "1 row(s) re-encrypted" in out.getvalue() and "S" * 20 not in out.getvalue()
    call_command("rotate_fernet_keys", stdout=io.StringIO())  # idempotent
    fernet_keys([new])  # retire the old key
    assert Integration.objects.get(pk=integration.pk).secret_key == "S" * 20


def test_wrong_key_is_a_deploy_error_and_a_message_not_a_500(admin_client, fernet_keys, tenable_simulator):
    fernet_keys([secrets.token_urlsafe(48)])
    integration = make_integration(tenable_simulator.url)
    fernet_keys([secrets.token_urlsafe(48)])  # the key was lost
    errors = [e for e in run_checks(include_deployment_checks=True) if e.id.startswith("integrations.")]
    assert [e.id for e in errors] == ["integrations.E004"]
    assert f"integrations.Integration {integration.pk}" in errors[0].msg
    assert admin_client.get(reverse("integrations:scanners")).status_code == 200
    assert admin_client.get(reverse("integrations:settings", args=[integration.pk])).status_code == 200
    html = admin_client.post(
        reverse("integrations:test", args=[integration.pk]), {"api_url": tenable_simulator.url}
    ).content.decode()
    assert "Re-enter the User Key and Secret Key" in html


def test_no_fallback_to_secret_key(settings, fernet_keys):
    fernet_keys([])
    ids = [e.id for e in run_checks(include_deployment_checks=True)]
    assert "integrations.E001" in ids
    fernet_keys([settings.SECRET_KEY])
    assert "integrations.E002" in [e.id for e in run_checks(include_deployment_checks=True)]
    fernet_keys(["short"])
    assert "integrations.E003" in [e.id for e in run_checks(include_deployment_checks=True)]


def test_client_and_connector_reprs_hold_no_secret():
    from integrations.connectors.tenable_io.connector import TenableIOConnector

    connector = TenableIOConnector(SENTINEL_ACCESS, SENTINEL_SECRET, "https://cloud.tenable.com")
    assert SENTINEL_SECRET not in repr(connector) and SENTINEL_SECRET not in repr(connector.client)


def test_secret_absent_from_error_emails(admin_user, settings, monkeypatch, mailoutbox):
    """A crash while handling posted keys must not put them in the error report (RELIABILITY S5)."""
    from django.test import Client

    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]  # Django's own mail_admins handler reports 500s
    settings.TENABLE_API_HOSTS = ["x.example"]  # an allowed API URL, so the view reaches the crash

    def boom(*args, **kwargs):
        raise RuntimeError("Tenable client exploded")

    monkeypatch.setattr("integrations.views.test_connection", boom)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post(
        reverse("integrations:new", args=["tenableiovm"]),
        {
            "name": "X",
            "access_key": SENTINEL_ACCESS,
            "secret_key": SENTINEL_SECRET,
            "api_url": "https://x.example",
        },
    )
    assert response.status_code == 500 and SENTINEL_SECRET.encode() not in response.content
    assert mailoutbox, "no error report was sent"
    for mail in mailoutbox:
        report = mail.body + "".join(str(alt[0]) for alt in mail.alternatives)
        assert "Tenable client exploded" in report
        assert SENTINEL_SECRET not in report and SENTINEL_ACCESS not in report
