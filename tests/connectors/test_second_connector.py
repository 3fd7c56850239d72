"""The connector contract, end to end: a second scanner (tests only) joins through the registry alone.

`ExampleScanConnector` is registered by a fixture; Integrations shows its tab and card, its settings drawer
saves and tests its one key, Add Scanner offers its connection, Bind to lists its scans, and a run imports its
findings through the same importer as Tenable.io. Nothing in `projects/` names it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from integrations.connectors import CONNECTORS, connector_choices
from integrations.models import Integration
from projects.choices import RunStatus
from projects.models import Finding, ScannerProfile, ScanRun
from tests.conftest import make_project
from tests.connectors.example_scanner import TOKEN, ExampleScanConnector

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example_scanner(monkeypatch):
    """Register the test-only connector for one test (the registry is an ordinary dict)."""
    monkeypatch.setitem(CONNECTORS, ExampleScanConnector.slug, ExampleScanConnector)
    return ExampleScanConnector


def test_a_second_connector_goes_from_integrations_to_imported_findings(
    example_scanner, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    # Integrations › Scanners: its category becomes a tab, with its card.
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "DAST" in page
    page = admin_client.get(reverse("integrations:scanners") + "?tab=dast").content.decode()
    assert "Example DAST" in page and "A scanner that exists only in the test suite." in page

    # Activate it, then save its one key (API Token) through the settings drawer: Test Connection passes.
    admin_client.post(reverse("integrations:activate", args=["examplescan"]))
    integration = Integration.objects.get(connector="examplescan")
    drawer = admin_client.get(reverse("integrations:settings", args=[integration.pk]), headers=HX)
    body = drawer.content.decode()
    assert "API Token" in body and "User Key" not in body
    assert "Create an API token under Example DAST" in body
    admin_client.post(
        reverse("integrations:settings", args=[integration.pk]),
        {"name": "Example DAST", "access_key": TOKEN, "api_url": "https://scanner.example.test"},
    )
    integration.refresh_from_db()
    assert integration.last_test_ok is True, integration.last_test_message
    assert integration.last_test_details["scan_count"] == 1 and integration.access_key == TOKEN

    # Add Scanner (DAST) offers the active connection; the drawer's Bind to lists its scans.
    project = make_project("Storefront")
    add = admin_client.get(reverse("projects:add_scanner", args=[project.pk]) + "?type=dast").content.decode()
    assert "Example DAST" in add and f'value="{integration.pk}"' in add
    new_url = f"{reverse('projects:profile_new', args=[project.pk])}?integration={integration.pk}"
    assert "Storefront nightly" in admin_client.get(new_url).content.decode()
    response = admin_client.post(
        new_url,
        {
            "name": "Nightly DAST",
            "scan_id": 501,
            "meta_data": "owner=web",
            "schedule_frequency": "daily",
            "schedule_timezone": "UTC",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = ScannerProfile.objects.get(project=project)
    assert (profile.integration, profile.scan_id, profile.scan_name) == (
        integration,
        501,
        "Storefront nightly",
    )

    # Run now: the worker (run here) opens the connector through the registry and imports its hosts.
    from projects.runs.services import execute_run

    monkeypatch.setattr("projects.runs.services._publish", execute_run)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("projects:run_now", args=[project.pk, profile.pk]))
    run = ScanRun.objects.get(profile=profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.count_total, run.count_new, run.count_hosts, run.tenable_run_uuid) == (3, 3, 2, "ex-run-9001")
    assert run.counts()["by_severity"] == {"critical": 1, "high": 1, "medium": 0, "low": 1, "info": 0}
    findings = Finding.objects.filter(project=project).select_related("asset", "plugin")
    assert {(f.asset.name, f.plugin.name, f.port) for f in findings} == {
        ("shop.example.test", "Reflected XSS in search", 443),
        ("shop.example.test", "Missing HSTS header", 443),
        ("api.example.test", "Outdated TLS library", 8443),
    }
    # The findings pages read them like any other.
    listing = admin_client.get(reverse("projects:findings", args=[project.pk])).content.decode()
    assert "Outdated TLS library" in listing


def test_a_refused_key_is_the_connectors_own_sentence(example_scanner, admin_client):
    integration = Integration.objects.create(
        connector="examplescan", name="Example", is_active=True, api_url="https://scanner.example.test"
    )
    response = admin_client.post(
        reverse("integrations:test", args=[integration.pk]),
        {"name": "Example", "access_key": "wrong", "api_url": "https://scanner.example.test"},
        headers=HX,
    )
    assert "Example DAST refused the API token." in response.content.decode()


def test_the_registry_gives_choices_without_a_migration(example_scanner):
    assert ("examplescan", "Example DAST") in connector_choices()
    field = Integration._meta.get_field("connector")
    assert ("examplescan", "Example DAST") in list(field.choices)
    Integration(connector="examplescan", name="x", api_url="https://scanner.example.test").full_clean(
        exclude=["access_key", "secret_key", "last_test_ok"]
    )


def test_nothing_outside_the_connector_names_it():
    """The proof is also static: no module of the product mentions the test-only connector."""
    for package in ("projects", "integrations", "webhooks", "api", "accounts", "config"):
        for path in (ROOT / package).rglob("*.py"):
            assert "examplescan" not in path.read_text(), path
