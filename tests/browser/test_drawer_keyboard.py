"""The drawer with the keyboard only (issue 13): focus moves into it, Tab and Shift+Tab stay inside, Escape closes
it and focus returns to the control that opened it, also after htmx re-rendered that control; only the message
area is a live region."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.choices import Role
from projects.models import Project, ScannerProfile
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IN_DRAWER = "() => !!document.activeElement && !!document.activeElement.closest('#drawer .drawer')"
FOCUSED = """() => {
  const el = document.activeElement;
  return el.getAttribute("aria-label") || el.name || el.textContent.replace(/\\s+/g, " ").trim().slice(0, 60);
}"""


@pytest.fixture
def world(tenable_simulator):
    make_user("admin", Role.ADMIN)
    integration = make_integration(tenable_simulator.url)
    project = Project.objects.create(name="Payments")
    profile = ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name="Weekly",
        scan_id=tenable_simulator.sim.scan_id("completed"),
        scan_name="Web tier - weekly",
        meta_data="team=payments",
    )
    return {"project": project, "profile": profile}


def tab_to(page, target, limit: int = 80) -> None:
    """Press Tab until `target` has focus, as a keyboard user reaches a control."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}; stuck on {page.evaluate(FOCUSED)!r}")


def cycle_stays_inside(page, dialog) -> None:
    """Tab through more controls than the drawer has, then Shift+Tab as far back: focus never leaves it, and it
    wraps around in both directions."""
    count = dialog.evaluate(
        "d => [...d.querySelectorAll('a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]),"
        " select:not([disabled]), textarea, summary')].filter(el => el.getClientRects().length).length"
    )
    assert count >= 3
    seen = []
    for key in ["Tab"] * (count + 2) + ["Shift+Tab"] * (count + 2):
        page.keyboard.press(key)
        assert page.evaluate(IN_DRAWER), f"{key} left the drawer for {page.evaluate(FOCUSED)!r}"
        seen.append(page.evaluate(FOCUSED))
    assert len(set(seen)) >= 3


def test_integration_drawer_keyboard_path(page, world):
    login(page, "admin")
    page.goto("/integrations/")
    opener = page.get_by_role("link", name="Settings for Tenable.io VM")
    tab_to(page, opener)
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog", name="Tenable.io VM settings")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Connection Name")).to_be_focused()
    cycle_stays_inside(page, dialog)

    # Shift+Tab from the first control goes to the last, Tab from the last back to the first.
    close = dialog.get_by_role("link", name="Close")
    save = dialog.get_by_role("button", name="Save and Connect")
    close.focus()
    page.keyboard.press("Shift+Tab")
    expect(save).to_be_focused()
    page.keyboard.press("Tab")
    expect(close).to_be_focused()

    # Test Connection swaps the result into the drawer: focus stays, and only that message area is live.
    tab_to(page, dialog.get_by_role("button", name="Test Connection"))
    page.keyboard.press("Enter")
    expect(dialog.get_by_text("Connection successful")).to_be_visible()
    assert page.evaluate(IN_DRAWER)
    assert page.locator("#drawer").get_attribute("aria-live") is None
    assert dialog.locator("[aria-live]").evaluate_all("els => els.map(el => el.id)") == ["test-result"]
    assert page.evaluate("() => !document.querySelector('#drawer').closest('[aria-live]')")

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(opener).to_be_focused()
    assert page.dialogs == []


def test_profile_drawers_keyboard_path(page, world):
    project, profile = world["project"], world["profile"]
    login(page, "admin")
    page.goto(f"/projects/{project.pk}/settings/scanners/")
    page.wait_for_load_state("networkidle")

    # Edit a profile, Escape: back on its Edit link.
    edit = page.get_by_role("link", name="Edit Weekly")
    tab_to(page, edit)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Weekly")
    expect(dialog.get_by_label("Profile Name")).to_be_focused()
    cycle_stays_inside(page, dialog)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(edit).to_be_focused()

    # Add Scanner: choose the connection with the keyboard and Add; the drawer's content is swapped for the
    # profile drawer, focus moves into it, and Escape still returns to Add Scanner.
    add = page.get_by_role("link", name="Add Scanner")
    tab_to(page, add)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Add Scanner")
    expect(dialog).to_be_visible()
    assert page.evaluate(IN_DRAWER)
    tab_to(page, dialog.get_by_role("radio", name=re.compile("Tenable.io VM")))
    page.keyboard.press("Space")
    tab_to(page, dialog.get_by_role("button", name="Add"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Add Tenable.io VM scanner")
    expect(dialog.get_by_label("Profile Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(add).to_be_focused()

    # Save from the keyboard: the drawer closes, the list is re-rendered, and focus lands on the new copy of
    # the Edit link that opened it.
    tab_to(page, edit)
    page.keyboard.press("Enter")
    name = page.get_by_role("dialog").get_by_label("Profile Name")
    expect(name).to_be_focused()
    name.fill("Weekly infra")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Scanner profile Weekly infra saved.")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit Weekly infra")).to_be_focused()
    assert ScannerProfile.objects.get(pk=profile.pk).name == "Weekly infra"
    assert page.dialogs == []
