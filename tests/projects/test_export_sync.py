"""Vulnerability-data syncs (issue 14) against the simulator over real HTTP, checked against its ground truth."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from integrations.connectors.base import VulnExportRequest
from integrations.connectors.tenable_io import errors as say
from integrations.connectors.tenable_io.connector import TenableIOConnector
from integrations.connectors.tenable_io.simulator import TenableSimulator
from projects.choices import RunStatus
from projects.models import ExportChunk, ExportLease, Finding, FindingEvent, Project, ScannerProfile, ScanRun
from projects.runs.export_merge import ExportMerger
from projects.runs.services import RetryLater, WaitLater, execute_run
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import (
    SIM_ACCESS_KEY,
    SIM_BASIC_ACCESS_KEY,
    SIM_BASIC_SECRET_KEY,
    SIM_SECRET_KEY,
    SimClock,
)

pytestmark = pytest.mark.django_db
ALL_STATES = ["OPEN", "REOPENED", "FIXED"]
DAY = 86400


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def sim(clock, settings):
    settings.TENABLE_POLL_INITIAL = 0.01
    settings.EXPORT_POLL_MAX = 0.05
    server = TenableSimulator(clock=clock, export_chunks_per_poll=2).serve()
    yield server
    server.stop()


def export_profile(server, name="Everything", scope="all", **fields) -> ScannerProfile:
    project = fields.pop("project", None) or Project.objects.create(name=f"Project {name}")
    integration = fields.pop("integration", None) or make_integration(server.url)
    values = {"scope_label": "All assets this key can view", "meta_data": "m", **fields}
    return ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name=name,
        source_kind="export",
        export_scope=scope,
        **values,
    )


def sync(profile) -> ScanRun:
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


def truth(sim, **kwargs) -> dict:
    records = sim.vulns(states=ALL_STATES, since=kwargs.pop("since", 0), **kwargs)
    return {
        (r["asset"]["uuid"], r["plugin"]["id"], r["port"]["port"], r["port"]["protocol"].lower()): r[
            "state"
        ].lower()
        for r in records
    }


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def db_state(project) -> dict:
    rows = Finding.objects.filter(project=project).values_list(
        "asset__host_uuid", "plugin_id", "port", "protocol", "state"
    )
    return {(u, p, port, proto): state for u, p, port, proto, state in rows}


def test_first_sync_brings_everything_with_tenables_states(sim):
    profile = export_profile(sim)
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    expected = truth(sim.sim)
    assert db_state(profile.project) == expected
    assert run.count_total == run.count_new == len(expected)
    assert run.count_fixed == run.count_reopened == run.count_unchanged == 0
    profile.refresh_from_db()
    assert profile.sync_cursor is not None
    assert ExportChunk.objects.filter(run=run, kind="vulns").count() >= 2


def classify(before: dict, export: dict) -> dict[str, int]:
    """What an incremental sync should count: each key of the export against our state before it."""
    counts = {"new": 0, "fixed": 0, "reopened": 0, "unchanged": 0}
    for key, state in export.items():
        was = before.get(key)
        if was is None:
            counts["new"] += 1
        elif was != "fixed" and state == "fixed":
            counts["fixed"] += 1
        elif was == "fixed" and state != "fixed":
            counts["reopened"] += 1
        else:
            counts["unchanged"] += 1
    return counts


def test_incremental_syncs_count_new_fixed_reopened_and_unchanged_exactly(sim, clock, settings):
    server = sim.sim
    scan_id = server.scan_id("linux")
    asset = server.asset_uuid(scan_id, 3)
    profile = export_profile(sim)
    first = sync(profile)
    before = db_state(profile.project)
    target = next(k for k, s in before.items() if k[0] == asset and s == "open")

    clock.now += DAY
    server.add_run(scan_id, fixed=[(asset, target[1])])  # churn: some new, some fixed; and this one fixed
    profile.refresh_from_db()
    since = int(profile.sync_cursor.timestamp()) - settings.EXPORT_CURSOR_OVERLAP
    second = sync(profile)
    assert second.status == RunStatus.SUCCEEDED, second.error
    body = [r.body for r in server.requests if r.path == "/vulns/export"][-1]
    assert body["filters"] == {"since": since, "state": ALL_STATES}
    export = truth(server, since=since)
    expected = classify(before, export)
    assert expected["new"] and expected["fixed"] and expected["unchanged"]
    assert (second.count_new, second.count_fixed, second.count_reopened, second.count_unchanged) == (
        expected["new"],
        expected["fixed"],
        expected["reopened"],
        expected["unchanged"],
    )
    assert second.count_total == len(export) < len(before)
    assert db_state(profile.project) == truth(server)
    assert (
        Finding.objects.get(
            project=profile.project, asset__host_uuid=asset, plugin_id=target[1], port=target[2]
        ).close_reason
        == "tenable_fixed"
    )

    before = db_state(profile.project)
    clock.now += DAY
    server.add_run(scan_id)  # finds it again: FIXED → REOPENED
    profile.refresh_from_db()
    third = sync(profile)
    export = truth(server, since=int(profile.sync_cursor.timestamp()) - settings.EXPORT_CURSOR_OVERLAP)
    expected = classify(before, export)
    assert expected["reopened"]
    assert (third.count_new, third.count_fixed, third.count_reopened, third.count_unchanged) == (
        expected["new"],
        expected["fixed"],
        expected["reopened"],
        expected["unchanged"],
    )
    assert db_state(profile.project) == truth(server)
    again = Finding.objects.get(
        project=profile.project, asset__host_uuid=asset, plugin_id=target[1], port=target[2]
    )
    assert (again.state, again.fixed_at, again.close_reason) == ("reopened", None, "")
    kinds = list(again.events.values_list("kind", "run_id"))
    assert kinds == [("fixed", second.pk), ("reopened", third.pk)]
    assert first.pk != second.pk


def test_deleted_and_terminated_assets_close_their_open_findings_with_the_reason(sim, clock):
    server = sim.sim
    scan_id = server.scan_id("windows")
    deleted, terminated = server.asset_uuid(scan_id, 1), server.asset_uuid(scan_id, 2)
    profile = export_profile(sim)
    sync(profile)
    open_before = {
        uuid: Finding.objects.filter(project=profile.project, asset__host_uuid=uuid).open().count()
        for uuid in (deleted, terminated)
    }
    assert all(open_before.values())
    clock.now += 120
    server.delete_asset(deleted)
    server.terminate_asset(terminated)
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.count_fixed == sum(open_before.values()) and run.count_new == 0
    for uuid, reason in ((deleted, "asset_deleted"), (terminated, "asset_terminated")):
        closed = Finding.objects.filter(project=profile.project, asset__host_uuid=uuid)
        assert not closed.open().exists()
        assert set(closed.filter(fixed_by_run=run).values_list("close_reason", flat=True)) == {reason}
        assert closed.filter(fixed_at=datetime.fromtimestamp(clock.now, UTC)).count() == open_before[uuid]
    assert "2 assets gone in Tenable.io" in run.message
    assert FindingEvent.objects.filter(run=run, kind="fixed").count() == run.count_fixed
    assets = ExportChunk.objects.get(run=run, kind="assets")
    assert (assets.assets_gone, assets.fixed) == (2, run.count_fixed)


def test_the_basic_key_syncs_exactly_what_it_may_view(sim):
    integration = make_integration(sim.url, SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY)
    profile = export_profile(sim, integration=integration)
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    expected = truth(sim.sim, key=SIM_BASIC_ACCESS_KEY)
    assert expected and db_state(profile.project) == expected
    assert len(expected) < len(truth(sim.sim))


def test_a_tag_scope_severities_and_unlicensed_assets_are_asked_for_and_honoured(sim):
    dallas = next(
        u for u, t in sim.sim.tag_values.items() if (t["category_name"], t["value"]) == ("Location", "Dallas")
    )
    profile = export_profile(
        sim, scope=f"tag:{dallas}", scope_category="Location", scope_value="Dallas", scope_label="Location: Dallas",
        sync_severities="critical,high", include_unlicensed=True,
    )  # fmt: skip
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    body = next(r.body for r in sim.sim.requests if r.path == "/vulns/export")
    assert body == {
        "num_assets": 50,
        "include_unlicensed": True,
        "filters": {
            "since": 0,
            "state": ALL_STATES,
            "severity": ["critical", "high"],
            "tag.Location": ["Dallas"],
        },
    }
    expected = truth(
        sim.sim,
        include_unlicensed=True,
        filters={"severity": ["critical", "high"], "tag.Location": ["Dallas"]},
    )
    assert expected and db_state(profile.project) == expected
    assert set(Finding.objects.values_list("severity", flat=True)) <= {3, 4}


def test_a_first_sync_window_asks_for_the_last_n_days(clock, settings):
    settings.TENABLE_POLL_INITIAL = 0.01
    now = time.time()
    clock.now = now
    with TenableSimulator(clock=clock).serve() as server:
        profile = export_profile(server, first_sync_days=7)
        run = sync(profile)
        assert run.status == RunStatus.SUCCEEDED, run.error
        since = next(r.body for r in server.sim.requests if r.path == "/vulns/export")["filters"]["since"]
        assert abs(since - (now - 7 * DAY)) < 60
        assert db_state(profile.project) == truth(server.sim, since=since)
        assert len(truth(server.sim, since=since)) < len(truth(server.sim))


def test_tenables_severity_view_is_kept_and_triage_is_never_touched(sim, clock):
    server = sim.sim
    profile = export_profile(sim)
    sync(profile)
    records = {r["finding_id"]: r for r in server.vulns(states=ALL_STATES, since=0)}
    findings = {f.tenable_finding_id: f for f in Finding.objects.filter(project=profile.project)}
    assert set(findings) == set(records)
    for finding_id, r in records.items():
        f = findings[finding_id]
        assert (f.severity, f.severity_default) == (r["severity_id"], r["severity_default_id"])
        assert f.severity_modification == (
            "" if r["severity_modification_type"] == "NONE" else r["severity_modification_type"]
        )
        assert f.first_seen == when(r["first_found"])
        if r["state"] == "FIXED":
            assert (f.fixed_at, f.close_reason) == (when(r["last_fixed"]), "tenable_fixed")
    assert {f.severity_modification for f in findings.values()} == {"", "RECASTED", "ACCEPTED"}
    recast = next(f for f in findings.values() if f.severity_modification == "RECASTED")
    assert recast.severity_modification_label == "Recast in Tenable.io"
    # Triage set here survives a sync that changes the finding in Tenable.
    accepted = Finding.objects.filter(
        project=profile.project, state="open", asset__host_uuid=server.asset_uuid(server.scan_id("linux"), 0)
    ).first()
    Finding.objects.filter(pk=accepted.pk).update(
        triage="risk_accepted", triage_reason="compensating control"
    )
    clock.now += DAY
    server.add_run(server.scan_id("linux"), fixed=[(0, accepted.plugin_id)])
    run = sync(profile)
    accepted.refresh_from_db()
    assert run.count_fixed and accepted.state == "fixed"
    assert (accepted.triage, accepted.triage_reason) == ("risk_accepted", "compensating control")


def test_the_2018_schema_without_finding_ids_syncs_by_asset_plugin_port_and_protocol(clock, settings):
    settings.TENABLE_POLL_INITIAL = 0.01
    with TenableSimulator(clock=clock, finding_schema="2018").serve() as server:
        profile = export_profile(server)
        run = sync(profile)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert db_state(profile.project) == truth_2018(server.sim)
        assert set(Finding.objects.values_list("tenable_finding_id", flat=True)) == {""}
        clock.now += DAY
        server.sim.add_run(server.sim.scan_id("linux"))
        again = sync(profile)
        assert again.status == RunStatus.SUCCEEDED and db_state(profile.project) == truth_2018(server.sim)
        assert (
            again.count_new + again.count_unchanged + again.count_fixed + again.count_reopened
            == again.count_total
        )


def truth_2018(sim) -> dict:
    return {
        (r["asset"]["uuid"], r["plugin"]["id"], r["port"]["port"], r["port"]["protocol"].lower()): r[
            "state"
        ].lower()
        for r in sim.vulns(states=ALL_STATES, since=0)
    }


def test_a_vulnerability_seen_by_a_scan_profile_and_an_export_profile_is_one_finding(sim):
    server = sim.sim
    scan_id = server.scan_id("linux")
    project = Project.objects.create(name="Both")
    integration = make_integration(sim.url)
    scan_profile = ScannerProfile.objects.create(
        project=project, integration=integration, name="Linux scan", scan_id=scan_id, meta_data="m"
    )
    scanned = sync(scan_profile)
    assert scanned.status == RunStatus.SUCCEEDED, scanned.error
    from_scan = db_state(project)
    assert from_scan
    synced = sync(export_profile(sim, project=project, integration=integration, include_unlicensed=True))
    assert synced.status == RunStatus.SUCCEEDED, synced.error
    everything = truth(server, include_unlicensed=True)
    assert set(db_state(project)) == set(from_scan) | set(everything)
    assert set(from_scan) <= set(
        everything
    )  # the scan's findings are among Tenable's: no second row for them
    assert synced.count_new == len(set(everything) - set(from_scan))
    assert Finding.objects.filter(project=project).count() == len(everything)


# -- the job: adoption, faults, deadline, retries, the connection lease ---------------------------------


def connector_for(server, access=SIM_ACCESS_KEY, secret=SIM_SECRET_KEY) -> TenableIOConnector:
    return TenableIOConnector(access_key=access, secret_key=secret, api_url=server.url, timeout=(2, 10))


def test_a_running_export_with_the_same_filters_is_adopted(sim):
    with connector_for(sim) as connector:
        running = connector.start_vuln_export(VulnExportRequest(since=0, num_assets=50))
    profile = export_profile(sim)
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.export_job_uuid == running.uuid and "adopted" in run.log
    vulns = [j for j in sim.sim.export_jobs("vulns")]
    assert len(vulns) == 1
    assert db_state(profile.project) == truth(sim.sim)
    assert profile_cursor(profile) == datetime.fromtimestamp(vulns[0]["created"] / 1000, UTC)


def profile_cursor(profile):
    profile.refresh_from_db()
    return profile.sync_cursor


def lease_holder(profile):
    return (
        ExportLease.objects.filter(integration=profile.integration).values_list("run_id", flat=True).first()
    )


@pytest.mark.parametrize(
    ("fault", "params", "says"),
    [
        (
            "export_error_partial",
            {"path": "/vulns/export", "available": 2},
            "The export job ended ERROR: Export failed while processing chunks",
        ),
        ("export_chunks_failed", {"failed": 1}, "failed: 1 of"),
        ("chunk_invalid_json", {"mode": "truncated"}, "It was downloaded 3 times and never read whole"),
        ("forbidden", {"path": "/vulns/export"}, "Can View on the assets"),
    ],
    ids=["error-partial", "chunks-failed", "unreadable", "forbidden"],
)
def test_an_incomplete_export_fails_the_run_and_leaves_the_cursor(sim, fault, params, says):
    profile = export_profile(sim)
    sim.sim.set_fault(fault, **params)
    run = sync(profile)
    assert run.status == RunStatus.FAILED and says in run.error, run.error
    assert "the cursor did not move" in run.error or fault == "forbidden"
    assert profile_cursor(profile) is None and lease_holder(profile) is None
    assert set(db_state(profile.project).items()) <= set(
        truth(sim.sim).items()
    )  # merged chunks stay, correct
    sim.sim.clear_faults()
    again = sync(profile)
    assert again.status == RunStatus.SUCCEEDED and db_state(profile.project) == truth(sim.sim)
    assert again.count_total == len(truth(sim.sim)) == again.count_new + again.count_unchanged


def test_an_unreadable_chunk_is_downloaded_again(sim):
    profile = export_profile(sim)
    sim.sim.set_fault("chunk_invalid_json", mode="invalid", times=2)
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.count_new == run.count_total == len(truth(sim.sim)) and db_state(profile.project) == truth(
        sim.sim
    )


def test_an_expired_chunk_means_one_new_export_without_double_counting(sim, settings):
    settings.EXPORT_CHUNK_DOWNLOADS, settings.EXPORT_NUM_ASSETS = 1, 50  # four chunks, one at a time
    profile = export_profile(sim)
    sim.sim.set_fault("chunk_not_found", path="/chunks/", after=2, times=1)  # the third is gone: two merged
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    jobs = sim.sim.export_jobs("vulns")
    assert len(jobs) == 2 and run.export_job_uuid == jobs[1]["uuid"] and "expired" in run.log
    assert run.count_new == run.count_total == len(truth(sim.sim))  # chunks merged twice count once
    assert run.count_unchanged == 0 and db_state(profile.project) == truth(sim.sim)
    assert profile_cursor(profile) == datetime.fromtimestamp(jobs[1]["created"] / 1000, UTC)


def test_chunks_that_expire_twice_fail_the_run(sim):
    profile = export_profile(sim)
    sim.sim.set_fault("chunk_not_found")
    run = sync(profile)
    assert run.status == RunStatus.FAILED and "expired too" in run.error
    assert len(sim.sim.export_jobs("vulns")) == 2 and profile_cursor(profile) is None


def test_an_export_stuck_past_the_deadline_is_cancelled(sim, settings):
    settings.EXPORT_SYNC_DEADLINE = 1
    profile = export_profile(sim)
    sim.sim.set_fault("export_queued")
    run = sync(profile)
    assert run.status == RunStatus.FAILED
    assert "had not finished the vulnerability export within the 1-minute deadline" in run.error
    assert "last status QUEUED" in run.error and "the export job was cancelled (CANCELLED)" in run.error
    cancels = [r.path for r in sim.sim.requests if r.path.endswith("/cancel")]
    assert cancels == [f"/vulns/export/{run.export_job_uuid}/cancel"]
    assert profile_cursor(profile) is None and lease_holder(profile) is None


def test_revoked_keys_stop_the_sync_at_once(sim):
    profile = export_profile(sim)
    sim.sim.set_fault("revoked_key", key=SIM_ACCESS_KEY, path="/chunks/")
    run = sync(profile)
    assert run.status == RunStatus.FAILED and "Invalid credentials" not in run.error
    assert run.error == say.AUTH and run.attempts == 1
    assert profile_cursor(profile) is None and lease_holder(profile) is None


def test_a_retried_run_adopts_its_job_and_skips_merged_chunks(sim, settings):
    settings.EXPORT_CHUNK_DOWNLOADS, settings.EXPORT_NUM_ASSETS = 1, 50
    settings.RUN_RETRY_BASE = 0
    profile = export_profile(sim)
    sim.sim.set_fault("flap", status=503, path="/chunks/", after=2, times=4)  # the third chunk: 4 × 503
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    with pytest.raises(RetryLater):
        execute_run(run.pk)
    run.refresh_from_db()
    merged = ExportChunk.objects.filter(run=run).count()
    assert run.status == RunStatus.QUEUED and run.export_job_uuid and merged == 2
    assert lease_holder(profile) == run.pk  # kept for the retry: no other export starts meanwhile
    execute_run(run.pk)  # the retry
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(sim.sim.export_jobs("vulns")) == 1  # adopted by its uuid, not requested again
    assert run.count_new == run.count_total == len(truth(sim.sim)) and db_state(profile.project) == truth(
        sim.sim
    )
    downloads = [r.path for r in sim.sim.requests if "/vulns/export/" in r.path and "/chunks/" in r.path]
    assert len(downloads) == len(set(downloads)) + 4  # only the flapping chunk was asked for again
    assert lease_holder(profile) is None


def test_a_redelivered_run_resumes_after_a_crash_mid_merge(sim, settings, monkeypatch):
    settings.EXPORT_CHUNK_DOWNLOADS, settings.EXPORT_NUM_ASSETS = 1, 50
    profile = export_profile(sim)
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    original, merged = ExportMerger.merge, []

    def crash_on_third(self, chunk):
        if len(merged) == 2:
            raise SystemExit("worker killed")  # as if the process died inside the third chunk
        merged.append(chunk.chunk_id)
        return original(self, chunk)

    monkeypatch.setattr(ExportMerger, "merge", crash_on_third)
    with pytest.raises(SystemExit):
        execute_run(run.pk)
    monkeypatch.setattr(ExportMerger, "merge", original)
    assert ExportChunk.objects.filter(run=run).count() == 2
    execute_run(run.pk, redelivered=True)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and len(sim.sim.export_jobs("vulns")) == 1
    assert run.count_new == run.count_total == len(truth(sim.sim)) and db_state(profile.project) == truth(
        sim.sim
    )


def test_a_busy_connection_queues_the_run_behind_the_holder_without_spending_attempts(sim):
    holder = export_profile(sim, name="Holder")
    waiting = export_profile(sim, name="Waiter", integration=holder.integration)
    holder_run = ScanRun.objects.create(project=holder.project, profile=holder, status=RunStatus.MERGING)
    assert ExportLease.take(holder.integration_id, holder_run, 60) == (True, None)
    run = ScanRun.objects.create(project=waiting.project, profile=waiting)
    for _ in range(3):
        with pytest.raises(WaitLater):
            execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.attempts == 0
    assert run.message.startswith(f"Waiting for run #{holder_run.pk} of Holder (project Project Holder)")
    assert sim.sim.export_jobs_created == 0
    holder_run.fail("done")  # the holder ends (its lease with it, even unreleased)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_a_dead_holders_lease_lapses(sim):
    holder = export_profile(sim, name="Holder")
    holder_run = ScanRun.objects.create(project=holder.project, profile=holder, status=RunStatus.MERGING)
    ExportLease.take(holder.integration_id, holder_run, 60)
    ExportLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    other = ScanRun.objects.create(
        project=holder.project, profile=export_profile(sim, name="Other", integration=holder.integration)
    )
    assert ExportLease.take(holder.integration_id, other, 60) == (True, None)
    assert ExportLease.take(holder.integration_id, holder_run, 60) == (False, other)
    assert not ExportLease.extend(holder.integration_id, holder_run, 60)


@pytest.mark.django_db(transaction=True)
def test_chunks_merged_side_by_side_on_postgresql_count_exactly(
    postgres_required, sim, clock, settings, monkeypatch
):
    """Outside a transaction, PostgreSQL merges on EXPORT_MERGE_CONNECTIONS threads, each with its own connection
    (and scratch table for the careful path): a first sync, then an incremental one, both exact."""
    settings.EXPORT_NUM_ASSETS, settings.EXPORT_MERGE_CONNECTIONS = 50, 2
    threads: set[str] = set()
    merge = ExportMerger._merge

    def recorded(self, batch, *, fast):
        threads.add(threading.current_thread().name)
        return merge(self, batch, fast=fast)

    monkeypatch.setattr(ExportMerger, "_merge", recorded)
    server = sim.sim
    profile = export_profile(sim)
    first = sync(profile)
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert first.count_new == first.count_total == len(truth(server)) and db_state(profile.project) == truth(
        server
    )
    assert threads == {"export-merge-0", "export-merge-1"}
    before = db_state(profile.project)
    clock.now += DAY
    server.add_run(server.scan_id("linux"))
    server.add_run(server.scan_id("windows"))
    profile.refresh_from_db()
    since = int(profile.sync_cursor.timestamp()) - settings.EXPORT_CURSOR_OVERLAP
    second = sync(profile)
    expected = classify(before, truth(server, since=since))
    assert (second.count_new, second.count_fixed, second.count_reopened, second.count_unchanged) == (
        expected["new"],
        expected["fixed"],
        expected["reopened"],
        expected["unchanged"],
    )
    assert db_state(profile.project) == truth(server)


def test_a_first_sync_meeting_findings_it_did_not_expect_merges_them_carefully(sim, monkeypatch):
    """A first sync inserts blindly; a chunk that meets existing findings (a scan import wrote them meanwhile)
    is rolled back and merged the careful way, and still counts exactly."""
    first_sync_meets_existing_findings(sim, monkeypatch, side_by_side=False)


@pytest.mark.django_db(transaction=True)
def test_side_by_side_merges_meeting_unexpected_findings_merge_them_carefully(
    postgres_required, sim, monkeypatch
):
    first_sync_meets_existing_findings(sim, monkeypatch, side_by_side=True)


def first_sync_meets_existing_findings(sim, monkeypatch, *, side_by_side: bool) -> None:
    server = sim.sim
    project = Project.objects.create(name="Both")
    integration = make_integration(sim.url)
    scan = ScannerProfile.objects.create(
        project=project, integration=integration, name="Linux", scan_id=server.scan_id("linux"), meta_data="m"
    )
    assert sync(scan).status == RunStatus.SUCCEEDED
    before = db_state(project)
    init = ExportMerger.__init__

    def as_if_the_project_was_empty(self, run):
        init(self, run)
        self.fast = True

    monkeypatch.setattr(ExportMerger, "__init__", as_if_the_project_was_empty)
    threads: set[str] = set()
    merge = ExportMerger._merge

    def recorded(self, batch, *, fast):
        threads.add(threading.current_thread().name)
        return merge(self, batch, fast=fast)

    monkeypatch.setattr(ExportMerger, "_merge", recorded)
    run = sync(export_profile(sim, project=project, integration=integration, include_unlicensed=True))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert any(name.startswith("export-merge-") for name in threads) is side_by_side
    everything = truth(server, include_unlicensed=True)
    expected = classify(before, everything)
    assert expected["unchanged"] and expected["new"]
    assert (run.count_new, run.count_fixed, run.count_reopened, run.count_unchanged) == (
        expected["new"],
        expected["fixed"],
        expected["reopened"],
        expected["unchanged"],
    )
    assert db_state(project) == everything


def test_a_rate_limited_chunk_waits_for_retry_after_and_the_sync_completes(sim):
    profile = export_profile(sim)
    sim.sim.set_fault("rate_limit", path="/chunks/", retry_after="1", times=1)
    began = time.monotonic()
    run = sync(profile)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert time.monotonic() - began >= 1  # Tenable's retry-after, honoured by the one door
    assert run.count_new == run.count_total == len(truth(sim.sim))


def test_a_canceled_sync_stops_keeps_what_it_merged_and_leaves_the_cursor(sim, settings, monkeypatch):
    settings.EXPORT_CHUNK_DOWNLOADS, settings.EXPORT_NUM_ASSETS = 1, 50
    profile = export_profile(sim)
    sim.sim.set_fault("slow", path="/chunks/", seconds=1)
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    merge = ExportMerger.merge

    def cancel_after_the_first(self, chunk):
        ledger = merge(self, chunk)
        run.cancel(by="admin")
        return ledger

    monkeypatch.setattr(ExportMerger, "merge", cancel_after_the_first)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED and run.message == "Canceled by admin"
    merged = ExportChunk.objects.filter(run=run).count()
    assert 1 <= merged < 4 and Finding.objects.filter(project=profile.project).count() > 0
    assert profile_cursor(profile) is None and lease_holder(profile) is None
