"""Profiles bound to "Vulnerability data" (issue 14): Bind to, the scope summary, the sync settings, the rules the
database keeps, the profile list, and a scan binding that tells a Basic key which role it lacks."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from projects.choices import RunStatus
from projects.models import ScannerProfile, ScanRun
from projects.runs.services import execute_run, sweep_stale_runs
from tests.integrations.conftest import make_integration
from tests.projects.test_profiles import HX, edit_url, form_data, new_url
from tests.tenable_fixtures import SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(member):
    from tests.conftest import make_project

    return make_project("Payments", members=[member])


@pytest.fixture
def integration(tenable_simulator):
    return make_integration(tenable_simulator.url)


def dallas(sim) -> str:
    return next(
        u for u, t in sim.tag_values.items() if (t["category_name"], t["value"]) == ("Location", "Dallas")
    )


def export_data(sim, scope: str = "all", **overrides) -> dict:
    data = form_data(sim, scan_id=f"scope:{scope}", name="Everything", **overrides)
    data.setdefault("sync_severities", ["critical", "high", "medium", "low", "info"])
    return data


def export_profile(project, integration, **fields) -> ScannerProfile:
    values = {"name": "Everything", "meta_data": "m", "source_kind": "export", "export_scope": "all"}
    values["scope_label"] = "All assets this key can view"
    return ScannerProfile.objects.create(project=project, integration=integration, **{**values, **fields})


def test_bind_to_offers_vulnerability_data_after_the_scans(
    admin_client, project, integration, tenable_simulator
):
    html = admin_client.get(new_url(project, integration), headers=HX).content.decode()
    group = html.split('<optgroup label="Vulnerability data">')[1].split("</optgroup>")[0]
    assert '<option value="scope:all">All assets this key can view</option>' in group
    assert f'<option value="scope:tag:{dallas(tenable_simulator.sim)}">Location: Dallas</option>' in group
    assert group.count("<option") == 7 and html.index('label="My Scans"') < html.index("Vulnerability data")
    assert 'data-source="export" hidden' in html  # a new profile shows Start Scan, not the sync settings


def test_an_export_profile_is_saved_with_its_scope_and_sync_settings(
    admin_client, project, integration, tenable_simulator
):
    uuid = dallas(tenable_simulator.sim)
    data = export_data(
        tenable_simulator.sim, scope=f"tag:{uuid}", sync_severities=["critical", "high"],
        include_unlicensed=True, first_sync_days="30", start_scan=True,
    )  # fmt: skip
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    assert response.status_code == 200 and "closeDrawer" in response.headers.get("HX-Trigger-After-Swap", "")
    profile = ScannerProfile.objects.get()
    assert (profile.source_kind, profile.scan_id, profile.export_scope) == ("export", None, f"tag:{uuid}")
    assert (profile.scope_category, profile.scope_value, profile.scope_label) == (
        "Location",
        "Dallas",
        "Location: Dallas",
    )
    assert (profile.sync_severities, profile.include_unlicensed, profile.first_sync_days) == (
        "critical,high",
        True,
        30,
    )
    assert (
        profile.start_scan is False and not ScanRun.objects.exists()
    )  # nothing to start, nothing run on save
    event = AuditEvent.objects.get(action="profile.created")
    assert event.details["vulnerability_data"] == f"tag:{uuid}"
    edit = admin_client.get(edit_url(profile), headers=HX).content.decode()
    assert f'<option value="scope:tag:{uuid}" selected>' in edit
    assert 'data-source="scan" hidden' in edit and "Start Scan does not apply to vulnerability data" in edit
    checked = re.findall(r'<input type="checkbox" name="sync_severities" value="(\w+)"[^>]* checked>', edit)
    assert checked == ["critical", "high"]


@pytest.mark.parametrize(
    ("severities", "stored", "error"),
    [
        (["critical", "high", "medium", "low", "info"], "", None),
        (["info"], "info", None),
        ([], None, "Choose at least one severity to sync."),
    ],
)
def test_severities_all_means_no_filter_and_none_is_refused(
    admin_client, project, integration, tenable_simulator, severities, stored, error
):
    data = export_data(tenable_simulator.sim, sync_severities=severities)
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    if error:
        assert error in response.content.decode() and not ScannerProfile.objects.exists()
    else:
        assert ScannerProfile.objects.get().sync_severities == stored


def test_a_window_outside_1_to_3650_days_is_refused(admin_client, project, integration, tenable_simulator):
    data = export_data(tenable_simulator.sim, first_sync_days="0")
    html = admin_client.post(new_url(project, integration), data, headers=HX).content.decode()
    assert "Enter a number of days from 1 to 3650" in html and not ScannerProfile.objects.exists()


def test_a_scope_the_key_cannot_see_is_refused(admin_client, project, integration, tenable_simulator):
    data = export_data(tenable_simulator.sim, scope="tag:00000000-0000-0000-0000-000000000000")
    html = admin_client.post(new_url(project, integration), data, headers=HX).content.decode()
    assert "This scan is not among the scans this connection can see" in html
    assert not ScannerProfile.objects.exists()


def test_changing_what_a_sync_asks_for_makes_the_next_one_full(
    admin_client, project, integration, tenable_simulator
):
    cursor = timezone.now() - timedelta(hours=2)
    profile = export_profile(project, integration, sync_cursor=cursor)
    sim = tenable_simulator.sim
    admin_client.post(edit_url(profile), export_data(sim, meta_data="renamed"), headers=HX)
    profile.refresh_from_db()
    assert (
        profile.meta_data == "renamed" and profile.sync_cursor == cursor
    )  # nothing the sync asks for changed
    admin_client.post(edit_url(profile), export_data(sim, include_unlicensed=True), headers=HX)
    profile.refresh_from_db()
    assert profile.include_unlicensed and profile.sync_cursor is None


def test_a_profile_switches_between_a_scan_and_vulnerability_data(
    admin_client, project, integration, tenable_simulator
):
    sim = tenable_simulator.sim
    admin_client.post(new_url(project, integration), export_data(sim, first_sync_days="7"), headers=HX)
    profile = ScannerProfile.objects.get()
    admin_client.post(edit_url(profile), form_data(sim, name="Everything", start_scan=True), headers=HX)
    profile.refresh_from_db()
    assert (profile.source_kind, profile.scan_id, profile.export_scope, profile.first_sync_days) == (
        "scan",
        sim.scan_id("completed"),
        "",
        None,
    )
    assert profile.scan_name == "Web tier - weekly" and profile.start_scan
    admin_client.post(edit_url(profile), export_data(sim, start_scan=True), headers=HX)
    profile.refresh_from_db()
    assert (profile.source_kind, profile.scan_id, profile.start_scan, profile.scan_name) == (
        "export",
        None,
        False,
        "",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"source_kind": "export", "export_scope": "all", "scan_id": 101},
        {"source_kind": "export", "export_scope": "all", "start_scan": True},
        {"source_kind": "export", "export_scope": ""},
        {"source_kind": "scan", "scan_id": None},
        {"source_kind": "scan", "scan_id": 101, "export_scope": "all"},
        {"source_kind": "other", "scan_id": 101},
    ],
)
def test_the_database_keeps_the_two_kinds_coherent(project, integration, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        ScannerProfile.objects.create(
            project=project, integration=integration, name="x", meta_data="m", **fields
        )


def test_the_scope_summary_says_what_it_covers_with_the_keys_role_and_visibility(
    admin_client, project, tenable_simulator
):
    sim = tenable_simulator.sim
    basic = make_integration(tenable_simulator.url, SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY)
    url = reverse("projects:scan_summary", args=[project.pk])
    html = admin_client.get(
        url, {"integration": basic.pk, "scan_id": "scope:all"}, headers=HX
    ).content.decode()
    assert "Every asset this key may view in Tenable.io" in html
    assert "<strong>Basic</strong> role" in html and "vm-readonly@example.com" in html
    assert '<span class="chip chip-tag">Location: Dallas</span>' in html
    assert "Vulnerability data has no schedule in Tenable.io" in html  # the schedule hint, out of band
    sessions = sum(r.path == "/session" for r in sim.requests)
    tag = admin_client.get(url, {"integration": basic.pk, "scan_id": f"scope:tag:{dallas(sim)}"}, headers=HX)
    assert "The assets tagged" in tag.content.decode()
    assert (
        sum(r.path == "/session" for r in sim.requests) == sessions
    )  # the key's role is cached like the list
    gone = admin_client.get(url, {"integration": basic.pk, "scan_id": "scope:tag:nope"}, headers=HX)
    assert "This tag is no longer visible to this API key" in gone.content.decode()


def test_a_basic_key_bound_to_a_scan_hears_which_role_it_lacks(
    admin_client, project, tenable_simulator, settings
):
    sim = tenable_simulator.sim
    basic = make_integration(tenable_simulator.url, SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY)
    url = reverse("projects:scan_summary", args=[project.pk])
    scan_id = sim.scan_id("completed")
    html = admin_client.get(url, {"integration": basic.pk, "scan_id": scan_id}, headers=HX).content.decode()
    assert "This API key cannot read or import this scan" in html
    assert "this user has the Basic role, which can list scans but not read them" in html
    assert "it needs the Scan Operator role (or higher)" in html and "Vulnerability data" in html
    # A run of such a profile fails with the same sentence and the way out.
    settings.TENABLE_POLL_INITIAL = 0.01
    profile = ScannerProfile.objects.create(
        project=project, integration=basic, name="Scan", scan_id=scan_id, meta_data="m"
    )
    run = ScanRun.objects.create(project=project, profile=profile)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("Cannot read or import scan results: this user has the Basic role")
    assert "Bind this profile to Vulnerability data instead" in run.error


def test_the_profile_list_shows_the_bound_scope_and_a_missing_tag(
    admin_client, project, integration, tenable_simulator
):
    synced = timezone.now() - timedelta(hours=3)
    export_profile(project, integration, name="All", sync_cursor=synced)
    export_profile(
        project, integration, name="Gone tag", export_scope="tag:00000000-0000-0000-0000-000000000000",
        scope_category="Location", scope_value="Atlantis", scope_label="Location: Atlantis",
    )  # fmt: skip
    url = reverse("projects:scanners", args=[project.pk])
    html = admin_client.get(f"{url}?verify=1").content.decode()
    assert "<th>Bound to</th>" in html and "All assets this key can view" in html
    assert f"Vulnerability data · synced to {timezone.localtime(synced):%b %-d, %H:%M}" in html
    assert "Location: Atlantis" in html and "This tag no longer exists in Tenable.io" in html
    assert ScannerProfile.objects.get(name="Gone tag").scan_missing
    assert not ScannerProfile.objects.get(name="All").scan_missing


def test_a_run_waiting_for_its_connection_is_not_swept_as_never_started(project, integration, settings):
    profile = export_profile(project, integration)
    old = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER * 3)
    waiting = ScanRun.objects.create(project=project, profile=profile)
    ScanRun.objects.filter(pk=waiting.pk).update(created_at=old, heartbeat_at=timezone.now())
    other = export_profile(project, integration, name="Other")
    forgotten = ScanRun.objects.create(project=project, profile=other)
    ScanRun.objects.filter(pk=forgotten.pk).update(created_at=old)
    assert sweep_stale_runs() == 1
    assert ScanRun.objects.get(pk=waiting.pk).status == RunStatus.QUEUED
    assert ScanRun.objects.get(pk=forgotten.pk).status == RunStatus.FAILED
