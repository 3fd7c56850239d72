"""Issue 20, as a user reads it: connect Jira Cloud under Integrations › Ticketing, map a project (live lookup,
preview, Test mapping), see a ticket appear on a finding, and Create Jira ticket on another; no CSP violation,
console error or dialog on the way (the watcher of tests/browser/test_csp.py)."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from accounts.choices import Role
from projects.models import Finding, Project
from tests.conftest import login, make_user
from tests.jira_fixtures import *  # noqa: F403
from tests.jira_fixtures import JIRA_API_TOKEN, JIRA_EMAIL
from tests.tickets.conftest import APACHE, PING, TLS, WEB1, WEB2, import_file, process
from tickets.models import TicketSync

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def shot(page, name: str) -> None:
    """Screenshots for a person to look at (SCREENSHOT_DIR=…)."""
    if os.environ.get("SCREENSHOT_DIR"):
        os.makedirs(os.environ["SCREENSHOT_DIR"], exist_ok=True)
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"jira-{name}.png"), full_page=True)


def settle(page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


@pytest.fixture(autouse=True)
def _jira_host_allowed(settings):
    settings.JIRA_SITE_HOSTS = ["127.0.0.1"]


def test_connect_map_and_see_tickets_on_findings(page, watch, jira_simulator, tmp_path):
    sim = jira_simulator.sim
    make_user("secadmin", Role.ADMIN)
    project = Project.objects.create(name="Payments")
    hosts = ({**WEB1, "name": f"web-1{PAYLOAD}", "items": [APACHE, TLS, PING]}, {**WEB2, "items": [APACHE]})
    import_file(project, tmp_path / "first.nessus", *hosts)
    login(page, "secadmin")

    # Integrations › Ticketing › Jira Cloud › Activate: site URL, e-mail, API token, Test Connection, Save.
    page.get_by_role("complementary", name="Main navigation").get_by_role("link", name="Integrations").click()
    page.get_by_role("link", name=re.compile("^Ticketing")).click()
    card = page.get_by_role("region", name="Jira Cloud")
    card.get_by_role("button", name="Activate").click()
    drawer = page.get_by_role("dialog")
    expect(drawer.get_by_role("heading", name="Jira Cloud settings")).to_be_visible()
    drawer.get_by_label("Site URL").fill(jira_simulator.url)
    drawer.get_by_label("E-mail").fill(JIRA_EMAIL)
    drawer.get_by_label("API token").fill("wrong-token")
    drawer.get_by_role("button", name="Test Connection").click()
    expect(drawer.get_by_text("Jira rejected the e-mail address and API token (HTTP 401).")).to_be_visible()
    drawer.get_by_label("API token").fill(JIRA_API_TOKEN)
    drawer.get_by_role("button", name="Test Connection").click()
    expect(drawer.get_by_text("Connection successful")).to_be_visible()
    expect(drawer.get_by_text("Connected as Tenable Console (jira-bot@example.com).")).to_be_visible()
    shot(page, "connection")
    drawer.get_by_role("button", name="Save and Connect").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.get_by_text(re.compile(rf"^{re.escape(JIRA_EMAIL)} · API token"))).to_be_visible()
    shot(page, "card")

    # Project › Settings › Jira: the key is looked up live, the preview follows the template, Test mapping.
    page.goto(f"/projects/{project.pk}/settings/scanners/")
    page.get_by_role("navigation", name="Project settings").get_by_role("link", name="Jira").click()
    expect(page.get_by_role("heading", name="Jira tickets")).to_be_visible()
    page.get_by_label("Jira project").fill("sec")
    expect(page.get_by_text("SEC · Security Vulnerabilities")).to_be_visible()
    expect(page.get_by_label("Issue type").locator("option")).to_have_text(["Task", "Bug"])
    preview = page.locator("#ticket-preview")
    expect(preview.get_by_text(f"[Critical] {TLS[4]}")).to_be_visible()
    page.get_by_label("Description").fill("## Where\n{hosts}\n\nFirst seen {first_seen} in {project}.")
    expect(preview.get_by_role("heading", name="Where")).to_be_visible()
    expect(preview.get_by_text(PAYLOAD, exact=False).first).to_be_visible()  # Tenable's text stays text
    assert page.locator('img[src="x"]').count() == 0
    page.get_by_role("button", name="Test mapping").click()
    expect(page.get_by_text("Mapping works")).to_be_visible()
    shot(page, "mapping")
    page.get_by_role("button", name="Save and start").click()
    expect(page.get_by_text("Jira tickets set up: tickets go to SEC.")).to_be_visible()
    expect(page.locator("#jira-syncs").get_by_text("Pending")).to_be_visible()  # the log polls while it waits

    # The worker runs the sync: the log says what it did, and the ticket appears on its finding.
    process(TicketSync.objects.get(project=project))
    expect(page.locator("#jira-syncs").get_by_text("2 created")).to_be_visible()
    shot(page, "syncs")
    apache = Finding.objects.get(asset__name="web-2", plugin_id=APACHE[0])
    page.goto(apache.get_absolute_url())
    jira_card = page.get_by_role("region", name="Jira")
    link = jira_card.get_by_role("link", name=re.compile("SEC-"))
    expect(link).to_have_attribute("href", re.compile(rf"^{re.escape(jira_simulator.url)}/browse/SEC-\d$"))
    expect(jira_card.get_by_text("To Do")).to_be_visible()
    expect(jira_card.get_by_text("One ticket for this vulnerability on 2 hosts")).to_be_visible()
    shot(page, "finding")

    # Create Jira ticket on an Info finding (below the threshold): the card polls until the ticket exists.
    info = Finding.objects.get(plugin_id=PING[0])
    page.goto(info.get_absolute_url())
    jira_card = page.get_by_role("region", name="Jira")
    expect(jira_card.get_by_text("tickets are created for High and above")).to_be_visible()
    jira_card.get_by_role("button", name="Create Jira ticket").click()
    expect(page.get_by_text("Jira ticket requested for 1 finding")).to_be_visible()
    expect(jira_card.get_by_text("Creating the Jira ticket…")).to_be_visible()
    process(TicketSync.objects.get(trigger="manual"))
    expect(jira_card.get_by_role("link", name="SEC-3")).to_be_visible()
    assert sim.issue("SEC-3").summary == f"[Info] {PING[4]}"
    shot(page, "created")

    # The findings list offers Create Jira tickets for a selection.
    page.goto(f"/projects/{project.pk}/findings/")
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(page.get_by_role("button", name="Create Jira tickets")).to_be_visible()
    shot(page, "findings")
    watch.assert_clean()
