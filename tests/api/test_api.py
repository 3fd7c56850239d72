"""`/api/v1/` (issue #9): authentication (W2), permissions as in the UI, other projects' ids (W3), hostile query
strings (W6), the 409 on a running profile, JSON errors and the generated OpenAPI schema."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from api.models import ApiToken, digest
from projects.models import ScanRun
from tests.api.conftest import SENTINEL, bearer
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def endpoints(w) -> list[tuple[str, str]]:
    """Every API operation of project Payments, as (method, path)."""
    p = w.project.pk
    return [
        ("get", "/api/v1/me"),
        ("get", "/api/v1/scanners"),
        ("get", "/api/v1/projects"),
        ("get", f"/api/v1/projects/{p}"),
        ("get", f"/api/v1/projects/{p}/profiles"),
        ("get", f"/api/v1/projects/{p}/runs"),
        ("get", f"/api/v1/projects/{p}/findings"),
        ("get", f"/api/v1/runs/{w.run.pk}"),
        ("post", f"/api/v1/projects/{p}/profiles/{w.profile.pk}/runs"),
        ("get", "/api/v1/openapi.json"),
    ]


def call(client, method: str, path: str, headers=None, **kwargs):
    return getattr(client, method)(path, headers=headers or {}, **kwargs)


# ---------------------------------------------------------------------------
# W2: who may call
# ---------------------------------------------------------------------------
def test_anonymous_gets_401_json_everywhere(client, world):
    for method, path in endpoints(world):
        response = call(client, method, path)
        assert response.status_code == 401, path
        assert response["Content-Type"].startswith("application/json"), path
        assert "API token" in response.json()["detail"], path
        assert response["WWW-Authenticate"] == "Bearer"
    assert ScanRun.objects.count() == 2


@pytest.mark.parametrize(
    "header",
    ["Bearer kdt_not-a-real-token", "Bearer ", "Bearer something-else", "Basic dXNlcjpwYXNz", "kdt_abc"],
)
def test_bad_tokens_get_401_with_a_reason(client, world, header):
    response = client.get("/api/v1/projects", headers={"Authorization": header})
    assert response.status_code == 401
    assert "token" in response.json()["detail"].lower()


def test_revoked_expired_and_deactivated_tokens_are_refused(client, world, member):
    token, raw = ApiToken.issue(member, "laptop")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    ApiToken.objects.filter(pk=token.pk).update(expires_at=None, revoked_at=timezone.now())
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]

    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    type(member).objects.filter(pk=member.pk).update(is_active=False)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_token_is_stored_hashed_and_records_last_use(client, member):
    token, raw = ApiToken.issue(member, "ci")
    assert raw.startswith("kdt_") and len(raw) > 40
    assert token.token_hash == digest(raw) and raw not in token.token_hash
    assert raw.startswith(token.prefix) and len(token.prefix) == 12
    assert token.last_used_at is None
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.json() == {
        "username": "member",
        "role": "member",
        "token_name": "ci",
        "token_expires": None,
    }
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_session_reads_and_writes_with_csrf(world, member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    assert browser.get("/api/v1/projects").status_code == 200
    url = f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs"
    refused = browser.post(url)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert ScanRun.objects.count() == 2
    browser.get("/settings/api-tokens/")  # sets the CSRF cookie, as any page does
    accepted = browser.post(url, headers={"X-CSRFToken": browser.cookies["csrftoken"].value})
    assert accepted.status_code == 202, accepted.content


def test_tokens_need_no_csrf(world, member):
    response = Client(enforce_csrf_checks=True).post(
        f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs", headers=bearer(member)
    )
    assert response.status_code == 202


# ---------------------------------------------------------------------------
# Permissions exactly as in the UI
# ---------------------------------------------------------------------------
def test_project_lists_follow_visibility(client, world, admin_user, member, viewer, outsider):
    names = lambda user: [p["name"] for p in client.get("/api/v1/projects", headers=bearer(user)).json()]  # noqa: E731
    assert names(admin_user) == ["Payments", SENTINEL]
    assert names(member) == ["Payments"]
    assert names(viewer) == ["Payments"]
    assert names(outsider) == [SENTINEL]
    by_name = client.get("/api/v1/projects", {"name": "Payments"}, headers=bearer(admin_user)).json()
    assert [p["id"] for p in by_name] == [world.project.pk]
    assert client.get("/api/v1/projects", {"name": SENTINEL}, headers=bearer(member)).json() == []


@pytest.mark.parametrize("persona", ["admin_user", "member", "viewer"])
def test_readers_see_the_project(client, world, persona, request):
    headers = bearer(request.getfixturevalue(persona))
    for method, path in endpoints(world):
        if method == "get":
            assert call(client, method, path, headers).status_code == 200, path


def test_viewer_cannot_start_runs(client, world, viewer, caplog):
    url = f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs"
    response = client.post(url, headers=bearer(viewer))
    assert response.status_code == 403
    assert "Ask an admin" in response.json()["detail"]
    assert ScanRun.objects.count() == 2
    assert any("run.start" in r.getMessage() for r in caplog.records)
    detail = client.get(f"/api/v1/projects/{world.project.pk}", headers=bearer(viewer)).json()
    assert detail["can_start_runs"] is False


def test_member_viewer_role_in_project_cannot_start(client, world):
    reader = make_user("reader")  # a member globally, but a viewer of this project
    world.project.memberships.create(user=reader, role="viewer")
    response = client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs", headers=bearer(reader)
    )
    assert response.status_code == 403


def test_member_starts_a_run(client, world, member):
    response = client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs",
        data=json.dumps({"trigger": "cli"}),
        content_type="application/json",
        headers=bearer(member),
    )
    assert response.status_code == 202, response.content
    body = response.json()
    run = ScanRun.objects.get(pk=body["id"])
    assert (run.trigger, run.requested_by, run.status) == ("cli", member, "queued")
    assert body["status"] == "queued" and body["phase"] == "Queued" and body["finished"] is False
    assert body["tool"] == "tenableiovm" and body["profile_name"] == "Nightly"
    assert body["url"].endswith(f"/projects/{world.project.pk}/runs/{run.pk}/")
    assert AuditEvent.objects.filter(action="run.requested", object_id=str(run.pk), actor=member).exists()
    again = client.get(f"/api/v1/runs/{run.pk}", headers=bearer(member)).json()
    assert again["id"] == run.pk


def test_running_profile_answers_409_with_the_run_id(client, world, member):
    active = ScanRun.objects.create(project=world.project, profile=world.profile, status="exporting")
    response = client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs", headers=bearer(member)
    )
    assert response.status_code == 409
    body = response.json()
    assert body["run_id"] == active.pk and "already in progress" in body["detail"]
    assert ScanRun.objects.count() == 3
    profiles = client.get(f"/api/v1/projects/{world.project.pk}/profiles", headers=bearer(member)).json()
    assert profiles[0]["active_run_id"] == active.pk


# ---------------------------------------------------------------------------
# W3: another project's ids answer 404, with nothing of it in the body
# ---------------------------------------------------------------------------
def test_other_projects_ids_answer_404(client, world, member, outsider):
    w = world
    p, o = w.project.pk, w.other.pk
    headers = bearer(member)
    urls = [
        ("get", f"/api/v1/projects/{o}"),
        ("get", f"/api/v1/projects/{o}/profiles"),
        ("get", f"/api/v1/projects/{o}/runs"),
        ("get", f"/api/v1/projects/{o}/findings"),
        ("get", f"/api/v1/runs/{w.other_run.pk}"),
        ("post", f"/api/v1/projects/{o}/profiles/{w.other_profile.pk}/runs"),
        ("post", f"/api/v1/projects/{p}/profiles/{w.other_profile.pk}/runs"),  # B's profile under A
        ("get", "/api/v1/projects/999999"),
        ("get", "/api/v1/runs/999999"),
    ]
    for method, url in urls:
        response = call(client, method, url, headers)
        assert response.status_code == 404, url
        assert SENTINEL not in response.content.decode(), url
        assert response.json()["detail"]
    assert ScanRun.objects.count() == 2
    # The outsider is refused Payments the same way.
    for method, url in endpoints(world)[3:9]:
        assert call(client, method, url, bearer(outsider)).status_code == 404, url
    # Filters that name B's rows inside A's list find nothing of B.
    for params in (
        {"profile": w.other_profile.pk},
        {"run": w.other_run.pk, "change": "new"},
        {"q": SENTINEL},
    ):
        body = client.get(f"/api/v1/projects/{p}/findings", params, headers=headers)
        assert body.status_code == 200 and body.json()["results"] == []
    runs = client.get(f"/api/v1/projects/{p}/runs", {"profile": w.other_profile.pk}, headers=headers).json()
    assert runs == []


# ---------------------------------------------------------------------------
# Findings: the UI's filters; W6 hostile query strings
# ---------------------------------------------------------------------------
def test_findings_default_to_the_open_untriaged_list(client, world, member):
    url = f"/api/v1/projects/{world.project.pk}/findings"
    body = client.get(url, headers=bearer(member)).json()
    assert [f["plugin_name"] for f in body["results"]] == ["OpenSSL critical", "TLS weak"]
    assert body["count"] == 2 and body["page"] == 1 and body["has_next"] is False and body["next"] is None
    first = body["results"][0]
    assert first["severity"] == 4 and first["severity_label"] == "Critical" and first["host"] == "web-1"
    assert first["url"].startswith("http://testserver/projects/")

    every = client.get(
        url, {"state": "any", "triage": "any", "sort": "plugin_id"}, headers=bearer(member)
    ).json()
    assert [f["plugin_id"] for f in every["results"]] == [1001, 1002, 1003, 1004]
    highs = client.get(url, {"severity": "3", "state": "fixed"}, headers=bearer(member)).json()
    assert [f["plugin_id"] for f in highs["results"]] == [1003]
    assert client.get(url, {"severity": ["4", "3"]}, headers=bearer(member)).json()["count"] == 2

    detail = client.get(f"/api/v1/projects/{world.project.pk}", headers=bearer(member)).json()
    assert detail["open_findings"] == {"critical": 1, "high": 1, "medium": 0, "low": 0, "info": 0}


def test_findings_pages_link_to_the_next(client, world, member):
    from tests.projects.test_findings import make_asset, make_finding, make_plugin

    plugin = make_plugin(3000, "Many")
    for i in range(55):
        make_finding(world.project, make_asset(world.project, f"h{i}", f"10.1.0.{i}"), plugin, severity=1)
    url = f"/api/v1/projects/{world.project.pk}/findings"
    first = client.get(url, {"severity": "1"}, headers=bearer(member)).json()
    assert len(first["results"]) == 50 and first["has_next"] and first["count"] == 55
    assert "severity=1" in first["next"] and first["next"].endswith("page=2")
    second = client.get(first["next"], headers=bearer(member)).json()
    assert len(second["results"]) == 5 and second["page"] == 2


HOSTILE = [
    ({"page": "abc"}, 400),
    ({"page": "-1"}, 400),
    ({"page": "0"}, 400),
    ({"page": "999999999999999999999"}, 400),
    ({"severity": "1' OR 1=1--"}, 400),
    ({"severity": "9"}, 400),
    ({"sort": "-password"}, 400),
    ({"sort": "--severity"}, 400),
    ({"sort": "asset__project__members__password"}, 400),
    ({"project__owner__password__startswith": "a"}, 400),
    ({"state": "bogus"}, 400),
    ({"triage": "'; DROP TABLE projects_finding;--"}, 400),
    ({"port": "70000"}, 400),
    ({"first_seen_from": "yesterday"}, 400),
    ({"run": "1"}, 400),
    ({"group": "host"}, 400),
    ({"q": "x\x00y"}, 400),  # NUL is refused before any view (issue 12 §6)
    ({"q": "' OR 1=1--"}, 200),
    ({"host": "%' OR '1'='1"}, 200),
    ({"q": "A" * 5000}, 200),
    ({"family": "\u202e\ufeff"}, 200),
    ({"sort": "-last_seen", "state": "any"}, 200),
    ({"page": "200"}, 200),
]


@pytest.mark.parametrize(("params", "expected"), HOSTILE)
def test_hostile_finding_params_answer_200_or_400(client, world, member, params, expected):
    response = client.get(f"/api/v1/projects/{world.project.pk}/findings", params, headers=bearer(member))
    assert response.status_code == expected, response.content
    body = response.json()
    if expected == 400:
        assert body["detail"] and "Traceback" not in body["detail"]
    else:
        assert {f["plugin_id"] for f in body["results"]} <= {1001, 1002, 1003, 1004}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("runs", {"limit": "abc"}),
        ("runs", {"limit": "0"}),
        ("runs", {"profile": "1 OR 1=1"}),
    ],
)
def test_other_bad_query_values_answer_400(client, world, member, path, params):
    response = client.get(f"/api/v1/projects/{world.project.pk}/{path}", params, headers=bearer(member))
    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "must be a JSON object"),
        ('{"trigger": "schedule"}', "trigger"),
        ("[1, 2]", "must be a JSON object"),
        ('"cli"', "must be a JSON object"),
    ],
)
def test_bad_json_bodies_answer_400(client, world, member, body, fragment):
    response = client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{world.profile.pk}/runs",
        data=body,
        content_type="application/json",
        headers=bearer(member),
    )
    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]
    assert ScanRun.objects.count() == 2


def test_unknown_api_path_and_wrong_method(client, world, member):
    assert client.get("/api/v1/nothing-here", headers=bearer(member)).status_code == 404
    assert client.delete(f"/api/v1/runs/{world.run.pk}", headers=bearer(member)).status_code == 405


# ---------------------------------------------------------------------------
# Scanner types, OpenAPI schema, docs
# ---------------------------------------------------------------------------
def test_scanners_come_from_the_connector_registry(client, member):
    body = client.get("/api/v1/scanners", headers=bearer(member)).json()
    assert body == [{"slug": "tenableiovm", "label": "Tenable.io VM", "category": "infra"}]


def test_openapi_schema_is_generated_from_the_code(client, member):
    response = client.get("/api/v1/openapi.json", headers=bearer(member))
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert "/api/v1/projects/{project_id}/profiles/{profile_id}/runs" in paths
    start = paths["/api/v1/projects/{project_id}/profiles/{profile_id}/runs"]["post"]
    assert {"202", "403", "404", "409"} <= set(start["responses"])
    findings = paths["/api/v1/projects/{project_id}/findings"]["get"]
    assert {"severity", "state", "triage", "sort", "page"} <= {p["name"] for p in findings["parameters"]}
    assert "/api/v1/schema" not in paths
    assert client.get("/api/v1/schema").status_code == 401
    redirect = client.get("/api/v1/schema", headers=bearer(member))
    assert redirect.status_code == 302 and redirect["Location"] == "/api/v1/openapi.json"


def test_docs_page_works_offline_for_signed_in_users(client, member):
    anonymous = client.get("/api/v1/docs")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    client.force_login(member)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and 'src="http' not in html and 'href="http' not in html


def test_docs_page_accepts_a_token_as_the_readme_says(client, member):
    """Issue 12 §9: with a Bearer token the docs redirected to the login page."""
    page = client.get("/api/v1/docs", headers=bearer(member))
    assert page.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in page.content.decode()
    wrong = client.get("/api/v1/docs", headers={"Authorization": "Bearer kdt_wrong"})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    assert wrong["WWW-Authenticate"] == "Bearer"
    anonymous = client.get("/api/v1/docs?x=1")  # a browser without either still goes to the login page
    assert anonymous.status_code == 302 and anonymous["Location"] == "/login/?next=/api/v1/docs%3Fx%3D1"


def test_no_secret_in_profile_responses(client, world, member):
    world.profile.webhook_secret = "whsec_very-secret-value"
    world.profile.save()
    body = client.get(
        f"/api/v1/projects/{world.project.pk}/profiles", headers=bearer(member)
    ).content.decode()
    assert "very-secret-value" not in body and "webhook" not in body
