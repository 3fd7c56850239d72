"""Integrations › Scanners: tabs from the registry, the Tenable.io VM card, activation, roles and CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from integrations.connectors import CONNECTORS, connectors_by_category
from integrations.models import Integration
from tests.integrations.conftest import make_integration

pytestmark = pytest.mark.django_db


def test_tabs_and_cards_come_from_the_registry(admin_client):
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    for _, label, connectors in connectors_by_category():
        assert f">{label}<" in page
        for spec in connectors:
            assert spec.label in page
    assert "Infra" in page and "Tenable.io VM" in page and "Not activated" in page
    assert ">Activate<" in page and "Token Instructions" in page
    assert set(CONNECTORS) == {"tenableiovm", "jiracloud"}  # issue 20 registers Jira Cloud (ticketing)


def test_activate_creates_the_connection_and_opens_its_settings(admin_client, admin_user):
    response = admin_client.post(reverse("integrations:activate", args=["tenableiovm"]))
    integration = Integration.objects.get()
    assert integration.is_active and integration.state == "unconfigured"  # no keys yet (issue 12 §8)
    assert response.status_code == 302 and f"open={integration.pk}" in response.url
    page = admin_client.get(response.url).content.decode()
    assert reverse("integrations:settings", args=[integration.pk]) in page
    assert AuditEvent.objects.filter(action="integration.activated", actor=admin_user).exists()


def test_deactivate_and_reactivate(admin_client):
    integration = make_integration("http://127.0.0.1:9")
    admin_client.post(reverse("integrations:disable", args=[integration.pk]))
    integration.refresh_from_db()
    assert not integration.is_active
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "Not activated" in page
    admin_client.post(reverse("integrations:activate", args=["tenableiovm"]))
    integration.refresh_from_db()
    assert integration.is_active and Integration.objects.count() == 1
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "integration.deactivated" in actions and "integration.activated" in actions


def test_card_shows_failing_state_with_the_last_error(admin_client):
    from django.utils import timezone

    make_integration(
        "http://127.0.0.1:9",
        last_test_ok=False,
        last_test_message="Invalid User Key or Secret Key.",
        last_tested_at=timezone.now(),
    )
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "Connection failing" in page and "Invalid User Key or Secret Key." in page


def test_settings_drawer_fragment_and_full_page(admin_client):
    integration = make_integration("http://127.0.0.1:9")
    url = reverse("integrations:settings", args=[integration.pk])
    fragment = admin_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'class="drawer"' in fragment and "<html" not in fragment
    for label in (
        "Connection Name",
        "User Key",
        "Secret Key",
        "API URL",
        "Test Connection",
        "Save and Connect",
    ):
        assert label in fragment
    assert "Leave blank to keep the saved key." in fragment
    full = admin_client.get(url)
    assert full.status_code == 200 and b"<html" in full.content
    assert full["Cache-Control"].startswith("max-age=0") or "no-store" in full["Cache-Control"]


def test_delete_connection_in_use_is_refused(admin_client):
    from projects.models import Project, ScannerProfile

    integration = make_integration("http://127.0.0.1:9")
    project = Project.objects.create(name="P")
    ScannerProfile.objects.create(
        project=project, integration=integration, name="x", scan_id=1, meta_data="m"
    )
    admin_client.post(reverse("integrations:delete", args=[integration.pk]))
    assert Integration.objects.filter(pk=integration.pk).exists()
    ScannerProfile.objects.all().delete()
    admin_client.post(reverse("integrations:delete", args=[integration.pk]))
    assert not Integration.objects.exists()


ROUTES = [
    ("get", "integrations:scanners", []),
    ("post", "integrations:activate", ["tenableiovm"]),
    ("get", "integrations:new", ["tenableiovm"]),
    ("post", "integrations:new", ["tenableiovm"]),
    ("post", "integrations:test_new", ["tenableiovm"]),
    ("get", "integrations:settings", ["PK"]),
    ("post", "integrations:settings", ["PK"]),
    ("post", "integrations:test", ["PK"]),
    ("post", "integrations:enable", ["PK"]),
    ("post", "integrations:disable", ["PK"]),
    ("post", "integrations:delete", ["PK"]),
]


@pytest.mark.parametrize("method,name,args", ROUTES)
def test_only_admins_reach_integrations(client, member, viewer, method, name, args):
    integration = make_integration("http://127.0.0.1:9", is_active=False)
    url = reverse(name, args=[integration.pk if a == "PK" else a for a in args])
    for user in (member, viewer):
        client.force_login(user)
        response = getattr(client, method)(
            url, {"name": "hijack", "access_key": "a", "secret_key": "b", "api_url": "https://x"}
        )
        assert response.status_code == 403
    integration.refresh_from_db()
    assert (
        integration.name == "Tenable.io VM" and not integration.is_active and Integration.objects.count() == 1
    )
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("name,args", [(n, a) for m, n, a in ROUTES if m == "post"])
def test_csrf_required_on_every_integration_post(admin_user, name, args):
    integration = make_integration("http://127.0.0.1:9", is_active=False)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse(name, args=[integration.pk if a == "PK" else a for a in args])
    assert client.post(url, {"name": "x"}).status_code == 403
    integration.refresh_from_db()
    assert not integration.is_active and Integration.objects.count() == 1
