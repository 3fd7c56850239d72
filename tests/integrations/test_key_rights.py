"""Permission-aware Test Connection (issue 15): who and which role, what the key may view, the checklist of what it
can do, stored on the connection for the rest of the product, and least-privilege advice."""

from __future__ import annotations

import html
import time

import pytest
from django.urls import reverse

from integrations import services
from integrations.connectors.base import (
    CAN_EXPORT,
    CAN_LIST_SCANS,
    CAN_READ_SCAN_RESULTS,
    CAN_SEE_AGENT_GROUPS,
    CAN_START_SCANS,
    Capability,
)
from integrations.models import Integration
from integrations.rights import advice, from_details, profile_warning, to_details
from projects.models import Project, ScannerProfile
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ROLE_KEYS

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
ORDER = [CAN_LIST_SCANS, CAN_READ_SCAN_RESULTS, CAN_START_SCANS, CAN_EXPORT, CAN_SEE_AGENT_GROUPS]
STATUS_WORDS = {
    "ok": "Yes",
    "missing": "Missing",
    "inferred": "Inferred from the role",
    "unknown": "Not checked",
}


def _panel(client, url: str, role: str) -> str:
    access, secret = SIM_ROLE_KEYS[role]
    form = {"name": "Tenable.io VM", "access_key": access, "secret_key": secret, "api_url": url}
    response = client.post(reverse("integrations:test_new", args=["tenableiovm"]), form, headers=HX)
    return html.unescape(response.content.decode())


def _statuses(page: str) -> list[str]:
    return [word for chunk in page.split('class="check-status">')[1:] for word in [chunk.split("<", 1)[0]]]


# (role, role name, username, may view, checklist statuses in ORDER) — the simulator's roles table.
ROLES = [
    ("basic", "Basic", "vm-readonly@example.com", "Location: Dallas", ["ok", "missing", "missing", "inferred", "missing"]),
    ("scan_operator", "Scan Operator", "scan-operator@example.com", "All Assets", ["ok", "ok", "inferred", "inferred", "missing"]),
    ("standard", "Standard", "standard-user@example.com", "All Assets", ["ok", "ok", "inferred", "inferred", "missing"]),
    ("scan_manager", "Scan Manager", "scan-manager@example.com", "All Assets", ["ok", "ok", "inferred", "inferred", "ok"]),
    ("administrator", "Administrator", "admin@example.com", "All Assets", ["ok", "ok", "inferred", "inferred", "ok"]),
]  # fmt: skip


@pytest.mark.parametrize(("role", "name", "username", "view", "statuses"), ROLES)
def test_the_panel_says_who_which_role_what_it_may_view_and_can_do(
    admin_client, tenable_simulator, role, name, username, view, statuses
):
    page = _panel(admin_client, tenable_simulator.url, role)
    assert "Connection successful" in page
    assert f"Connected as {username} (container Example Corp), {name} role; 11 scans visible." in page
    assert f"<strong>{name}</strong>" in page and f"<dt>May view</dt><dd>{view}</dd>" in page
    assert _statuses(page) == [STATUS_WORDS[s] for s in statuses]
    for label in (
        "List scans",
        "Read and import scan results",
        "Start scans",
        "Bulk vulnerability and asset exports",
        "Agent-group details",
    ):
        assert label in page
    assert page.count("(optional)") == 2  # start scans, agent groups


def test_a_basic_key_is_told_in_place_what_is_missing_and_why(admin_client, tenable_simulator):
    page = _panel(admin_client, tenable_simulator.url, "basic")
    assert (
        "Cannot read or import scan results: this user has the Basic role, which can list scans but not read "
        "them; it needs the Scan Operator role (or higher) and Can View on the scan." in page
    )
    assert "(inferred from the role; only an export job would prove it)" in page
    assert tenable_simulator.sim.export_jobs_created == 0  # nothing was created to prove it


def test_a_refused_permissions_call_reads_could_not_be_read_and_the_test_still_passes(
    admin_client, tenable_simulator
):
    tenable_simulator.sim.set_fault("forbidden", path="/permissions/users/me")
    page = _panel(admin_client, tenable_simulator.url, "scan_operator")
    assert "Connection successful" in page
    assert (
        "<dt>May view</dt><dd>could not be read (Tenable.io refused the permissions call (HTTP 403))" in page
    )


def test_the_checklist_is_stored_on_the_connection_for_the_rest_of_the_product(
    admin_client, tenable_simulator
):
    access, secret = SIM_ROLE_KEYS["basic"]
    integration = make_integration(tenable_simulator.url, access, secret)
    assert integration.capabilities == {}  # never tested: nothing known, nothing hidden
    admin_client.post(
        reverse("integrations:test", args=[integration.pk]), {"api_url": tenable_simulator.url}, headers=HX
    )
    integration.refresh_from_db()
    details = integration.last_test_details
    assert (details["role"], details["role_name"]) == (16, "Basic")
    assert details["visibility"] == {"kind": "tags", "tags": ["Location: Dallas"], "reason": ""}
    capabilities = integration.capabilities
    assert list(capabilities) == ORDER
    assert all(isinstance(c, Capability) for c in capabilities.values())
    assert not capabilities[CAN_READ_SCAN_RESULTS].usable and capabilities[CAN_EXPORT].usable
    assert integration.key_info.visibility.describe() == "Location: Dallas"
    # Asking costs no call to Tenable.
    calls = len(tenable_simulator.sim.requests)
    assert Integration.objects.get(pk=integration.pk).capabilities[CAN_START_SCANS].status == "missing"
    assert len(tenable_simulator.sim.requests) == calls


