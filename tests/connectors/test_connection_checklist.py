"""Test Connection says what the key can do (issue 15): role, visibility and the checklist, per role.

Every role's published key pair against the simulator, whose routes enforce TENABLE_API.md's roles table.
"""

from __future__ import annotations

import pytest

from integrations.connectors.base import (
    CAN_EXPORT,
    CAN_LIST_SCANS,
    CAN_READ_SCAN_RESULTS,
    CAN_SEE_AGENT_GROUPS,
    CAN_START_SCANS,
    ConnectionInfo,
    ConnectorError,
    Visibility,
)
from integrations.connectors.tenable_io import checklist
from integrations.connectors.tenable_io.connector import TenableIOConnector
from integrations.connectors.tenable_io.simulator import TenableSimulator
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_ROLE_KEYS, SIM_SECRET_KEY, FakeTime

ORDER = [CAN_LIST_SCANS, CAN_READ_SCAN_RESULTS, CAN_START_SCANS, CAN_EXPORT, CAN_SEE_AGENT_GROUPS]


def connect(server, role: str | None = None) -> TenableIOConnector:
    access, secret = SIM_ROLE_KEYS[role] if role else (SIM_ACCESS_KEY, SIM_SECRET_KEY)
    fake_time = FakeTime()
    return TenableIOConnector(
        access_key=access,
        secret_key=secret,
        api_url=server.url,
        timeout=(2.0, 10.0),
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
    )


def statuses(info: ConnectionInfo) -> dict[str, str]:
    return {c.key: c.status for c in info.capabilities}


def sentence(info: ConnectionInfo, key: str) -> str:
    return info.capability(key).sentence


@pytest.fixture
def server():
    with TenableSimulator().serve() as running:
        yield running


# (role, number, name, username, visibility, statuses in ORDER)
ROLES = [
    ("basic", 16, "Basic", "vm-readonly@example.com", ("tags", ("Location: Dallas",)),
     ["ok", "missing", "missing", "inferred", "missing"]),
    ("scan_operator", 24, "Scan Operator", "scan-operator@example.com", ("all", ()),
     ["ok", "ok", "inferred", "inferred", "missing"]),
    ("standard", 32, "Standard", "standard-user@example.com", ("all", ()),
     ["ok", "ok", "inferred", "inferred", "missing"]),
    ("scan_manager", 40, "Scan Manager", "scan-manager@example.com", ("all", ()),
     ["ok", "ok", "inferred", "inferred", "ok"]),
    ("administrator", 64, "Administrator", "admin@example.com", ("all", ()),
     ["ok", "ok", "inferred", "inferred", "ok"]),
]  # fmt: skip


@pytest.mark.parametrize(("role", "number", "name", "username", "visibility", "expected"), ROLES)
def test_each_role_gets_its_checklist(server, role, number, name, username, visibility, expected):
    with connect(server, role) as connector:
        info = connector.test_connection()
    assert (info.username, info.container, info.scan_count) == (username, "Example Corp", 11)
    assert (info.role, info.role_name) == (number, name)
    assert (info.visibility.kind, info.visibility.tags) == visibility
    assert [c.key for c in info.capabilities] == ORDER
    assert [c.status for c in info.capabilities] == expected
    assert [c.optional for c in info.capabilities] == [False, False, True, False, True]
    assert all(c.sentence.endswith(".") and c.label for c in info.capabilities)
    assert sentence(info, CAN_LIST_SCANS) == "Can list scans: 11 scans visible."
    # Cheap reads only: the scan list (and its folders), who, what it may view, one scan's status, the groups.
    calls = [f"{r.method} {r.path}" for r in server.sim.requests]
    assert len(calls) <= 9 and not any(c.startswith("POST") for c in calls)
    assert server.sim.export_jobs_created == 0


def test_the_basic_key_is_told_what_it_cannot_do_and_why(server):
    with connect(server, "basic") as connector:
        info = connector.test_connection()
    assert info.visibility.describe() == "Location: Dallas"
    assert sentence(info, CAN_READ_SCAN_RESULTS) == (
        "Cannot read or import scan results: this user has the Basic role, which can list scans but not read "
        "them; it needs the Scan Operator role (or higher) and Can View on the scan."
    )
    assert sentence(info, CAN_START_SCANS) == (
        "Cannot start scans: this user has the Basic role; Start Scan needs the Scan Operator role (or higher) "
        "and Can Execute on the scan."
    )
    assert sentence(info, CAN_EXPORT) == (
        "Can export vulnerability and asset data for the assets tagged Location: Dallas: any role with Can "
        "View on assets may (inferred from the role; only an export job would prove it)."
    )
    assert sentence(info, CAN_SEE_AGENT_GROUPS) == (
        "Agent groups not visible with this key: they need the Scan Manager role or higher, and this user has "
        "the Basic role; the preview says so instead of failing."
    )
    assert info.capability(CAN_EXPORT).usable and not info.capability(CAN_READ_SCAN_RESULTS).usable
    calls = [r.path for r in server.sim.requests]
    assert "/api/v3/access-control/permissions/users/me" in calls


def test_an_administrator_sees_all_assets_without_asking(server):
    with connect(server) as connector:
        info = connector.test_connection()
    assert (info.role_name, info.visibility.describe()) == ("Administrator", "All Assets")
    assert "/api/v3/access-control/permissions/users/me" not in [r.path for r in server.sim.requests]
    assert sentence(info, CAN_READ_SCAN_RESULTS) == (
        "Can read and import scan results (checked on “Web tier - weekly”)."
    )
    assert sentence(info, CAN_START_SCANS).startswith(
        "Can start the 10 scans it may execute"
    )  # not the import


