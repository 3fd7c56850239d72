"""CSRF on every POST route, and the upload view's access check before its body (issue 12 §6).

The crawl walks the whole URL resolver (the app, `/api/v1/` and the admin) and POSTs to every route without a
CSRF token, signed in as an admin who may do anything, so a 403 can only be the CSRF check: a route that
forgets it (a `csrf_exempt` view without its own check) answers 200/302/400 and fails the test.
"""

from __future__ import annotations

import re

import pytest
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import make_project
from tests.projects.test_findings import make_asset, make_finding, make_plugin, make_profile, make_run

pytestmark = pytest.mark.django_db

# Django's CSRF failure page and the API's SessionAuth (every page holds "X-CSRFToken", so match the refusal).
CSRF_REFUSAL = re.compile(rb"CSRF (verification|check) failed")

# Routes that must be refused for lack of a token (not merely for refusing POST altogether).
MUST_CHECK = {
    "login",
    "logout",
    "admin:login",
    "projects:upload",
    "projects:create",
    "integrations:new",
    "api-v1:start_run",
    "tokens:list",
    "user_unlock",
}


def _routes() -> list[tuple[str, list[str]]]:
    """(namespaced name, its keyword arguments) for every named route, admin and API included."""
    found: list[tuple[str, list[str]]] = []

    def keywords(pattern) -> list[str]:
        regex = pattern.regex
        return list(regex.groupindex)

    def walk(patterns, namespace: str, outer: list[str]) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, ns, outer + keywords(entry.pattern))
            elif isinstance(entry, URLPattern) and entry.name:
                found.append((namespace + entry.name, outer + keywords(entry.pattern)))

    walk(get_resolver().url_patterns, "", [])
    return found


@pytest.fixture
def objects(admin_user) -> dict[str, str]:
    """Real objects for every kind of id a route takes, so csrf_exempt views reach their own checks."""
    project = make_project("Payments")
    profile = make_profile(project)
    run = make_run(project, profile)
    finding = make_finding(project, make_asset(project, "web-1", "10.0.0.1"), make_plugin(1001))
    ids = {
        "pk": project.pk,
        "project_id": project.pk,
        "profile_pk": profile.pk,
        "profile_id": profile.pk,
        "run_pk": run.pk,
        "run_id": run.pk,
        "finding_pk": finding.pk,
        "asset_pk": finding.asset_id,
        "object_id": admin_user.pk,
    }
    return {
        **{key: str(value) for key, value in ids.items()},
        "slug": "tenableiovm",
        "app_label": "auth",
        "content_type_id": "1",
    }


def test_every_post_route_refuses_a_request_without_a_csrf_token(admin_user, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    refused, not_post, unprotected = set(), set(), []
    for name, kwargs in _routes():
        url = reverse(name, kwargs={key: objects.get(key, "1") for key in kwargs})
        response = client.post(url, {"name": "x"})
        if response.status_code == 405:
            not_post.add(name)  # the route takes no POST at all
        elif response.status_code == 403 and CSRF_REFUSAL.search(response.content):
            refused.add(name)
        else:
            unprotected.append((name, url, response.status_code))
    assert unprotected == [], "POST accepted without a CSRF token"
    assert MUST_CHECK <= refused, MUST_CHECK - refused
    assert len(refused) > 60 and any(name.startswith("admin:") for name in refused)


def test_the_same_routes_accept_a_request_with_the_token(admin_user, objects):
    """The crawl's 403s come from the token check: with the token, the upload and the API answer normally."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get(reverse("projects:list"))
    token = client.cookies["csrftoken"].value
    upload = client.post(
        reverse("projects:upload", args=[objects["pk"]]), {"csrfmiddlewaretoken": token}, follow=False
    )
    assert upload.status_code == 200 and not CSRF_REFUSAL.search(upload.content)
    api = client.get(f"/api/v1/projects/{objects['pk']}", headers={"X-CSRFToken": token})
    assert api.status_code == 200


@pytest.fixture
def parsed(monkeypatch) -> list[int]:
    """Counts multipart bodies Django parses (what writes an upload to disk)."""
    calls: list[int] = []
    original = MultiPartParser.parse

    def spy(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(MultiPartParser, "parse", spy)
    return calls


@pytest.mark.parametrize(("persona", "expected"), [("viewer", 403), ("outsider", 404)])
def test_upload_body_is_not_read_before_the_access_check(request, parsed, persona, expected):
    user = request.getfixturevalue(persona)
    project = make_project("Payments", viewers=[request.getfixturevalue("viewer")])
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("projects:list"))
    token = client.cookies["csrftoken"].value
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = SimpleUploadedFile("scan.nessus", b"<NessusClientData_v2/>" + b" " * 200_000)
    response = client.post(
        reverse("projects:upload", args=[project.pk]), {"csrfmiddlewaretoken": token, "file": body}
    )
    assert response.status_code == expected
    assert parsed == [], "the upload body was parsed before access was checked"
