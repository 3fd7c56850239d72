"""The API for profiles bound to "Vulnerability data" (issue 14): what they are bound to, and their runs' phases."""

from __future__ import annotations

import pytest

from projects.models import ScannerProfile, ScanRun
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(world) -> ScannerProfile:
    return ScannerProfile.objects.create(
        project=world.project, integration=world.profile.integration, name="Everything", meta_data="team=x",
        source_kind="export", export_scope="all", scope_label="All assets this key can view",
    )  # fmt: skip


def test_profiles_say_what_they_are_bound_to(client, world, member, synced):
    profiles = client.get(f"/api/v1/projects/{world.project.pk}/profiles", headers=bearer(member)).json()
    bound = {p["name"]: p["bind_to"] for p in profiles}
    assert bound["Everything"] == {
        "kind": "export",
        "scan_id": None,
        "scan_name": "All assets this key can view",
        "scope": "all",
    }
    assert bound["Nightly"] == {"kind": "scan", "scan_id": 1, "scan_name": "", "scope": None}
    assert next(p for p in profiles if p["name"] == "Everything")["start_scan"] is False


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("requesting", "Requesting the export"),
        ("preparing", "Tenable preparing"),
        ("merging", "Merging chunks"),
        ("checking", "Checking assets"),
    ],
)
def test_a_sync_in_each_phase_reads_like_any_run(client, world, member, synced, status, phase):
    run = ScanRun.objects.create(
        project=world.project, profile=synced, status=status, progress_done=3, progress_total=8,
        message="Chunks: 3 of 8 downloaded, 3 merged · 15,000 findings",
    )  # fmt: skip
    body = client.get(f"/api/v1/runs/{run.pk}", headers=bearer(member)).json()
    assert (body["status"], body["phase"], body["finished"], body["progress_percent"]) == (
        status,
        phase,
        False,
        37,
    )
    assert body["profile_name"] == "Everything" and body["tenable_scan_id"] is None
    assert client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{synced.pk}/runs", headers=bearer(member)
    ).json() == {
        "detail": f"A run of Everything is already in progress (run #{run.pk}, {phase.lower()}).",
        "run_id": run.pk,
    }


def test_starting_a_sync_through_the_api(client, world, member, synced):
    response = client.post(
        f"/api/v1/projects/{world.project.pk}/profiles/{synced.pk}/runs", headers=bearer(member)
    )
    assert response.status_code == 202, response.content
    run = ScanRun.objects.get(pk=response.json()["id"])
    assert (run.profile, run.tenable_scan_id, run.tenable_scan_name) == (
        synced,
        None,
        "All assets this key can view",
    )
