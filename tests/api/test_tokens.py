"""Settings › API Tokens: create (shown once, stored hashed, audited), list, revoke; each user sees only their own."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditEvent
from api.models import ApiToken, digest
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
URL = "/settings/api-tokens/"


def created_token(response) -> str:
    match = re.search(r'id="new-token-value"[^>]*value="(kdt_[^"]+)"', response.content.decode())
    assert match, "the new token is not shown"
    return match.group(1)


def test_every_signed_in_user_has_the_page_in_the_sidebar(client, viewer):
    client.force_login(viewer)
    page = client.get("/")
    assert f'href="{URL}"' in page.content.decode() and "API Tokens" in page.content.decode()
    tokens = client.get(URL)
    assert tokens.status_code == 200 and "No API tokens yet" in tokens.content.decode()


def test_anonymous_is_sent_to_login(client, viewer):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_create_shows_the_token_once_and_stores_only_its_hash(client, member):
    client.force_login(member)
    response = client.post(URL, {"name": "GitLab CI", "expires_in": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = created_token(response)
    html = response.content.decode()
    assert "Copy your new token now" in html and "only time it is shown" in html
    token = ApiToken.objects.get(user=member)
    assert token.name == "GitLab CI" and token.token_hash == digest(raw) and token.expires_at is not None
    assert raw not in str(ApiToken.objects.values().get())
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor == member and event.details["name"] == "GitLab CI" and raw not in str(event.details)

    again = client.get(URL).content.decode()
    assert raw not in again and token.prefix in again and "GitLab CI" in again
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_no_expiry_and_invalid_forms(client, member):
    client.force_login(member)
    client.post(URL, {"name": "laptop", "expires_in": ""})
    assert ApiToken.objects.get().expires_at is None
    response = client.post(URL, {"name": "  ", "expires_in": "30"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    bogus = client.post(URL, {"name": "x", "expires_in": "9999"})
    assert bogus.status_code == 400
    assert ApiToken.objects.count() == 1


def test_revoke_stops_the_token_and_is_audited(client, member):
    token, raw = ApiToken.issue(member, "old pipeline")
    client.force_login(member)
    response = client.post(f"{URL}{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(
        action="api_token.revoked", object_id=str(token.pk), actor=member
    ).exists()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    page = client.get(URL).content.decode()
    assert "Revoked" in page and f"{URL}{token.pk}/revoke/" not in page
    assert client.get(f"{URL}{token.pk}/revoke/").status_code == 405


def test_users_cannot_see_or_revoke_others_tokens(client, member, admin_user):
    theirs, _ = ApiToken.issue(make_user("someone"), "their CI")
    for user in (member, admin_user):
        client.force_login(user)
        assert "their CI" not in client.get(URL).content.decode()
        assert client.post(f"{URL}{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoke_needs_csrf(member):
    from django.test import Client

    token, _ = ApiToken.issue(member, "ci")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    assert browser.post(f"{URL}{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