def test_a_refused_permissions_call_says_could_not_be_read_without_failing(server):
    server.sim.set_fault("forbidden", path="/permissions/users/me")
    with connect(server, "scan_operator") as connector:
        info = connector.test_connection()
    assert info.visibility.kind == Visibility.UNKNOWN
    assert info.visibility.describe() == (
        "could not be read (Tenable.io refused the permissions call (HTTP 403))"
    )
    export = info.capability(CAN_EXPORT)
    assert export.status == "inferred" and "which ones could not be read" in export.sentence
    assert info.scan_count == 11 and info.role == 24


@pytest.mark.parametrize(
    ("granted", "kind", "tags"),
    [
        ([], "tags", ()),
        ([{"actions": ["CanScan"], "objects": [{"type": "AllAssets"}]}], "tags", ()),
        ([{"actions": ["CanView"], "objects": [{"type": "AllAssets"}]}], "all", ()),
        (
            [
                {"actions": ["CanView"], "objects": [{"type": "Tag", "name": "Location:Dallas"}]},
                {
                    "actions": ["CAN_VIEW"],
                    "objects": [{"type": "Tag", "name": "Cloud: AWS"}, {"type": "Tag", "uuid": "u-1"}],
                },
            ],
            "tags",
            ("Location: Dallas", "Cloud: AWS", "u-1"),
        ),
    ],
)
def test_visibility_is_read_from_the_permission_configurations(granted, kind, tags):
    visibility = checklist.visibility_from(16, {"permissions_granted": granted})
    assert (visibility.kind, visibility.tags) == (kind, tags)
    export = checklist.capabilities(
        role=16,
        scans=[],
        visibility=visibility,
        probed_scan=None,
        scan_read=None,
        agent_groups=checklist.Probe(ok=False, refused=True, status=403),
    )[3]
    if tags or kind == "all":
        assert export.status == "inferred"
    else:  # no configuration grants Can View: exports would be empty
        assert export.status == "missing" and "Can View on any assets" in export.sentence
        assert visibility.describe() == "No assets (no permission grants Can View)"


def test_a_scan_the_key_may_not_view_is_named(server):
    sim = server.sim
    sim.set_fault("forbidden", path=f"/scans/{sim.scan_id('completed')}/", method="GET")
    with connect(server, "scan_operator") as connector:
        info = connector.test_connection()
    read = info.capability(CAN_READ_SCAN_RESULTS)
    assert read.status == "missing"
    assert read.sentence == (
        "Cannot read or import scan results: this user lacks Can View on “Web tier - weekly”; it needs the "
        "Scan Operator role (or higher) and Can View on the scan."
    )


@pytest.mark.parametrize(("role", "status"), [("administrator", "inferred"), ("basic", "missing")])
def test_no_scans_means_reading_results_is_inferred_from_the_role(server, role, status):
    server.sim.set_fault("no_scans")
    with connect(server, role) as connector:
        info = connector.test_connection()
    assert info.scan_count == 0 and info.capability(CAN_READ_SCAN_RESULTS).status == status
    assert sentence(info, CAN_LIST_SCANS) == (
        "Can list scans, but none is visible. Ensure at least one completed scan exists in your Tenable.io "
        "account and the API key has access to it."
    )
    assert not any(r.path.startswith("/scans/") for r in server.sim.requests)


def test_a_failing_extra_check_is_unknown_not_a_failed_test(server):
    server.sim.set_fault("flap", status=500, path="/agent-groups", times=5)
    with connect(server) as connector:
        info = connector.test_connection()
    agent = info.capability(CAN_SEE_AGENT_GROUPS)
    assert (agent.status, agent.sentence) == (
        "unknown",
        "Could not check agent groups: Tenable.io answered HTTP 500.",
    )
    assert agent.usable and agent.optional


def test_a_session_that_cannot_be_read_leaves_the_role_unknown(server):
    server.sim.set_fault("forbidden", path="/session")
    with connect(server, "scan_manager") as connector:
        info = connector.test_connection()
    assert (info.role, info.role_name, info.username) == (None, None, None)
    assert info.capability(CAN_START_SCANS).status == "unknown"
    assert info.capability(CAN_READ_SCAN_RESULTS).status == "ok"  # proven by the read, role or not
    assert info.visibility.kind == "all"


def test_keys_that_do_not_work_still_fail_the_test(server):
    server.sim.set_fault("revoked_key", path="/session")
    with connect(server) as connector, pytest.raises(ConnectorError) as caught:
        connector.test_connection()
    assert caught.value.kind == "auth"


# -- the drawer's agent groups ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "visible", "groups"),
    [
        (None, True, [("Branch laptops", 2), ("Remote workers", 14)]),
        ("standard", False, None),  # reads the editor, not the group list: the uuids only
        ("scan_operator", False, []),  # cannot read the editor document either
    ],
)
def test_agent_groups_this_key_may_not_read_are_flagged_not_visible(server, role, visible, groups):
    sim = server.sim
    with connect(server, role) as connector:
        details = connector.describe_source(sim.scan_id("agent"))
        network = connector.describe_source(sim.scan_id("completed"))
    assert details.agent_groups_visible is visible and network.agent_groups_visible is True
    if groups is None:
        assert [g.agents_count for g in details.agent_groups] == [None, None]
    else:
        assert [(g.name, g.agents_count) for g in details.agent_groups] == groups
