"""Issue 20 › Connection: Integrations gains a Ticketing tab with a Jira Cloud card built from the registry; the
API token is write-only and encrypted, only ever sent to the site it was saved with; Test Connection names the
project permissions missing; scanner paths (Add Scanner, Bind to, runs, the API's scanner list) ignore it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from integrations.models import Integration
from integrations.services import open_connector
from integrations.services import test_connection as run_test
from tests.conftest import make_project
from tests.jira_fixtures import JIRA_API_TOKEN, JIRA_EMAIL, JIRA_VIEWER_API_TOKEN, JIRA_VIEWER_EMAIL
from tests.tickets.conftest import make_jira, make_mapping

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _form(url: str, email: str = JIRA_EMAIL, token: str = JIRA_API_TOKEN, name: str = "Jira Cloud") -> dict:
    return {"name": name, "login": email, "access_key": token, "api_url": url}


def test_ticketing_tab_and_card_come_from_the_registry(admin_client):
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert ">Ticketing<" in page and 'aria-label="Jira Cloud"' not in page  # a tab of its own
    page = admin_client.get(reverse("integrations:scanners") + "?tab=ticketing").content.decode()
    assert (
        "<h1>Ticketing</h1>" in page
        and 'aria-label="Jira Cloud"' in page
        and "Ticketing · issue tracking" in page
    )
    assert 'aria-label="Tenable.io VM"' not in page


def test_save_and_connect_stores_the_token_encrypted_and_write_only(admin_client, admin_user, jira_simulator):
    admin_client.post(reverse("integrations:activate", args=["jiracloud"]))
    integration = Integration.objects.get(connector="jiracloud")
    drawer = admin_client.get(
        reverse("integrations:settings", args=[integration.pk]), headers=HX
    ).content.decode()
    assert "Site URL" in drawer and "E-mail" in drawer and "API token" in drawer and "User Key" not in drawer
    response = admin_client.post(
        reverse("integrations:settings", args=[integration.pk]),
        _form(jira_simulator.url + "/jira/software/projects/SEC/boards/1"),
    )
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.api_url == jira_simulator.url  # a pasted page address is reduced to the site
    assert (integration.login, integration.access_key, integration.access_key_hint) == (
        JIRA_EMAIL,
        JIRA_API_TOKEN,
        "oken",
    )
    assert integration.last_test_ok is True, integration.last_test_message
    assert integration.last_test_message == "Connected as Tenable Console (jira-bot@example.com)."
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_key FROM integrations_integration WHERE id = %s", [integration.pk])
        stored = cursor.fetchone()[0]
    assert JIRA_API_TOKEN not in str(stored)
    # The card shows the e-mail and the token's last four characters, never the token.
    page = admin_client.get(reverse("integrations:scanners") + "?tab=ticketing").content.decode()
    assert JIRA_EMAIL in page and 'API token <span class="mono">••••oken</span>' in page
    assert JIRA_API_TOKEN not in page
    drawer = admin_client.get(
        reverse("integrations:settings", args=[integration.pk]), headers=HX
    ).content.decode()
    assert JIRA_API_TOKEN not in drawer and f'value="{JIRA_EMAIL}"' in drawer
    events = AuditEvent.objects.filter(action__startswith="integration.")
    assert events.exists() and all(JIRA_API_TOKEN not in str(e.details) for e in events)


def test_the_token_only_goes_to_the_site_it_was_saved_with(admin_client, jira_simulator, settings):
    integration = make_jira(jira_simulator.url)
    other = jira_simulator.url.replace("127.0.0.1", "localhost")
    settings.JIRA_SITE_HOSTS = ["127.0.0.1", "localhost"]
    response = admin_client.post(
        reverse("integrations:settings", args=[integration.pk]), _form(other, token=""), headers=HX
    )
    html = response.content.decode()
    assert "The Site URL changed, so enter the API token again" in html
    jira_simulator.sim.clear_requests()
    result = run_test(integration, api_url=other)
    assert not result.ok and "enter the API token again" in result.message
    assert jira_simulator.sim.requests == []


def test_only_atlassian_sites_and_listed_hosts_are_allowed(admin_client, settings):
    settings.JIRA_SITE_HOSTS = []
    settings.TENABLE_API_HOSTS = ["jira.example.com"]  # the scanners' list does not open Jira's door
    for url in (
        "https://jira.example.com",
        "https://acme.atlassian.net.evil.com",
        "https://acme.atlassian.net:8443",
    ):
        html = admin_client.post(
            reverse("integrations:test_new", args=["jiracloud"]), _form(url), headers=HX
        ).content.decode()
        assert "Check the Site URL" in html and "This is not an allowed Jira Cloud address." in html, url
    html = admin_client.post(
        reverse("integrations:test_new", args=["jiracloud"]), _form("http://acme.atlassian.net"), headers=HX
    ).content.decode()
    assert "Use an https:// URL" in html
    html = admin_client.post(
        reverse("integrations:test_new", args=["jiracloud"]), _form("https://acme.atlassian.net"), headers=HX
    ).content.decode()
    assert "not an allowed" not in html


def test_test_connection_names_the_permissions_missing_in_mapped_projects(admin_client, jira_simulator):
    integration = make_jira(jira_simulator.url, login=JIRA_VIEWER_EMAIL, token=JIRA_VIEWER_API_TOKEN)
    make_mapping(make_project("Payments"), integration)
    html = admin_client.post(
        reverse("integrations:test", args=[integration.pk]),
        {
            "name": integration.name,
            "login": JIRA_VIEWER_EMAIL,
            "access_key": "",
            "api_url": jira_simulator.url,
        },
        headers=HX,
    ).content.decode()
    assert "Connection successful" in html and "Permissions missing" in html
    assert "SEC lacks the permissions Create Issues, Edit Issues, Transition Issues, Add Comments." in html, (
        html
    )


def test_wrong_token_is_refused_with_atlassians_words(admin_client, jira_simulator):
    html = admin_client.post(
        reverse("integrations:test_new", args=["jiracloud"]),
        _form(jira_simulator.url, token="nope"),
        headers=HX,
    ).content.decode()
    assert (
        "Connection failed" in html and "Jira rejected the e-mail address and API token (HTTP 401)." in html
    )


def test_scanner_paths_ignore_ticketing_connections(admin_client, jira_simulator):
    integration = make_jira(jira_simulator.url)
    project = make_project("Payments")
    add = admin_client.get(reverse("projects:add_scanner", args=[project.pk])).content.decode()
    assert "Jira Cloud" not in add and "Ticketing" not in add
    # Even a hand-made Add Scanner URL never treats it as a scanner: the drawer says why.
    new = admin_client.get(
        f"{reverse('projects:profile_new', args=[project.pk])}?integration={integration.pk}"
    )
    assert (
        "is a Jira Cloud connection (a ticketing destination); it cannot be used here."
        in new.content.decode()
    )
    jira_simulator.sim.clear_requests()
    assert jira_simulator.sim.requests == []
    with pytest.raises(Exception, match="cannot be used here"):
        open_connector(integration)
    scanners = admin_client.get("/api/v1/scanners").json()
    assert [s["slug"] for s in scanners] == ["tenableiovm"]
