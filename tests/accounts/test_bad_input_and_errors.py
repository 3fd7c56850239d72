"""NUL characters answer 400 everywhere (issue 12 §6); error pages and log lines carry the request id (W9)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from api.models import ApiToken
from projects.models import Project
from tests.boom_urls import SENTINEL

pytestmark = pytest.mark.django_db

NUL = "contains a NUL character"


def test_nul_in_the_audit_filter_is_a_400(admin_client):
    response = admin_client.get("/settings/audit/?action=%00")
    assert response.status_code == 400 and NUL in response.content.decode()


def test_nul_in_an_api_filter_is_a_json_400(client, member):
    _, token = ApiToken.issue(member, "CI")
    response = client.get("/api/v1/projects?name=%00", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and NUL in response.json()["detail"]


def test_nul_in_a_path_is_a_400(admin_client):
    assert admin_client.get("/projects/%00/").status_code == 400


def test_nul_in_a_posted_form_is_a_400(admin_client):
    response = admin_client.post(
        reverse("projects:create"),
        urlencode({"name": "Pay\x00ments", "description": ""}),
        content_type="application/x-www-form-urlencoded",  # what a browser sends for a form
    )
    assert response.status_code == 400 and not Project.objects.exists()
    # Multipart bodies are left to the view (uploads stream); Django's form fields refuse NUL themselves.
    response = admin_client.post(reverse("projects:create"), {"name": "Pay\x00ments", "description": ""})
    assert response.status_code == 200 and "Null characters are not allowed" in response.content.decode()


def test_nul_in_a_json_body_is_a_400(client, member):
    from tests.conftest import make_project

    project = make_project(members=[member])
    _, token = ApiToken.issue(member, "CI")
    response = client.post(
        f"/api/v1/projects/{project.pk}/profiles/1/runs",
        data=json.dumps({"trigger": "cli\u0000"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400 and NUL in response.json()["detail"]


def test_ordinary_input_is_untouched(admin_client):
    assert admin_client.get("/settings/audit/?action=login").status_code == 200
    response = admin_client.post(reverse("projects:create"), {"name": "Payments \\u0000", "description": ""})
    assert response.status_code == 302 and Project.objects.get().name == "Payments \\u0000"


def test_unknown_url_is_a_404_for_a_signed_in_user(admin_client):
    """base.html used to fail on a page without a resolver match, turning every such 404 into a 500."""
    response = admin_client.get("/no-such-page/")
    assert response.status_code == 404 and "Tenable Console" in response.content.decode()


@pytest.fixture
def console_log():
    """What the configured console handler writes (its own formatter and filters), captured."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.parametrize("htmx", [False, True])
def test_500_shows_the_request_id_the_log_carries(admin_user, settings, console_log, htmx):
    settings.ROOT_URLCONF = "tests.boom_urls"
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get("/boom/", headers={"HX-Request": "true"} if htmx else {})
    body = response.content.decode()
    request_id = response["X-Request-ID"]
    assert response.status_code == 500 and request_id in body
    for leak in ("Traceback", SENTINEL, "SECRET_KEY", "FERNET_KEYS", "DATABASES"):
        assert leak not in body
    assert ("<html" in body) is not htmx
    error_lines = [line for line in console_log.getvalue().splitlines() if "Internal Server Error" in line]
    assert error_lines and f"[{request_id}]" in error_lines[-1]


def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(admin_client):
    incoming = uuid.uuid4().hex
    assert admin_client.get("/", headers={"X-Request-ID": incoming})["X-Request-ID"] == incoming
    replaced = admin_client.get("/", headers={"X-Request-ID": "<script>x</script>"})["X-Request-ID"]
    assert replaced != "<script>x</script>" and uuid.UUID(replaced)


def test_an_api_500_carries_the_request_id_the_log_carries(client, member, console_log, monkeypatch):
    import api.views

    def boom(*args, **kwargs):
        raise RuntimeError(SENTINEL)

    monkeypatch.setattr(api.views, "project_out", boom)
    _, token = ApiToken.issue(member, "CI")
    Project.objects.create(name="Boom").memberships.create(user=member, role="member")
    response = client.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
    request_id = response["X-Request-ID"]
    assert response.status_code == 500
    assert response.json()["request_id"] == request_id and request_id in response.json()["detail"]
    assert SENTINEL not in response.content.decode()
    assert f"[{request_id}]" in console_log.getvalue()
