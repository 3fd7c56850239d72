"""The seed's "How to Create a Scan", as a user reads it: Settings › Scanners › Add Scanner › Infra ›
Tenable.io VM › Add, then the scan configuration drawer against the simulator."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from accounts.choices import Role
from projects.models import ScannerProfile
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"issue5-{name}.png"))


def test_add_scanner_bind_a_scan_and_edit_it_again(page, tenable_simulator, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    sim = tenable_simulator.sim
    make_user("admin", Role.ADMIN)
    make_integration(tenable_simulator.url)
    login(page, "admin")

    page.get_by_role("complementary", name="Main navigation").get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Payments")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Project Payments created").wait_for()

    page.get_by_role("navigation", name="Project sections").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="No scanners yet")).to_be_visible()
    page.get_by_role("link", name="Add Scanner").first.click()
    drawer = page.locator("#drawer")
    drawer.get_by_text("Infra", exact=True).click()
    drawer.get_by_role("radio", name=re.compile("Tenable.io VM")).check()
    drawer.get_by_role("button", name="Add").click()

    expect(drawer.get_by_role("heading", name="Add Tenable.io VM scanner")).to_be_visible()
    bind_to = drawer.get_by_label("Bind to")
    summary = drawer.locator("#scan-summary")
    bind_to.select_option(str(sim.scan_id("agent")))
    expect(summary.get_by_text("Branch laptops", exact=True)).to_be_visible()
    expect(summary.get_by_text("2 agents")).to_be_visible()
    expect(summary.get_by_text("Basic Agent Scan")).to_be_visible()

    bind_to.select_option(str(sim.scan_id("completed")))
    expect(summary.locator(".chip", has_text="10.101.0.0/24")).to_be_visible()
    expect(summary.locator(".chip-tag", has_text="Location: Dallas")).to_be_visible()
    expect(summary.get_by_text("Basic Network Scan")).to_be_visible()
    expect(summary.get_by_text("Not an agent scan")).to_be_visible()
    shot(page, "drawer-scan-details")

    drawer.get_by_label("Profile Name").fill("Web tier")
    drawer.get_by_label("Meta Data").fill("owner=payments-team")
    plus, minus = (
        drawer.get_by_role("checkbox", name="Severity+"),
        drawer.get_by_role("checkbox", name="Severity-"),
    )
    minus.check()
    expect(minus).to_be_checked()
    plus.check()
    expect(plus).to_be_checked()
    expect(minus).not_to_be_checked()
    drawer.get_by_role("button", name="Save").click()

    expect(page.locator("#drawer .drawer")).to_have_count(0)
    expect(page.get_by_text("Scanner profile Web tier added.")).to_be_visible()
    row = page.locator("#profiles tr", has_text="Web tier")
    expect(row.get_by_text("Web tier - weekly")).to_be_visible()
    expect(row.get_by_text("Severity+")).to_be_visible()

    row.get_by_role("link", name="Edit Web tier").click()
    expect(drawer.get_by_label("Profile Name")).to_have_value("Web tier")
    expect(drawer.get_by_label("Meta Data")).to_have_value("owner=payments-team")
    expect(drawer.get_by_label("Bind to")).to_have_value(str(sim.scan_id("completed")))
    expect(drawer.get_by_role("checkbox", name="Severity+")).to_be_checked()
    expect(drawer.get_by_role("checkbox", name="Severity-")).not_to_be_checked()
    expect(drawer.locator("#scan-summary .chip-tag", has_text="Location: Dallas")).to_be_visible()
    shot(page, "drawer-edit")
    profile = ScannerProfile.objects.get()
    assert profile.severity_shift == 1 and profile.scan_name == "Web tier - weekly"
    assert page.dialogs == []