def test_a_failing_connection_claims_no_capability(tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    Integration.objects.filter(pk=integration.pk).update(
        last_test_ok=False, last_test_details=services.test_connection(integration).details
    )
    integration.refresh_from_db()
    assert integration.capabilities == {} and integration.key_info is None


def test_the_drawer_shows_the_stored_checklist_without_calling_tenable(admin_client, tenable_simulator):
    access, secret = SIM_ROLE_KEYS["basic"]
    integration = make_integration(tenable_simulator.url, access, secret)
    admin_client.post(
        reverse("integrations:test", args=[integration.pk]), {"api_url": tenable_simulator.url}, headers=HX
    )
    tenable_simulator.sim.clear_requests()
    page = html.unescape(
        admin_client.get(reverse("integrations:settings", args=[integration.pk]), headers=HX).content.decode()
    )
    assert "Last tested just now" in page and "What it can do" in page and "Location: Dallas" in page
    assert tenable_simulator.sim.requests == []


def test_the_card_names_the_role_and_what_the_key_may_view(admin_client, tenable_simulator):
    access, secret = SIM_ROLE_KEYS["basic"]
    integration = make_integration(tenable_simulator.url, access, secret)
    admin_client.post(
        reverse("integrations:test", args=[integration.pk]), {"api_url": tenable_simulator.url}, headers=HX
    )
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "Basic key · may view Location: Dallas" in page


def test_details_round_trip_and_older_rows_are_read_without_a_checklist(tenable_simulator):
    result = services.test_connection(make_integration(tenable_simulator.url))
    assert from_details(to_details(result.info)) == result.info
    old = from_details({"username": "u", "container": "c", "scan_count": 3})
    assert old.capabilities == () and old.role is None
    assert from_details({"kind": "auth", "status": 401}) is None and from_details({}) is None


def test_test_connection_stays_within_its_interactive_budget(admin_client, tenable_simulator, settings):
    """A check that hangs (here the agent-group list, the last one) cannot hold the request past the budget."""
    settings.TENABLE_TIMEOUT = (1.0, 5.0)
    settings.TENABLE_INTERACTIVE_BUDGET = 2.0
    tenable_simulator.sim.set_fault("slow", path="/agent-groups", seconds=4)
    started = time.monotonic()
    page = _panel(admin_client, tenable_simulator.url, "administrator")
    elapsed = time.monotonic() - started
    assert elapsed < 3.5
    assert "Connection failed" in page and "did not respond within" in page


# -- least-privilege advice ------------------------------------------------------------------------------------


def _info(role: str, server):
    access, secret = SIM_ROLE_KEYS[role]
    return services.test_connection(make_integration(server.url, access, secret, name=role)).info


def test_an_administrator_key_for_export_profiles_is_told_a_basic_key_is_enough(tenable_simulator):
    info = _info("administrator", tenable_simulator)
    found = advice(info, {CAN_EXPORT: ["“Nightly” (Payments)"]})
    assert [(a.kind, a.sentence) for a in found] == [
        ("more", "Administrator: a Basic key with Can View is enough for the export profiles in use.")
    ]
    assert advice(info, {CAN_READ_SCAN_RESULTS: ["“Weekly” (Payments)"]})[0].sentence == (
        "Administrator: a Scan Operator key with Can View on the bound scans is enough for the scan profiles in use."
    )
    with_start = {CAN_READ_SCAN_RESULTS: ["a"], CAN_START_SCANS: ["a"]}
    assert "Can Execute on the bound scans" in advice(info, with_start)[0].sentence
    assert advice(info, {}) == [] and advice(None, {CAN_EXPORT: ["x"]}) == []


def test_a_basic_key_under_a_scan_profile_is_warned_before_the_run_fails(tenable_simulator):
    info = _info("basic", tenable_simulator)
    found = advice(info, {CAN_READ_SCAN_RESULTS: ["“Weekly” (Payments)"], CAN_EXPORT: ["“Nightly” (Ops)"]})
    assert [a.kind for a in found] == ["less"]
    assert found[0].sentence.startswith(
        "Profile “Weekly” (Payments) needs what this key cannot do and will fail: Cannot read or import scan results"
    )
    assert advice(info, {CAN_EXPORT: ["“Nightly” (Ops)"]}) == []  # Basic is the least: nothing to advise
    assert profile_warning(info, [CAN_READ_SCAN_RESULTS]).startswith("Cannot read or import scan results")
    assert profile_warning(info, [CAN_EXPORT]) == "" and profile_warning(None, [CAN_EXPORT]) == ""


def test_the_card_and_panel_advise_from_the_profiles_bound_to_the_connection(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    project = Project.objects.create(name="Payments")
    ScannerProfile.objects.create(
        project=project, integration=integration, name="Weekly", scan_id=1, meta_data="m", start_scan=True
    )
    response = admin_client.post(
        reverse("integrations:test", args=[integration.pk]), {"api_url": tenable_simulator.url}, headers=HX
    )
    enough = (
        "Administrator: a Scan Operator key with Can Execute on the bound scans is enough for the scan profiles "
        "in use."
    )
    assert enough in response.content.decode()
    assert enough in admin_client.get(reverse("integrations:scanners")).content.decode()
    # The same connection on a Basic key: the card warns that the profile will fail.
    access, secret = SIM_ROLE_KEYS["basic"]
    Integration.objects.filter(pk=integration.pk).update(
        last_test_details=services.test_connection(integration, access_key=access, secret_key=secret).details
    )
    page = html.unescape(admin_client.get(reverse("integrations:scanners")).content.decode())
    assert "Not enough for the profiles in use" in page
    assert "Profile “Weekly” (Payments) needs what this key cannot do and will fail: Cannot read" in page
