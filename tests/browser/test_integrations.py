"""The seed's five steps, as a user reads them: Integrations → Infra → Activate → keys → Test Connection."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.choices import Role
from tests.conftest import login, make_user
from tests.tenable_fixtures import (
    SIM_ACCESS_KEY,
    SIM_FORBIDDEN_ACCESS_KEY,
    SIM_FORBIDDEN_SECRET_KEY,
    SIM_SECRET_KEY,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_settings(page, tenable_simulator):
    make_user("secadmin", Role.ADMIN)
    login(page, "secadmin")
    page.get_by_role("complementary", name="Main navigation").get_by_role(
        "link", name="Integrations"
    ).click()  # Step 1
    page.get_by_role("link", name=re.compile("^Infra")).click()  # Step 2
    card = page.get_by_role("region", name="Tenable.io VM")
    expect(card.get_by_text("Not activated").first).to_be_visible()
    card.get_by_role("button", name="Activate").click()  # Step 3
    drawer = page.get_by_role("dialog")
    expect(
        drawer.get_by_role("heading", name="Tenable.io VM settings")
    ).to_be_visible()  # Step 4: the gear's panel
    drawer.get_by_text("Advanced").click()
    drawer.get_by_label("API URL").fill(tenable_simulator.url)
    return drawer


def _test(drawer, access: str, secret: str):
    drawer.get_by_label("User Key").fill(access)
    drawer.get_by_label("Secret Key").fill(secret)
    drawer.get_by_role("button", name="Test Connection").click()  # Step 5


def test_seed_five_steps_then_save_and_connect(page, tenable_simulator):
    drawer = _open_settings(page, tenable_simulator)
    _test(drawer, "wrong-access", "wrong-secret")
    expect(drawer.get_by_text("Invalid User Key or Secret Key.")).to_be_visible()
    _test(drawer, SIM_FORBIDDEN_ACCESS_KEY, SIM_FORBIDDEN_SECRET_KEY)
    expect(drawer.get_by_text("Permission denied")).to_be_visible()
    _test(drawer, SIM_ACCESS_KEY, SIM_SECRET_KEY)
    expect(drawer.get_by_text("Connection successful")).to_be_visible()
    if __import__("os").environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=f"{__import__('os').environ['SCREENSHOT_DIR']}/integration-drawer-success.png")
    drawer.get_by_role("button", name="Save and Connect").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    card = page.get_by_role("region", name="Tenable.io VM")
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(page.get_by_text("Connection successful").first).to_be_visible()
    assert SIM_SECRET_KEY not in page.content()
    assert page.dialogs == []


def test_saving_failing_keys_needs_a_second_click(page, tenable_simulator):
    drawer = _open_settings(page, tenable_simulator)
    drawer.get_by_label("User Key").fill("wrong-access")
    drawer.get_by_label("Secret Key").fill("wrong-secret")
    drawer.get_by_role("button", name="Save and Connect").click()
    expect(drawer.get_by_text("Invalid User Key or Secret Key.")).to_be_visible()
    drawer.get_by_role("button", name="Save anyway").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("region", name="Tenable.io VM").get_by_text("Connection failing")).to_be_visible()
