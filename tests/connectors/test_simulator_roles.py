"""Key pairs per role: what each role may call (TENABLE_API.md's table), who it is, what it may view, tags."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.tenable_io.simulator import TenableSimulator
from tests.tenable_fixtures import SIM_ROLE_KEYS

FORBIDDEN = {"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope"}
EVERYTHING = {"since": 0, "state": ["OPEN", "REOPENED", "FIXED"]}


def headers(role: str) -> dict[str, str]:
    access, secret = ("sim-access", "sim-secret") if role == "main" else SIM_ROLE_KEYS[role]
    return {"X-ApiKeys": f"accessKey={access}; secretKey={secret}"}


def call(server, role, method, path, body=None):
    return requests.request(method, server.url + path, json=body, headers=headers(role), timeout=10)


@pytest.fixture
def server():
    with TenableSimulator().serve() as running:
        yield running


# (method, path, lowest role that may call it) — the roles table of TENABLE_API.md.
CALLS = [
    ("GET", "/scans", "basic"),
    ("GET", "/session", "basic"),
    ("GET", "/api/v3/access-control/permissions/users/me", "basic"),
    ("GET", "/tags/values", "basic"),
    ("POST", "/vulns/export", "basic"),
    ("POST", "/assets/export", "basic"),
    ("POST", "/assets/v2/export", "basic"),
    ("GET", "/scans/{scan}", "scan_operator"),
    ("GET", "/scans/{scan}/latest-status", "scan_operator"),
    ("POST", "/scans/{scan}/export", "scan_operator"),
    ("POST", "/scans/{other}/launch", "scan_operator"),
    ("GET", "/editor/scan/{scan}", "standard"),
    ("GET", "/scanners/null/agent-groups", "scan_manager"),
    ("GET", "/scanners", "scan_manager"),
]
ROLES = ["basic", "scan_operator", "standard", "scan_manager", "administrator", "main"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_make_the_calls_its_role_allows(server, role):
    sim = server.sim
    refs = {"scan": sim.scan_id("completed"), "other": sim.scan_id("scheduled")}
    bodies = {
        "/vulns/export": {"filters": {"since": ROLES.index(role)}},
        "/assets/export": {"chunk_size": 100},
    }
    bodies |= {"/assets/v2/export": {"chunk_size": 100}, "/scans/{scan}/export": {"format": "nessus"}}
    for method, path, needs in CALLS:
        response = call(server, role, method, path.format(**refs), bodies.get(path, {}))
        allowed = ROLES.index(role) >= ROLES.index(needs)
        if allowed:
            assert response.status_code == 200, (role, path, response.text)
        else:
            assert (response.status_code, response.json()) == (403, FORBIDDEN), (role, path)


def test_basic_can_list_scans_but_not_read_export_or_launch_them(server):
    sim = server.sim
    scan_id = sim.scan_id("completed")
    listed = call(server, "basic", "GET", "/scans").json()["scans"]
    assert len(listed) == 12 and {s["user_permissions"] for s in listed} == {16}
    file_status = f"/scans/{scan_id}/export/SSE-x-nessus/status"
    for method, path in [
        ("GET", f"/scans/{scan_id}"),
        ("POST", f"/scans/{scan_id}/launch"),
        ("GET", file_status),
    ]:
        assert call(server, "basic", method, path).json() == FORBIDDEN


@pytest.mark.parametrize(
    ("role", "number", "username"),
    [
        ("basic", 16, "vm-readonly@example.com"),
        ("scan_operator", 24, "scan-operator@example.com"),
        ("standard", 32, "standard-user@example.com"),
        ("scan_manager", 40, "scan-manager@example.com"),
        ("administrator", 64, "admin@example.com"),
        ("main", 64, "secops@example.com"),
    ],
)
def test_session_says_who_and_which_role(server, role, number, username):
    session = call(server, role, "GET", "/session").json()
    assert (session["permissions"], session["username"], session["email"]) == (number, username, username)
    assert session["container_name"] == "Example Corp" and len(session["container_uuid"]) == 36


def test_permission_configurations_per_role(server):
    sim = server.sim
    basic = call(server, "basic", "GET", "/api/v3/access-control/permissions/users/me").json()
    assert basic["permissions_available"] == []
    (grant,) = basic["permissions_granted"]
    assert grant["actions"] == ["CanView"] and grant["subjects"][0]["name"] == "vm-readonly@example.com"
    (tag,) = grant["objects"]
    assert (tag["type"], tag["name"]) == ("Tag", "Location:Dallas")
    value = call(server, "basic", "GET", f"/tags/values/{tag['uuid']}").json()
    assert (value["category_name"], value["value"]) == ("Location", "Dallas")
    for role in ("scan_operator", "administrator", "main"):
        (grant,) = call(server, role, "GET", "/api/v3/access-control/permissions/users/me").json()[
            "permissions_granted"
        ]
        assert grant["objects"] == [{"type": "AllAssets"}] and set(grant["actions"]) == {"CanView", "CanScan"}
    assert sim.user("sim-basic-access").view_tags == (tag["uuid"],)


def test_basic_exports_hold_only_the_assets_it_may_view(server):
    sim = server.sim
    dallas = {
        a["id"]
        for a in sim.assets()
        if any((t["tag_key"], t["tag_value"]) == ("Location", "Dallas") for t in a["tags"])
    }
    basic = sim.vulns(key="sim-basic-access", states=EVERYTHING["state"], since=0)
    admin = sim.vulns(states=EVERYTHING["state"], since=0)
    assert basic and {r["asset"]["uuid"] for r in basic} <= dallas
    assert sorted(r["finding_id"] for r in basic) == sorted(
        r["finding_id"] for r in admin if r["asset"]["uuid"] in dallas
    )
    assert {a["id"] for a in sim.assets(key="sim-basic-access")} == dallas < {a["id"] for a in sim.assets()}
    uuid = call(
        server, "basic", "POST", "/vulns/export", {"filters": {"since": 0, "state": ["FIXED"]}}
    ).json()
    status = call(server, "basic", "GET", f"/vulns/export/{uuid['export_uuid']}/status").json()
    records = [
        r
        for c in status["chunks_available"]
        for r in call(server, "basic", "GET", f"/vulns/export/{uuid['export_uuid']}/chunks/{c}").json()
    ]
    assert sorted(r["finding_id"] for r in records) == sorted(
        r["finding_id"] for r in basic if r["state"] == "FIXED"
    )
    assert call(server, "main", "GET", f"/vulns/export/{uuid['export_uuid']}/status").status_code == 404


def test_tag_values_listing(server):
    body = call(server, "main", "GET", "/tags/values").json()
    assert body["pagination"] == {"offset": 0, "limit": 5000, "total": 6}
    labels = [f"{v['category_name']}: {v['value']}" for v in body["values"]]
    assert labels[:2] == ["Location: Dallas", "Environment: Production"]
    assert {"uuid", "category_uuid", "category_name", "value", "type"} <= set(body["values"][0])
    location = call(server, "main", "GET", "/tags/values?f=category_name:eq:Location").json()["values"]
    assert [v["value"] for v in location] == ["Dallas", "Austin"]
    either = "/tags/values?f=value:eq:AWS&f=category_name:match:busi&ft=OR&sort=value:desc"
    assert [v["value"] for v in call(server, "main", "GET", either).json()["values"]] == ["Payments", "AWS"]
    page = call(server, "main", "GET", "/tags/values?limit=2&offset=4").json()
    assert len(page["values"]) == 2 and page["pagination"]["total"] == 6
    basic = call(server, "basic", "GET", "/tags/values").json()
    assert [(v["category_name"], v["value"]) for v in basic["values"]] == [("Location", "Dallas")]


def test_the_historical_pairs_still_work_as_before(server):
    assert call(server, "main", "GET", f"/editor/scan/{server.sim.scan_id('agent')}").status_code == 200
    forbidden = requests.get(
        server.url + "/session",
        headers={"X-ApiKeys": "accessKey=sim-forbidden-access; secretKey=sim-forbidden-secret"},
        timeout=10,
    )
    assert forbidden.json() == FORBIDDEN
    assert [r.user for r in server.sim.requests[-2:]] == ["main", None]
