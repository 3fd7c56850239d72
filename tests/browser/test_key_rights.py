"""Permission-aware Test Connection and key rotation in the browser (issue 15): the checklist per role; Replace keys
with a pair lacking permissions is refused and the old pair still works, a good pair is accepted and runs keep
working; the card and the dashboard show the keys' age, the rotation reminder and a failing connection."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.choices import Role
from integrations import services
from integrations.models import Integration
from projects.choices import RunStatus
from projects.models import Project, ScannerProfile, ScanRun
from projects.runs.services import execute_run
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_ROLE_KEYS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    """Screenshots for a person to look at (SCREENSHOT_DIR=…)."""
    if os.environ.get("SCREENSHOT_DIR"):
        os.makedirs(os.environ["SCREENSHOT_DIR"], exist_ok=True)
        page.wait_for_timeout(400)  # the drawer's slide-in animation
        page.screenshot(
            path=os.path.join(os.environ["SCREENSHOT_DIR"], f"key-rights-{name}.png"), full_page=True
        )


def _replace(page, card, pair: tuple[str, str]):
    card.get_by_role("link", name=re.compile("^Replace keys")).first.click()
    drawer = page.get_by_role("dialog")
    expect(drawer.get_by_role("heading", name="Replace keys")).to_be_visible()
    drawer.get_by_label("User Key").fill(pair[0])
    drawer.get_by_label("Secret Key").fill(pair[1])
    drawer.get_by_role("button", name="Test and replace").click()
    return drawer


def test_the_checklist_of_each_role(page, watch, tenable_simulator):
    make_user("secadmin", Role.ADMIN)
    login(page, "secadmin")
    page.goto("/integrations/new/tenableiovm/")
    drawer = page.locator(".drawer")
    drawer.get_by_text("Advanced").click()
    drawer.get_by_label("API URL").fill(tenable_simulator.url)
    for role, name, view in [
        ("basic", "Basic", "Location: Dallas"),
        ("scan_operator", "Scan Operator", "All Assets"),
        ("standard", "Standard", "All Assets"),
        ("scan_manager", "Scan Manager", "All Assets"),
        ("administrator", "Administrator", "All Assets"),
    ]:
        drawer.get_by_label("User Key").fill(SIM_ROLE_KEYS[role][0])
        drawer.get_by_label("Secret Key").fill(SIM_ROLE_KEYS[role][1])
        drawer.get_by_role("button", name="Test Connection").click()
        report = drawer.get_by_role("region", name="What this key can do")
        expect(report.get_by_text(name, exact=True)).to_be_visible()
        expect(report.get_by_text(view, exact=True)).to_be_visible()
        expect(report.locator(".check")).to_have_count(5)
        shot(page, f"panel-{role}")
    watch.assert_clean()


def test_rotate_to_a_pair_lacking_permissions_then_to_a_good_pair(page, watch, tenable_simulator, admin_user):
    sim = tenable_simulator.sim
    make_user("secadmin", Role.ADMIN)
    integration = make_integration(tenable_simulator.url)
    services.check_connection(integration.pk)
    project = Project.objects.create(name="Payments")
    profile = ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name="Weekly",
        scan_id=sim.scan_id("completed"),
        meta_data="m",
    )
    login(page, "secadmin")
    page.goto("/integrations/?tab=infra")
    card = page.get_by_role("region", name="Tenable.io VM")
    expect(card.get_by_text("Administrator key · may view All Assets")).to_be_visible()
    shot(page, "card-before")

    # A Basic pair cannot read the scan the profile is bound to: refused, in place, with its checklist.
    drawer = _replace(page, card, SIM_ROLE_KEYS["basic"])
    expect(drawer.get_by_text("New keys refused")).to_be_visible()
    expect(drawer.get_by_text(re.compile("cannot do what this connection's profiles need"))).to_be_visible()
    expect(drawer.get_by_text("The old keys stay active.", exact=False)).to_be_visible()
    expect(drawer.locator(".check-missing").first).to_be_visible()
    shot(page, "rotate-refused")
    drawer.locator(".checklist").scroll_into_view_if_needed()
    shot(page, "rotate-refused-checklist")
    drawer.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The old pair still works.
    assert Integration.objects.get(pk=integration.pk).access_key == SIM_ACCESS_KEY
    card.get_by_role("link", name="Settings for Tenable.io VM").click()
    drawer = page.get_by_role("dialog")
    drawer.get_by_role("button", name="Test Connection").click()
    expect(drawer.get_by_text("Connection successful")).to_be_visible()
    expect(drawer.get_by_text(re.compile("Administrator role"))).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # A Scan Operator pair can: accepted, and the card describes it at once.
    _replace(page, card, SIM_ROLE_KEYS["scan_operator"])
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text(re.compile("keys replaced; the old pair is no longer used"))).to_be_visible()
    expect(card.get_by_text("Scan Operator key · may view All Assets")).to_be_visible()
    expect(card.get_by_text(re.compile("Keys set today, by secadmin"))).to_be_visible()
    shot(page, "rotate-accepted")
    assert Integration.objects.get(pk=integration.pk).access_key == SIM_ROLE_KEYS["scan_operator"][0]

    # Runs keep working, with the new pair.
    sim.clear_requests()
    run = ScanRun.objects.create(project=project, profile=profile)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert {r.user for r in sim.requests} == {"scan_operator"}
    watch.assert_clean()


def test_the_card_and_dashboard_show_key_age_reminder_and_failing(page, watch, tenable_simulator):
    alice = make_user("alice", Role.ADMIN)
    make_user("secadmin", Role.ADMIN)
    old = make_integration(
        tenable_simulator.url,
        name="Tenable.io EU",
        keys_set_at=timezone.now() - timedelta(days=94),
        keys_set_by=alice,
    )
    failing = make_integration(tenable_simulator.url, name="Tenable.io US", keys_set_by=alice)
    Integration.objects.filter(pk=failing.pk).update(keys_set_at=timezone.now() - timedelta(days=12))
    services.check_connection(old.pk)
    services.check_connection(failing.pk)
    tenable_simulator.sim.set_fault("revoked_key")
    services.check_connection(failing.pk)  # the scheduled check finds its keys failing

    login(page, "secadmin")
    # The notice shows once, on the first page after signing in.
    expect(page.get_by_role("status").filter(has_text="Connection failing: Tenable.io US.")).to_be_visible()
    attention = page.get_by_role("region", name="Connections that need attention")
    expect(attention.get_by_text("Connection failing")).to_be_visible()
    expect(attention.get_by_text(re.compile("Invalid User Key or Secret Key"))).to_be_visible()
    expect(attention.get_by_text("Keys set 94 days ago, by alice")).to_be_visible()
    expect(attention.get_by_role("link", name="Token Instructions")).to_have_attribute(
        "href", re.compile("GenerateAPIKey")
    )
    shot(page, "dashboard")
    page.reload()
    expect(page.get_by_text("Connection failing: Tenable.io US.")).to_have_count(0)

    page.goto("/integrations/?tab=infra")
    card = page.get_by_role("region", name="Tenable.io VM")
    expect(card.get_by_text("Connection failing")).to_be_visible()
    expect(card.get_by_text("Time to rotate these keys")).to_be_visible()
    expect(card.get_by_text("Keys set 12 days ago, by alice")).to_be_visible()
    shot(page, "card-age-reminder-failing")
    watch.assert_clean()
