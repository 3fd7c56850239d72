"""Session lifecycle (RELIABILITY W8): an idle timeout as well as the absolute one; logout ends the session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

import config.urls  # noqa: F401  (load the URLconf, and the API's pydantic schemas, before time is frozen)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _dashboard(client):
    return client.get(reverse("dashboard"))


def test_idle_session_ends_after_30_minutes(client, member, settings):
    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60
    with freeze_time(timezone.now()) as clock:
        client.force_login(member)
        assert _dashboard(client).status_code == 200
        for _ in range(3):  # active every 29 minutes: stays signed in
            clock.tick(timedelta(minutes=29))
            assert _dashboard(client).status_code == 200
        clock.tick(timedelta(minutes=31))
        response = _dashboard(client)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
        page = client.get(response.url).content.decode()
        assert "signed out after 30 minutes without activity" in page
        clock.tick(timedelta(seconds=1))
        assert _dashboard(client).status_code == 302  # the session is gone, not just hidden


def test_htmx_request_of_an_idle_session_is_sent_to_login(client, member):
    with freeze_time(timezone.now()) as clock:
        client.force_login(member)
        _dashboard(client)
        clock.tick(timedelta(minutes=45))
        response = client.get(reverse("projects:list"), headers={"HX-Request": "true"})
        assert response["HX-Redirect"].startswith(reverse("login"))


def test_active_session_still_ends_12_hours_after_sign_in(client, member, settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 60 * 60
    start = timezone.now()
    with freeze_time(start) as clock:
        client.post(reverse("login"), {"username": "member", "password": PASSWORD})
        while timezone.now() - start < timedelta(hours=11, minutes=50):
            clock.tick(timedelta(minutes=20))
            assert _dashboard(client).status_code == 200, timezone.now() - start
        clock.tick(timedelta(minutes=20))
        response = _dashboard(client)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
        assert "12 hours after signing in" in client.get(response.url).content.decode()


def test_idle_timeout_is_a_setting(client, member, settings):
    settings.SESSION_IDLE_TIMEOUT = 5 * 60
    with freeze_time(timezone.now()) as clock:
        client.force_login(member)
        _dashboard(client)
        clock.tick(timedelta(minutes=6))
        assert _dashboard(client).status_code == 302


def test_logout_invalidates_the_session(client, member):
    client.force_login(member)
    cookie = client.cookies[client.session.session_key and "sessionid"].value
    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # replaying the old cookie does not bring the session back
    assert _dashboard(client).status_code == 302
