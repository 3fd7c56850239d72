"""Password guessing (RELIABILITY W10): lockout per username and per address, audited, unlockable by admins."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

import config.urls  # noqa: F401  (load the URLconf, and the API's pydantic schemas, before time is frozen)
from accounts.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many sign-in attempts"
CSRF_VALUE = re.compile(r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')


def _sign_in(client: Client, username: str, password: str, path: str = "/login/", **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def test_fifteen_wrong_passwords_then_the_right_one_is_refused(client, member):
    answers = [_sign_in(client, "member", f"wrong-{i}").status_code for i in range(15)]
    assert answers[:4] == [200] * 4 and set(answers[5:]) == {429}
    response = _sign_in(client, "member", PASSWORD)
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert not _signed_in(client)
    failed = AuditEvent.objects.filter(action="login.failed")
    assert failed.count() == 16 and set(failed.values_list("details__username", flat=True)) == {"member"}
    assert failed.filter(object_id=str(member.pk), ip_address="127.0.0.1").count() == 16
    lockouts = AuditEvent.objects.filter(action="login.locked_out")
    assert lockouts.count() == 1 and lockouts.get().details["username"] == "member"
    assert PASSWORD not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_unknown_and_known_usernames_get_the_same_answers(member):
    def page(response) -> str:
        return CSRF_VALUE.sub(r"\1…", response.content.decode())

    pages = {}
    for username in ("member", "nobody-by-this-name"):
        client = Client(REMOTE_ADDR=f"10.9.0.{len(pages) + 1}")
        first = page(_sign_in(client, username, "wrong")).replace(username, "U")
        for _ in range(5):
            last = _sign_in(client, username, "wrong")
        pages[username] = (first, last.status_code, page(last))
    assert pages["member"] == pages["nobody-by-this-name"]
    assert "did not match" in pages["member"][0] and pages["member"][1] == 429


def test_one_address_guessing_many_usernames_is_locked_out(member):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(5):
        _sign_in(client, f"user{i}", "wrong")
    assert _sign_in(client, "member", PASSWORD).status_code == 429
    # Someone else, elsewhere, is not affected.
    other = Client(REMOTE_ADDR="203.0.113.8")
    assert _sign_in(other, "member", PASSWORD).status_code == 302


def test_one_username_guessed_from_many_addresses_is_locked_out(member):
    for i in range(5):
        _sign_in(Client(REMOTE_ADDR=f"198.51.100.{i}"), "member", "wrong")
    assert _sign_in(Client(REMOTE_ADDR="198.51.100.200"), "member", PASSWORD).status_code == 429


def test_admin_login_is_throttled_too(admin_user):
    client = Client()
    for _ in range(5):
        _sign_in(client, "admin", "wrong", path="/admin/login/")
    response = _sign_in(client, "admin", PASSWORD, path="/admin/login/")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert AuditEvent.objects.filter(action="login.failed").count() == 6


def test_lockout_ends_after_the_cool_off(member, settings):
    start = timezone.now()
    client = Client()
    with freeze_time(start):
        for _ in range(5):
            _sign_in(client, "member", "wrong")
        assert _sign_in(client, "member", PASSWORD).status_code == 429
    with freeze_time(start + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)):
        assert _sign_in(client, "member", PASSWORD).status_code == 302


def test_behind_a_proxy_each_client_is_counted_apart(member, settings):
    """One proxy address for everyone must not mean one lockout for everyone (TRUSTED_PROXY_COUNT)."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    attacker = Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.50")
    for i in range(5):
        _sign_in(attacker, f"guess{i}", "wrong")
    assert _sign_in(attacker, "member", PASSWORD).status_code == 429
    # A forged left-most entry does not hide the attacker: the proxy's own entry is the one counted.
    forged = Client(**proxy, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.50")
    assert _sign_in(forged, "member", PASSWORD).status_code == 429
    colleague = Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.51")
    assert _sign_in(colleague, "member", PASSWORD).status_code == 302
    assert set(AuditEvent.objects.filter(action="login.failed").values_list("ip_address", flat=True)) == {
        "203.0.113.50"
    }


def test_admin_unlocks_a_user_and_an_address_in_users(client, admin_user, member):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(5):
        _sign_in(attacker, f"guess{i}", "wrong")
    for i in range(5):
        _sign_in(Client(REMOTE_ADDR=f"198.51.100.{i}"), "member", "wrong")
    client.force_login(admin_user)
    page = client.get(reverse("users")).content.decode()
    assert "Locked out" in page and reverse("user_unlock", args=[member.pk]) in page
    assert "Blocked addresses" in page and "203.0.113.9" in page

    response = client.post(reverse("user_unlock", args=[member.pk]))
    assert response.status_code == 302
    assert _sign_in(Client(REMOTE_ADDR="198.51.100.99"), "member", PASSWORD).status_code == 302
    client.post(reverse("address_unlock"), {"ip_address": "203.0.113.9"})
    assert _sign_in(attacker, "member", PASSWORD).status_code == 302
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"user.unlocked", "address.unlocked"} <= actions
    assert "Locked out" not in client.get(reverse("users")).content.decode()


def test_only_admins_unlock(client, member, viewer):
    client.force_login(member)
    assert client.post(reverse("user_unlock", args=[viewer.pk])).status_code == 403
    assert client.post(reverse("address_unlock"), {"ip_address": "127.0.0.1"}).status_code == 403


# ---------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------
def test_repeated_bad_api_tokens_from_one_address_get_429(member, settings):
    from api.models import ApiToken

    _, good = ApiToken.issue(member, "CI")
    guesser = Client(REMOTE_ADDR="203.0.113.20")
    answers = [
        guesser.get("/api/v1/me", headers={"Authorization": f"Bearer kdt_guess{i}"}).status_code
        for i in range(settings.API_TOKEN_FAILURE_LIMIT + 2)
    ]
    assert answers[: settings.API_TOKEN_FAILURE_LIMIT] == [401] * settings.API_TOKEN_FAILURE_LIMIT
    assert answers[settings.API_TOKEN_FAILURE_LIMIT :] == [429, 429]
    blocked = guesser.get("/api/v1/me", headers={"Authorization": f"Bearer {good}"})
    assert blocked.status_code == 429 and "Too many invalid API tokens" in blocked.json()["detail"]
    assert int(blocked["Retry-After"]) > 0
    # Another address with the good token is served.
    other = Client(REMOTE_ADDR="203.0.113.21")
    assert other.get("/api/v1/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert AuditEvent.objects.filter(action="api.token_throttled", ip_address="203.0.113.20").count() == 1
