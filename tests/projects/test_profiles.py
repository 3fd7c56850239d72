"""Settings › Scanners and the scan configuration drawer against the simulator (RELIABILITY W2–W4, W7, H1–H3)."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from integrations import services
from projects.models import ScannerProfile, ScanRun
from projects.profiles.sources import bind_to_choices, list_scans
from tests.conftest import make_project, make_user
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_FORBIDDEN_ACCESS_KEY, SIM_FORBIDDEN_SECRET_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Persona fixtures hash passwords; the default hasher costs ~0.4 s per user on these machines.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


HX = {"HX-Request": "true"}
NO_SCANS = (
    "Ensure at least one completed scan exists in your Tenable.io account and the API key has access to it."
)
BOTH = "Only one of Severity+ / Severity- may be enabled"
REAL_GETADDRINFO = socket.getaddrinfo


# ---------------------------------------------------------------------------------------------------
# Helpers shared with test_schedules.py
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def project(member, viewer):
    return make_project("Payments", members=[member], viewers=[viewer])


@pytest.fixture
def integration(tenable_simulator):
    return make_integration(tenable_simulator.url)


def new_url(project, integration) -> str:
    return f"{reverse('projects:profile_new', args=[project.pk])}?integration={integration.pk}"


def edit_url(profile) -> str:
    return reverse("projects:profile", args=[profile.project_id, profile.pk])


def form_data(sim, **overrides) -> dict:
    """A valid drawer POST; booleans are sent as "on" like a browser, and omitted when False."""
    data = {
        "name": "Web tier",
        "scan_id": sim.scan_id("completed"),
        "meta_data": "owner=payments",
        "scan_tag": "prod",
        "schedule_frequency": "daily",
        "schedule_time": "",
        "schedule_cron": "",
        "schedule_timezone": "UTC",
        "webhook_url": "",
    }
    data.update(overrides)
    return {key: ("on" if value is True else value) for key, value in data.items() if value is not False}


def make_profile(project, integration, scan_id: int, **extra) -> ScannerProfile:
    values = {"name": "Web tier", "meta_data": "owner=payments", "scan_name": "Web tier - weekly"}
    values.update(extra)
    return ScannerProfile.objects.create(project=project, integration=integration, scan_id=scan_id, **values)


def scan_calls(sim, scan_id: int) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.path == f"/scans/{scan_id}")


def list_calls(sim) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.path == "/scans" and not r.query)


def resolve_to(address: str, host: str = "hooks.example.com"):
    """A getaddrinfo that answers `address` for `host` and the real thing for anything else (the simulator)."""

    def fake(name, port, *args, **kwargs):
        if name == host:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 443))]
        return REAL_GETADDRINFO(name, port, *args, **kwargs)

    return fake


def triggers(response) -> list[str]:
    return list(json.loads(response.headers.get("HX-Trigger-After-Swap", "{}")))


# ---------------------------------------------------------------------------------------------------
# Scanners page and Add Scanner
# ---------------------------------------------------------------------------------------------------


def test_scanners_page_lists_profiles_with_their_state(admin_client, project, integration, tenable_simulator):
    make_profile(project, integration, tenable_simulator.sim.scan_id("completed"), scan_tag="prod")
    html = admin_client.get(reverse("projects:scanners", args=[project.pk])).content.decode()
    assert "Web tier" in html and "Web tier - weekly" in html and "Never run" in html
    assert "Scheduler off" in html and "Manual" in html and "Add Scanner" in html
    assert "kdt scan -p Payments -t tenableiovm -b -" in html


def test_scanners_page_shows_the_last_run(admin_client, project, integration, tenable_simulator):
    profile = make_profile(project, integration, tenable_simulator.sim.scan_id("completed"))
    ScanRun.objects.create(project=project, profile=profile, status="failed")
    html = admin_client.get(reverse("projects:scanners", args=[project.pk])).content.decode()
    assert "Failed" in html and "Never run" not in html


def test_scanners_list_fragment_for_the_refresh_event(admin_client, project, integration, tenable_simulator):
    make_profile(project, integration, tenable_simulator.sim.scan_id("completed"))
    url = reverse("projects:scanners", args=[project.pk])
    response = admin_client.get(url, headers={**HX, "HX-Target": "profiles"})
    html = response.content.decode()
    assert "<table" in html and "<html" not in html


def test_add_scanner_offers_infra_and_the_active_connections(admin_client, project, integration):
    make_integration("http://127.0.0.1:9", name="Old container", is_active=False)
    response = admin_client.get(reverse("projects:add_scanner", args=[project.pk]), headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Add Scanner" in html and ">Infra<" in html and "Tenable.io VM" in html and ">Add<" in html
    assert f'value="{integration.pk}"' in html and "Old container" not in html
    assert reverse("projects:profile_new", args=[project.pk]) in html


def test_add_scanner_names_the_scanner_once_and_the_connection_only_when_it_differs(
    admin_client, project, integration
):
    """Issue 12 §8: "Tenable.io VM — connection Tenable.io VM"."""
    named = make_integration("http://127.0.0.1:9", name="Prod tenant")
    html = admin_client.get(reverse("projects:add_scanner", args=[project.pk]), headers=HX).content.decode()
    choices = re.findall(r'<span class="choice-text">(.*?)<span class="small muted">', html, re.S)
    texts = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in choices]
    assert integration.name == "Tenable.io VM" and named.pk
    assert sorted(texts) == ["Tenable.io VM", "Tenable.io VM — Prod tenant"]
    assert "connection Tenable.io VM" not in html


def test_add_scanner_without_an_active_connection_links_to_integrations(admin_client, member, project):
    html = admin_client.get(reverse("projects:add_scanner", args=[project.pk])).content.decode()
    assert "No active Tenable.io VM connection" in html
    assert f"{reverse('integrations:scanners')}?tab=infra" in html
    assert 'type="submit" disabled>Add</button>' in html
    member_client = Client()
    member_client.force_login(member)
    html = member_client.get(reverse("projects:add_scanner", args=[project.pk])).content.decode()
    assert "No active Tenable.io VM connection" in html and "Ask one to connect Tenable.io" in html


def test_new_profile_without_a_connection_goes_back_to_add_scanner(admin_client, project):
    response = admin_client.get(reverse("projects:profile_new", args=[project.pk]))
    assert response.status_code == 302 and response.url == reverse("projects:add_scanner", args=[project.pk])
    inactive = make_integration("http://127.0.0.1:9", name="Off", is_active=False)
    assert admin_client.get(new_url(project, inactive)).status_code == 404


# ---------------------------------------------------------------------------------------------------
# The drawer: Bind to, scan summary, caching
# ---------------------------------------------------------------------------------------------------


def test_drawer_groups_bind_to_by_folder_with_status_and_last_run(admin_client, project, integration):
    response = admin_client.get(new_url(project, integration), headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    for label in ("Profile Name", "Bind to", "Meta Data", "Scan Tag", "Start Scan", "Severity+", "Severity-"):
        assert label in html
    assert "Scheduler" in html and "Webhook" in html
    assert '<optgroup label="My Scans">' in html and '<optgroup label="Production">' in html
    assert '<optgroup label="Branch offices">' in html
    assert html.index('label="My Scans"') < html.index('label="Branch offices"')
    assert "Web tier - weekly — Completed · last run" in html
    assert "New scan (never run) — Empty · never run" in html
    assert "Branch laptops (agents) — Completed" in html and "agent scan" in html
    assert "Old lab scan" not in html  # in Tenable's trash
    assert 'hx-get="' + reverse("projects:scan_summary", args=[project.pk]) in html
    assert 'hx-trigger="change"' in html and 'hx-target="#scan-summary"' in html
    assert 'hx-include="input[name=integration]"' in html


@pytest.mark.parametrize("fault", [None, "all", "trash"])
def test_test_connection_counts_exactly_the_scans_bind_to_lists(
    admin_client, project, integration, tenable_simulator, fault
):
    """Issue 12 §7: a server that ignores ?folder_id= must not empty Bind to while Test Connection counts scans."""
    sim = tenable_simulator.sim
    if fault:
        sim.set_fault("ignore_folder_filter", mode=fault)
    counted = services.test_connection(integration).details["scan_count"]
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    options = re.findall(r'<option value="(\d+)"', html)
    choices = [scan_id for _, group in bind_to_choices(list_scans(integration)) for scan_id, _ in group]
    assert counted == len(options) == len(choices) == (11 if fault is None else 12)
    assert (str(sim.scan_id("trash")) in options) is (fault is not None)  # hidden only when folders add up
    if fault:
        assert '<optgroup label="Other scans">' in html and 'label="Trash"' not in html


def test_drawer_is_also_a_full_page(admin_client, project, integration):
    html = admin_client.get(new_url(project, integration)).content.decode()
    assert "<html" in html and "page-drawer" in html and "Bind to" in html


def test_summary_shows_targets_tags_policy_schedule_and_hosts(
    admin_client, project, integration, tenable_simulator
):
    scan_id = tenable_simulator.sim.scan_id("completed")
    url = reverse("projects:scan_summary", args=[project.pk])
    html = admin_client.get(
        url, {"integration": integration.pk, "scan_id": scan_id}, headers=HX
    ).content.decode()
    assert 'class="scan-summary"' in html and 'class="kv"' in html
    assert f'<span class="chip">10.{scan_id % 200}.0.0/24</span>' in html
    assert '<span class="chip chip-tag">Location: Dallas</span>' in html
    assert "Environment: Production" in html and "Basic Network Scan" in html and "US Cloud Scanner" in html
    assert "Not an agent scan" in html and "Completed" in html and "Hosts" in html
    assert 'id="tenable-schedule"' in html and 'hx-swap-oob="true"' in html


def test_summary_of_an_agent_scan_lists_agent_groups_with_counts(
    admin_client, project, integration, tenable_simulator
):
    url = reverse("projects:scan_summary", args=[project.pk])
    params = {"integration": integration.pk, "scan_id": tenable_simulator.sim.scan_id("agent")}
    html = admin_client.get(url, params, headers=HX).content.decode()
    assert (
        "Branch laptops" in html and "2 agents" in html and "Remote workers" in html and "14 agents" in html
    )
    assert "Basic Agent Scan" in html and "agent scan" in html


def test_summary_shows_the_tenable_schedule_beside_the_scheduler(
    admin_client, project, integration, tenable_simulator
):
    url = reverse("projects:scan_summary", args=[project.pk])
    params = {"integration": integration.pk, "scan_id": tenable_simulator.sim.scan_id("scheduled")}
    html = admin_client.get(url, params, headers=HX).content.decode()
    assert html.count("Weekly on Mon at 01:00 (US/Central)") == 2  # in the summary and out of band


@pytest.mark.parametrize("fault", [None, "all"])
def test_summary_names_the_folder_the_scans_details_report(
    admin_client, project, integration, tenable_simulator, fault
):
    """Issue 12 §7: the folder comes from the scan's details, even when the listing's bookkeeping cannot say."""
    sim = tenable_simulator.sim
    if fault:
        sim.set_fault("ignore_folder_filter", mode=fault)
    url = reverse("projects:scan_summary", args=[project.pk])
    html = admin_client.get(
        url, {"integration": integration.pk, "scan_id": sim.scan_id("completed")}, headers=HX
    ).content.decode()
    assert "<dt>Folder</dt><dd>My Scans" in html
    trash = admin_client.get(
        url, {"integration": integration.pk, "scan_id": sim.scan_id("trash")}, headers=HX
    ).content.decode()
    assert 'Trash <span class="badge badge-warning">In Tenable.io\'s Trash' in trash


def test_summary_of_a_never_run_scan_says_so(admin_client, project, integration, tenable_simulator):
    url = reverse("projects:scan_summary", args=[project.pk])
    params = {"integration": integration.pk, "scan_id": tenable_simulator.sim.scan_id("never_run")}
    html = admin_client.get(url, params, headers=HX).content.decode()
    assert "Never run" in html


def test_summary_and_scan_list_are_cached_so_browsing_spares_the_rate_limit(
    admin_client, project, integration, tenable_simulator
):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    url = reverse("projects:scan_summary", args=[project.pk])
    for _ in range(3):
        admin_client.get(url, {"integration": integration.pk, "scan_id": scan_id}, headers=HX)
    assert scan_calls(sim, scan_id) == 1
    admin_client.get(new_url(project, integration), headers=HX)
    before = list_calls(sim)
    admin_client.get(new_url(project, integration), headers=HX)
    admin_client.get(new_url(project, integration), headers=HX)
    assert list_calls(sim) == before


def test_summary_refuses_connections_the_project_cannot_use(admin_client, project):
    other = make_integration("http://127.0.0.1:9", name="Off", is_active=False)
    url = reverse("projects:scan_summary", args=[project.pk])
    assert admin_client.get(url, {"integration": other.pk, "scan_id": 1}).status_code == 404
    assert admin_client.get(url, {"integration": "x", "scan_id": 1}).status_code == 404


# ---------------------------------------------------------------------------------------------------
# Saving: rules and validation (W4, W7)
# ---------------------------------------------------------------------------------------------------


def test_create_saves_the_binding_and_closes_the_drawer(
    admin_client, admin_user, project, integration, tenable_simulator
):
    sim = tenable_simulator.sim
    response = admin_client.post(new_url(project, integration), form_data(sim), headers=HX)
    assert response.status_code == 200
    assert triggers(response) == ["profilesChanged", "closeDrawer"]
    assert response["HX-Retarget"] == "#messages"
    profile = ScannerProfile.objects.get()
    assert profile.project == project and profile.integration == integration
    assert profile.scan_id == sim.scan_id("completed") and profile.scan_name == "Web tier - weekly"
    assert profile.scan_schedule_uuid.startswith("template-")
    assert profile.severity_shift == 0 and not profile.scan_missing and profile.periodic_task is None
    assert "Scanner profile Web tier added." in response.content.decode()
    event = AuditEvent.objects.get(action="profile.created")
    assert event.actor == admin_user and event.details["connection"] == integration.name


def test_create_without_htmx_redirects_to_the_scanners_page(
    member_client, project, integration, tenable_simulator
):
    response = member_client.post(new_url(project, integration), form_data(tenable_simulator.sim))
    assert response.status_code == 302 and response.url == reverse("projects:scanners", args=[project.pk])
    assert ScannerProfile.objects.filter(project=project).count() == 1


def test_required_fields_are_named_inline(admin_client, project, integration, tenable_simulator):
    data = form_data(tenable_simulator.sim, name="", scan_id="", meta_data="")
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="drawer-title"' in html
    assert html.count("This field is required.") == 2 and "Choose the Tenable.io scan to bind to." in html
    assert not ScannerProfile.objects.exists()


@pytest.mark.parametrize("kind", ["unknown", "trash"])
def test_bind_to_a_scan_this_key_cannot_see_is_refused(
    admin_client, project, integration, tenable_simulator, kind
):
    sim = tenable_simulator.sim
    scan_id = 999_999 if kind == "unknown" else sim.scan_id("trash")
    response = admin_client.post(new_url(project, integration), form_data(sim, scan_id=scan_id), headers=HX)
    assert (
        "This scan is not among the scans this connection can see in Tenable.io" in response.content.decode()
    )
    assert not ScannerProfile.objects.exists()


def test_both_severities_are_refused_and_nothing_changes(
    admin_client, project, integration, tenable_simulator
):
    sim = tenable_simulator.sim
    response = admin_client.post(
        new_url(project, integration), form_data(sim, severity_plus=True, severity_minus=True), headers=HX
    )
    assert BOTH in response.content.decode() and not ScannerProfile.objects.exists()
    profile = make_profile(project, integration, sim.scan_id("completed"), severity_shift=1)
    response = admin_client.post(
        edit_url(profile), form_data(sim, name="Renamed", severity_plus=True, severity_minus=True), headers=HX
    )
    assert BOTH in response.content.decode()
    profile.refresh_from_db()
    assert profile.name == "Web tier" and profile.severity_shift == 1


@pytest.mark.parametrize(("switch", "shift"), [("severity_plus", 1), ("severity_minus", -1), (None, 0)])
def test_one_severity_switch_sets_the_shift(
    admin_client, project, integration, tenable_simulator, switch, shift
):
    data = form_data(tenable_simulator.sim, **({switch: True} if switch else {}))
    admin_client.post(new_url(project, integration), data, headers=HX)
    assert ScannerProfile.objects.get().severity_shift == shift


def test_the_database_cannot_hold_an_out_of_range_shift(project, integration):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_profile(project, integration, 101, severity_shift=2)


def test_extra_posted_fields_are_ignored(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    other_project = make_project("Other")
    other_integration = make_integration(tenable_simulator.url, name="Other container")
    data = form_data(
        sim,
        project=other_project.pk,
        integration=other_integration.pk,
        scan_missing=True,
        periodic_task=12345,
        webhook_secret="whsec_chosen_by_attacker",
        severity_shift=5,
        scan_name="Spoofed",
        scan_schedule_uuid="spoofed",
    )
    admin_client.post(new_url(project, integration), data, headers=HX)
    profile = ScannerProfile.objects.get()
    assert profile.project == project and profile.integration == integration
    assert not profile.scan_missing and profile.periodic_task_id is None and profile.severity_shift == 0
    assert profile.scan_name == "Web tier - weekly" and profile.scan_schedule_uuid != "spoofed"
    assert profile.webhook_secret == ""
    # On edit, the connection cannot be swapped either.
    admin_client.post(edit_url(profile), {**data, "integration": other_integration.pk}, headers=HX)
    profile.refresh_from_db()
    assert profile.integration == integration and profile.project == project


def test_profile_names_are_unique_within_a_project(admin_client, project, integration, tenable_simulator):
    make_profile(project, integration, tenable_simulator.sim.scan_id("completed"), name="Web tier")
    response = admin_client.post(new_url(project, integration), form_data(tenable_simulator.sim), headers=HX)
    assert "already has a scanner profile with this name" in response.content.decode()
    assert ScannerProfile.objects.count() == 1


def test_edit_reopens_the_drawer_with_the_saved_values(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    admin_client.post(
        new_url(project, integration),
        form_data(
            sim, scan_id=sim.scan_id("agent"), severity_minus=True, start_scan=False, scan_tag="laptops"
        ),
        headers=HX,
    )
    profile = ScannerProfile.objects.get()
    html = admin_client.get(edit_url(profile), headers=HX).content.decode()
    assert 'value="Web tier"' in html and 'value="owner=payments"' in html and 'value="laptops"' in html
    assert f'<option value="{sim.scan_id("agent")}" selected>' in html
    assert 'id="id_severity_minus" checked>' in html and 'id="id_severity_plus" checked>' not in html
    assert "Branch laptops" in html and "2 agents" in html  # the bound scan's summary is shown at once
    assert "Delete" in html


def test_edit_updates_and_audits_field_names_only(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    profile = make_profile(project, integration, sim.scan_id("completed"))
    data = form_data(sim, meta_data="owner=platform", severity_plus=True)
    response = admin_client.post(edit_url(profile), data, headers=HX)
    assert response.status_code == 200 and "closeDrawer" in triggers(response)
    profile.refresh_from_db()
    assert profile.meta_data == "owner=platform" and profile.severity_shift == 1
    event = AuditEvent.objects.get(action="profile.changed")
    assert event.details == {"fields": ["meta_data", "scan_tag", "severity_shift"]}


def test_delete_removes_the_profile(admin_client, project, integration, tenable_simulator):
    profile = make_profile(project, integration, tenable_simulator.sim.scan_id("completed"))
    url = reverse("projects:profile_delete", args=[project.pk, profile.pk])
    assert "Delete scanner profile Web tier?" in admin_client.get(url).content.decode()
    response = admin_client.post(url, headers=HX)
    assert triggers(response) == ["profilesChanged", "closeDrawer"]
    assert not ScannerProfile.objects.exists()
    assert AuditEvent.objects.filter(action="profile.deleted", details__profile="Web tier").exists()


def test_start_scan_requests_a_run_when_saved(
    admin_client, admin_user, project, integration, tenable_simulator
):
    response = admin_client.post(
        new_url(project, integration), form_data(tenable_simulator.sim, start_scan=True), headers=HX
    )
    run = ScanRun.objects.get()
    assert run.trigger == "manual" and run.requested_by == admin_user and run.status == "queued"
    assert f"run #{run.pk} queued" in response.content.decode()
    profile = ScannerProfile.objects.get()
    response = admin_client.post(
        edit_url(profile), form_data(tenable_simulator.sim, start_scan=True), headers=HX
    )
    assert "already in progress" in response.content.decode() and ScanRun.objects.count() == 1


# ---------------------------------------------------------------------------------------------------
# Empty and error states
# ---------------------------------------------------------------------------------------------------


def test_no_scans_shows_the_seed_resolution(admin_client, project, integration, tenable_simulator):
    tenable_simulator.sim.set_fault("no_scans")
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    assert "No scans available in Bind to" in html and NO_SCANS in html


def test_failing_connection_shows_the_reason_and_the_integration_link(
    admin_client, project, tenable_simulator
):
    integration = make_integration(
        tenable_simulator.url,
        access_key="wrong-access",
        secret_key="wrong-secret",
        last_test_ok=False,
        last_test_message="Connection refused earlier today.",
    )
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    assert "Connection failing" in html and "Invalid User Key or Secret Key" in html
    assert "Connection refused earlier today." in html
    assert f"{reverse('integrations:scanners')}?tab=infra&amp;open={integration.pk}" in html
    response = admin_client.post(new_url(project, integration), form_data(tenable_simulator.sim), headers=HX)
    assert "Cannot check the scans in Tenable.io: Invalid User Key" in response.content.decode()
    assert not ScannerProfile.objects.exists()


def test_forbidden_key_says_permission_denied(member_client, project, tenable_simulator):
    integration = make_integration(
        tenable_simulator.url, access_key=SIM_FORBIDDEN_ACCESS_KEY, secret_key=SIM_FORBIDDEN_SECRET_KEY
    )
    html = member_client.get(new_url(project, integration), headers=HX).content.decode()
    assert "Permission denied" in html and "Ask an admin to check" in html
    assert "open=" not in html  # members do not get a link to admin-only settings


def test_missing_bound_scan_shows_a_warning_and_is_remembered(
    admin_client, project, integration, tenable_simulator
):
    profile = make_profile(project, integration, 424_242, scan_name="Deleted scan")
    html = admin_client.get(edit_url(profile), headers=HX).content.decode()
    assert "The bound scan is missing in Tenable.io" in html and "Deleted scan (#424242)" in html
    profile.refresh_from_db()
    assert profile.scan_missing
    page = admin_client.get(reverse("projects:scanners", args=[project.pk])).content.decode()
    assert "Scan missing" in page and "no longer exists in Tenable.io" in page


def test_scanners_page_verifies_bindings_on_request(admin_client, project, integration, tenable_simulator):
    profile = make_profile(project, integration, 424_242)
    url = reverse("projects:scanners", args=[project.pk])
    admin_client.get(url, {"verify": "1"}, headers={**HX, "HX-Target": "profiles"})
    profile.refresh_from_db()
    assert profile.scan_missing
    ScannerProfile.objects.filter(pk=profile.pk).update(scan_id=tenable_simulator.sim.scan_id("completed"))
    from django.core.cache import cache

    cache.clear()
    admin_client.get(url, {"verify": "1"}, headers={**HX, "HX-Target": "profiles"})
    profile.refresh_from_db()
    assert not profile.scan_missing


def test_summary_of_a_deleted_scan_marks_the_bound_profiles(admin_client, project, integration):
    profile = make_profile(project, integration, 424_242)
    url = reverse("projects:scan_summary", args=[project.pk])
    html = admin_client.get(url, {"integration": integration.pk, "scan_id": 424_242}).content.decode()
    assert "This scan no longer exists in Tenable.io" in html
    profile.refresh_from_db()
    assert profile.scan_missing


def test_many_scans_get_a_search_box(admin_client, project, integration, tenable_simulator):
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    assert "data-scan-search" not in html
    for n in range(6):
        tenable_simulator.sim.add_scan(f"Segment {n}")
    from django.core.cache import cache

    cache.clear()
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    assert 'data-scan-search="id_scan_id"' in html and "Search 17 scans" in html


# ---------------------------------------------------------------------------------------------------
# Webhook destinations (H1–H3) and the signing secret
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://user:pass@hooks.example.com/hook", "user names and passwords"),
        ("ftp://hooks.example.com/hook", "only https"),
        ("http://hooks.example.com/hook", "only https"),
        ("https://hooks.example.com:22/hook", "port 22"),
        ("https://hooks.example.com/a%0d%0aHost:evil", "line breaks"),
    ],
)
def test_webhook_destinations_refused_at_save(
    admin_client, project, integration, tenable_simulator, monkeypatch, url, reason
):
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to("93.184.216.34"))
    response = admin_client.post(
        new_url(project, integration), form_data(tenable_simulator.sim, webhook_url=url), headers=HX
    )
    html = response.content.decode()
    assert "Webhook destination not allowed" in html and reason in html
    assert not ScannerProfile.objects.exists()


@pytest.mark.parametrize(
    "address", ["10.0.0.5", "192.168.1.1", "100.64.0.1", "169.254.169.254", "fd00:ec2::254"]
)
def test_webhook_host_resolving_to_a_private_address_is_refused(
    admin_client, project, integration, tenable_simulator, monkeypatch, address
):
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to(address))
    data = form_data(tenable_simulator.sim, webhook_url="https://hooks.example.com/tenable")
    html = admin_client.post(new_url(project, integration), data, headers=HX).content.decode()
    assert f"hooks.example.com resolves to {address}" in html
    assert not ScannerProfile.objects.exists()


def test_allowed_private_destination_is_accepted(
    admin_client, project, integration, tenable_simulator, settings
):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1/32"]
    settings.WEBHOOK_ALLOW_HTTP = True
    data = form_data(tenable_simulator.sim, webhook_url="http://127.0.0.1:8080/receiver")
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    assert "closeDrawer" in triggers(response)
    assert ScannerProfile.objects.get().webhook_url == "http://127.0.0.1:8080/receiver"


def test_webhook_secret_is_shown_once_and_never_again(
    admin_client, project, integration, tenable_simulator, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to("93.184.216.34"))
    data = form_data(tenable_simulator.sim, webhook_url="https://hooks.example.com/tenable")
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    profile = ScannerProfile.objects.get()
    secret = profile.webhook_secret
    assert secret.startswith("whsec_")
    assert secret in response.content.decode() and "shown only once" in response.content.decode()
    for url in (reverse("projects:scanners", args=[project.pk]), edit_url(profile)):
        for headers in ({}, HX):
            html = admin_client.get(url, headers=headers).content.decode()
            assert secret not in html
    assert "A signing secret is set for this webhook" in admin_client.get(edit_url(profile)).content.decode()
    for event in AuditEvent.objects.all():
        assert secret not in json.dumps(event.details) and "hooks.example.com" not in json.dumps(
            event.details
        )
    assert secret not in caplog.text
    assert all(secret not in str(value) for value in admin_client.session.values())


def test_without_htmx_the_secret_is_shown_on_the_next_page_only(
    admin_client, project, integration, tenable_simulator, monkeypatch
):
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to("93.184.216.34"))
    data = form_data(tenable_simulator.sim, webhook_url="https://hooks.example.com/tenable")
    response = admin_client.post(new_url(project, integration), data)
    secret = ScannerProfile.objects.get().webhook_secret
    assert all(secret not in str(value) for value in admin_client.session.values())
    assert secret in admin_client.get(response.url).content.decode()
    assert secret not in admin_client.get(response.url).content.decode()


def test_regenerating_the_secret_keeps_the_old_one_for_a_grace_period(
    admin_client, project, integration, tenable_simulator, monkeypatch
):
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to("93.184.216.34"))
    data = form_data(tenable_simulator.sim, webhook_url="https://hooks.example.com/tenable")
    admin_client.post(new_url(project, integration), data, headers=HX)
    profile = ScannerProfile.objects.get()
    first = profile.webhook_secret
    html = admin_client.post(edit_url(profile), data, headers=HX).content.decode()
    assert "whsec_" not in html  # a plain save keeps the secret and shows nothing
    html = admin_client.post(
        edit_url(profile), {**data, "regenerate_secret": "on"}, headers=HX
    ).content.decode()
    profile.refresh_from_db()
    assert profile.webhook_secret != first and profile.webhook_previous_secret == first
    assert profile.webhook_previous_secret_expires is not None
    assert profile.webhook_secret in html and first not in html


def test_removing_the_webhook_forgets_its_secret(
    admin_client, project, integration, tenable_simulator, monkeypatch
):
    monkeypatch.setattr(socket, "getaddrinfo", resolve_to("93.184.216.34"))
    data = form_data(tenable_simulator.sim, webhook_url="https://hooks.example.com/tenable")
    admin_client.post(new_url(project, integration), data, headers=HX)
    profile = ScannerProfile.objects.get()
    admin_client.post(edit_url(profile), {**data, "webhook_url": ""}, headers=HX)
    profile.refresh_from_db()
    assert profile.webhook_url == "" and profile.webhook_secret == ""


# ---------------------------------------------------------------------------------------------------
# Who may do what (W2, W3)
# ---------------------------------------------------------------------------------------------------


def _mutations(project, profile, integration, sim) -> list[tuple[str, str, dict]]:
    data = form_data(sim, name="Changed")
    return [
        ("post", new_url(project, integration), data),
        ("post", edit_url(profile), data),
        ("post", reverse("projects:profile_delete", args=[project.pk, profile.pk]), {}),
        ("get", reverse("projects:add_scanner", args=[project.pk]), {}),
        ("get", new_url(project, integration), {}),
        ("get", reverse("projects:profile_delete", args=[project.pk, profile.pk]), {}),
    ]


@pytest.mark.parametrize(("persona", "status"), [("viewer", 403), ("outsider", 404), ("anonymous", 302)])
def test_only_editors_change_profiles(
    client, project, integration, tenable_simulator, outsider, persona, status, caplog
):
    sim = tenable_simulator.sim
    profile = make_profile(project, integration, sim.scan_id("completed"))
    if persona == "viewer":
        client.force_login(project.memberships.get(role="viewer").user)
    elif persona == "outsider":
        client.force_login(outsider)
    before = list(ScannerProfile.objects.values())
    for method, url, data in _mutations(project, profile, integration, sim):
        response = getattr(client, method)(url, data)
        assert response.status_code == status, (persona, method, url)
        if persona == "anonymous":
            assert "/login/" in response.url
            htmx = getattr(client, method)(url, data, headers=HX)
            assert htmx.status_code == 200 and "/login/" in htmx["HX-Redirect"]
    assert list(ScannerProfile.objects.values()) == before
    assert not AuditEvent.objects.exists()
    if persona == "viewer":
        assert "denied user=" in caplog.text


def test_a_global_viewer_who_is_a_project_member_is_still_read_only(project, integration, tenable_simulator):
    viewer_member = make_user("vm", "viewer")
    project.memberships.create(user=viewer_member, role="member")
    client = Client()
    client.force_login(viewer_member)
    response = client.post(new_url(project, integration), form_data(tenable_simulator.sim))
    assert response.status_code == 403 and not ScannerProfile.objects.exists()


def test_viewers_see_a_read_only_drawer_and_no_edit_buttons(
    viewer_client, project, integration, tenable_simulator
):
    profile = make_profile(project, integration, tenable_simulator.sim.scan_id("completed"))
    page = viewer_client.get(reverse("projects:scanners", args=[project.pk])).content.decode()
    assert "Add Scanner" not in page and "View Web tier" in page and "Edit Web tier" not in page
    html = viewer_client.get(edit_url(profile), headers=HX).content.decode()
    assert "read-only" in html and 'type="submit"' not in html and "Delete" not in html
    assert 'name="name" value="Web tier" maxlength="100" required disabled' in html or (
        'id="id_name"' in html and "disabled" in html
    )


def test_other_projects_profiles_answer_404(admin_user, member, tenable_simulator):
    admin_client, member_client = Client(), Client()
    admin_client.force_login(admin_user)
    member_client.force_login(member)
    sim = tenable_simulator.sim
    mine = make_project("Mine", members=[member])
    theirs = make_project("Theirs")
    integration = make_integration(tenable_simulator.url)
    secret_profile = make_profile(theirs, integration, sim.scan_id("completed"), name="SENTINEL-B")
    urls = [
        reverse("projects:profile", args=[mine.pk, secret_profile.pk]),
        reverse("projects:profile_delete", args=[mine.pk, secret_profile.pk]),
    ]
    for client in (admin_client, member_client):
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url, form_data(sim) if method == "post" else None)
                assert response.status_code == 404
                assert "SENTINEL-B" not in response.content.decode()
    # A member of Mine cannot reach Theirs at all.
    for url in (
        reverse("projects:scanners", args=[theirs.pk]),
        reverse("projects:profile", args=[theirs.pk, secret_profile.pk]),
        reverse("projects:scan_summary", args=[theirs.pk]) + f"?integration={integration.pk}&scan_id=101",
    ):
        assert member_client.get(url).status_code == 404
    assert ScannerProfile.objects.filter(name="SENTINEL-B").exists()
