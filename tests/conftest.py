"""Shared fixtures: personas (admin, member, viewer, outsider), `make_*` helpers, live-server browser, services."""

from __future__ import annotations

import os
import socket

import pytest
from django.core.cache import cache

from accounts.choices import Role
from accounts.middleware import FirstRunMiddleware
from tests.tenable_fixtures import *  # noqa: F403  (the Tenable.io simulator fixtures)

IN_CI = bool(os.environ.get("CI"))
PASSWORD = "a-long-test-password-42"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def skip_or_fail(reason: str) -> None:
    """Missing services skip on a laptop with a visible reason, but fail under CI where they are mandatory."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory under CI)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The production hasher costs ~0.4 s a user; tests create hundreds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _simulator_host_allowed(settings):
    """Tests run with DEBUG off, so the simulator's loopback address is listed, as an operator would list it."""
    settings.TENABLE_API_HOSTS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def _reset_state():
    FirstRunMiddleware.has_users = False
    cache.clear()
    yield


def make_user(username: str, role: str = Role.MEMBER, **extra):
    from accounts.models import User

    return User.objects.create_user(username=username, password=PASSWORD, role=role, **extra)


def make_project(name: str = "Payments", members=(), viewers=()):
    from projects.models import Membership, Project

    project = Project.objects.create(name=name)
    for user in members:
        Membership.objects.create(project=project, user=user, role="member")
    for user in viewers:
        Membership.objects.create(project=project, user=user, role="viewer")
    return project


@pytest.fixture
def admin_user(db):
    return make_user("admin", Role.ADMIN, email="admin@example.com")


@pytest.fixture
def member(db):
    return make_user("member", Role.MEMBER)


@pytest.fixture
def viewer(db):
    return make_user("viewer", Role.VIEWER)


@pytest.fixture
def outsider(db):
    return make_user("outsider", Role.MEMBER)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


# ---------------------------------------------------------------------------
# Real services: PostgreSQL and Redis
# ---------------------------------------------------------------------------
def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_required(settings):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        skip_or_fail("PostgreSQL not configured (set DATABASE_URL=postgres://…)")


@pytest.fixture
def redis_url(settings):
    url = settings.REDIS_URL
    if not url or not _port_open("127.0.0.1", 6379):
        skip_or_fail("Redis not configured or not reachable (set REDIS_URL=redis://127.0.0.1:6379/…)")
    return url


# ---------------------------------------------------------------------------
# Browser
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15000)
    # Assertions wait as long as actions: a busy 2-core CI machine can take seconds to answer an htmx swap.
    from playwright.sync_api import expect

    expect.set_options(timeout=15000)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    if os.environ.get("SCREENSHOT_DIR"):
        os.makedirs(os.environ["SCREENSHOT_DIR"], exist_ok=True)
    context.close()


def login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
