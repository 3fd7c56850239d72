"""A newcomer's first minutes: set up the admin, sign out, sign in, find their way around."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_first_run_setup_login_and_sidebar(page):
    page.goto("/")
    assert "/setup/" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Email address").fill("alice@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create admin and sign in").click()
    page.get_by_text("Your admin account is ready").wait_for()

    sidebar = page.get_by_role("complementary", name="Main navigation")
    for label in ("Dashboard", "Projects", "Integrations", "Users", "Audit log"):
        assert sidebar.get_by_role("link", name=label).is_visible()
    assert page.get_by_text("Connect Tenable.io to get started").is_visible()

    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    login(page, "alice")
    assert page.get_by_role("heading", name="Welcome, alice").is_visible()
    sidebar.get_by_role("link", name="Projects").click()
    assert page.get_by_role("heading", name="No projects yet").is_visible()
    assert page.dialogs == []
