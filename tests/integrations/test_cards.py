"""What the Tenable.io VM card says: Active only once keys are saved and tested; lost keys show on the card."""

from __future__ import annotations

import re
import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.integrations.conftest import make_integration

pytestmark = pytest.mark.django_db

GREEN_ACTIVE = re.compile(r'badge-success"><span class="dot"></span>Active<')


def _cards(client) -> str:
    return client.get(reverse("integrations:scanners")).content.decode()


def test_activate_without_keys_says_not_configured(admin_client):
    admin_client.post(reverse("integrations:activate", args=["tenableiovm"]))
    page = _cards(admin_client)
    assert "Not configured" in page and not GREEN_ACTIVE.search(page)
    assert "enter the User Key and Secret Key, then Test Connection" in page


def test_saved_but_untested_keys_are_not_active_yet(admin_client):
    make_integration("https://cloud.tenable.com")
    page = _cards(admin_client)
    assert "Not configured" in page and "Not tested" in page and not GREEN_ACTIVE.search(page)


def test_saved_and_tested_keys_turn_the_card_green(admin_client):
    make_integration("https://cloud.tenable.com", last_test_ok=True, last_tested_at=timezone.now())
    page = _cards(admin_client)
    assert GREEN_ACTIVE.search(page) and "Connected" in page and "Not configured" not in page


def test_lost_fernet_keys_show_on_the_card_without_a_test(admin_client, fernet_keys):
    fernet_keys([secrets.token_urlsafe(48)])
    make_integration("https://cloud.tenable.com", last_test_ok=True, last_tested_at=timezone.now())
    make_integration("https://fedcloud.tenable.com", name="FedRAMP")
    fernet_keys([secrets.token_urlsafe(48)])  # the key was lost
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("integrations:scanners"))
    page = response.content.decode()
    assert response.status_code == 200
    assert (
        page.count("Re-enter the keys") == 2
        and "Needs attention" in page
        and "Re-enter the User Key and Secret Key" in page
    )
    assert ">Connected<" not in page and not GREEN_ACTIVE.search(page)
    # One query lists the connections; the check costs no query per row.
    assert sum("integrations_integration" in q["sql"] for q in queries.captured_queries) == 1


def test_help_names_nopsecs_access_token_and_secret_token(admin_client):
    fragment = admin_client.get(
        reverse("integrations:new", args=["tenableiovm"]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "User Key" in fragment and "Secret Key" in fragment  # the Invicti seed's labels stay
    assert "Access Token" in fragment and "Secret Token" in fragment
