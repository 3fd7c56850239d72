"""The import engine (DESIGN §4): counts against the simulator's ground truth, idempotence, faults, fixtures."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from integrations.connectors.tenable_io.simulator import TenableSimulator
from projects.choices import RunStatus
from projects.models import Finding, FindingEvent, Project, RunAsset, ScannerProfile, ScanRun
from projects.runs.services import (
    RetryLater,
    RunRefused,
    cancel_run,
    execute_run,
    import_upload,
    request_run,
    sweep_stale_runs,
)
from tests.conftest import IN_CI
from tests.integrations.conftest import make_integration

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "nessus"


@pytest.fixture
def sim(settings):
    settings.TENABLE_POLL_INITIAL = 0.05
    settings.TENABLE_POLL_MAX = 0.1
    simulator = TenableSimulator(scans=2, launch_seconds=0.2, hosts_down=1)
    server = simulator.serve()
    yield server
    server.stop()


@pytest.fixture
def profile(sim):
    scan_id = sim.sim.add_scan("Pipeline scan", hosts=8, findings_per_host=30, runs=1)
    integration = make_integration(sim.url)
    project = Project.objects.create(name="Pipeline")
    return ScannerProfile.objects.create(
        project=project, integration=integration, name="Weekly", scan_id=scan_id, meta_data="prod"
    )


def _run(profile, **fields) -> ScanRun:
    run = ScanRun.objects.create(project=profile.project, profile=profile, **fields)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


def _truth(sim, scan_id, history_id):
    return {(ip, plugin, port, proto) for ip, plugin, port, proto, _ in sim.findings(scan_id, history_id)}


def _db_state():
    rows = Finding.objects.values_list("asset__ip", "plugin_id", "port", "protocol", "state")
    return {(ip, plugin, port, proto): state for ip, plugin, port, proto, state in rows}


def test_first_import_then_changed_runs_have_exact_counts(sim, profile):
    scan_id = profile.scan_id
    first = _run(profile)
    assert first.status == RunStatus.SUCCEEDED, first.error
    h0 = sim.sim.history_ids(scan_id)[-1]
    seen0 = _truth(sim.sim, scan_id, h0)
    assert first.count_total == first.count_new == len(seen0) and first.count_fixed == 0
    assert set(_db_state()) == seen0 and set(_db_state().values()) == {"open"}
    assert RunAsset.objects.filter(run=first).count() == first.count_hosts

    # A changed run, launched by the profile (Start Scan on): new, fixed only on covered hosts, unchanged.
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    second = _run(profile)
    assert second.status == RunStatus.SUCCEEDED, second.error
    h1 = sim.sim.history_ids(scan_id)[-1]
    assert h1 != h0 and second.tenable_history_id == h1
    seen1 = _truth(sim.sim, scan_id, h1)
    covered1 = {ip for ip, *_ in seen1}
    expected_fixed = {f for f in seen0 - seen1 if f[0] in covered1}
    down_host_findings = {f for f in seen0 - seen1 if f[0] not in covered1}
    assert second.count_new == len(seen1 - seen0)
    assert second.count_fixed == len(expected_fixed) > 0
    assert second.count_unchanged == len(seen1 & seen0)
    state = _db_state()
    assert {f for f, s in state.items() if s == "fixed"} == expected_fixed
    assert all(state[f] == "open" for f in down_host_findings)  # a host that was down is not "fixed"

    # Another run: anything fixed that comes back is reopened.
    third = _run(profile)
    h2 = sim.sim.history_ids(scan_id)[-1]
    seen2 = _truth(sim.sim, scan_id, h2)
    assert third.count_reopened == len(seen2 & expected_fixed)
    state = _db_state()
    assert all(state[f] == "reopened" for f in seen2 & expected_fixed)
    assert FindingEvent.objects.filter(kind="fixed").count() >= len(expected_fixed)
    assert FindingEvent.objects.filter(kind="reopened", run=third).count() == third.count_reopened


def test_same_tenable_run_twice_is_up_to_date_and_changes_nothing(sim, profile):
    first = _run(profile)
    before = list(Finding.objects.order_by("pk").values())
    again = _run(profile)
    assert again.status == RunStatus.SUCCEEDED and again.up_to_date
    assert f"run #{first.pk}" in again.message
    assert list(Finding.objects.order_by("pk").values()) == before


def test_up_to_date_names_the_run_that_imported_and_reports_complete_progress(sim, profile):
    """Issue 12 §6: a later up-to-date run named the previous up-to-date run, and said 0 of N hosts at 100 %."""
    first = _run(profile)
    second = _run(profile)
    third = _run(profile)
    assert not first.up_to_date and second.up_to_date and third.up_to_date
    assert third.message == f"Up to date: this Tenable.io run was already imported by run #{first.pk}"
    for run in (second, third):
        assert run.progress_total and run.progress_done == run.progress_total
        assert run.progress_percent == 100


@pytest.mark.parametrize(
    "hosts, items, message",
    [
        (1, 1, "Imported 1 finding from 1 host"),
        (2, 3, "Imported 6 findings from 2 hosts"),
    ],
)
def test_the_run_summary_counts_in_words(tmp_path, hosts, items, message):
    """Issue 12 §8: "Imported 1 findings from 1 hosts"."""
    body = "".join(
        f'<ReportHost name="10.0.0.{h}"><HostProperties><tag name="host-ip">10.0.0.{h}</tag></HostProperties>'
        + "".join(
            f'<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="{1000 + n}" '
            f'pluginName="P{n}" pluginFamily="General"></ReportItem>'
            for n in range(items)
        )
        + "</ReportHost>"
        for h in range(1, hosts + 1)
    )
    path = tmp_path / "small.nessus"
    path.write_text(
        f'<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="r">{body}</Report></NessusClientData_v2>'
    )
    run = ScanRun.objects.create(project=Project.objects.create(name="Small"), trigger="upload")
    import_upload(run, os.fspath(path))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.message == message


def test_triage_survives_and_severity_shift_is_applied(sim, profile):
    _run(profile)
    finding = Finding.objects.filter(severity=0).first() or Finding.objects.first()
    Finding.objects.filter(pk=finding.pk).update(triage="false_positive", triage_reason="lab host")
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True, severity_shift=1)
    profile.refresh_from_db()
    run = _run(profile)
    finding.refresh_from_db()
    assert finding.triage == "false_positive" and finding.triage_reason == "lab host"
    assert run.status == RunStatus.SUCCEEDED, run.error
    covered = Finding.objects.filter(asset__run_assets__run=run).exclude(state="fixed")
    for severity, effective in covered.values_list("severity", "effective_severity"):
        assert effective == min(4, severity + 1)
    assert not Finding.objects.filter(severity=4).exclude(effective_severity=4).exists()


@pytest.mark.parametrize("fault", ["malformed_xml", "export_error", "truncated_close"])
def test_failures_leave_findings_as_they_were(sim, profile, fault):
    _run(profile)
    before = sorted(Finding.objects.values_list("pk", "state", "plugin_output"))
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    if fault == "truncated_close":
        sim.sim.set_fault("truncated_download", scan_id=profile.scan_id, mode="close")
    else:
        sim.sim.set_fault(fault, scan_id=profile.scan_id)
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    if fault == "export_error":  # Tenable's export may work next time: retried, with the reason shown
        with pytest.raises(RetryLater):
            execute_run(run.pk)
        run.refresh_from_db()
        assert run.status == RunStatus.QUEUED and "could not export" in run.message
    else:  # a broken file is not retried: it would break again
        execute_run(run.pk)
        run.refresh_from_db()
        assert (
            run.status == RunStatus.FAILED
            and "not well-formed" in run.error
            and "Nothing was imported" in run.error
        )
    assert sorted(Finding.objects.values_list("pk", "state", "plugin_output")) == before


def test_transient_failure_asks_for_a_retry_then_succeeds(sim, profile, settings):
    settings.RUN_RETRY_BASE = 1
    sim.sim.set_fault("truncated_download", scan_id=profile.scan_id, mode="length", times=1)
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    with pytest.raises(RetryLater):
        execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and "Retrying in" in run.message and not Finding.objects.exists()
    execute_run(run.pk)
    run.refresh_from_db()
    assert (
        run.status == RunStatus.SUCCEEDED and run.attempts == 2 and Finding.objects.count() == run.count_total
    )


def test_a_decompression_bomb_in_the_export_stops_at_the_cap(sim, profile, settings):
    """Issue 12 §6: gzip downloads are decoded under a cap (TENABLE_EXPORT_MAX_BYTES), like an upload."""
    _run(profile)
    before = sorted(Finding.objects.values_list("pk", "state"))
    settings.TENABLE_EXPORT_MAX_BYTES = 1 << 20
    sim.sim.set_fault("gzip_bomb", scan_id=profile.scan_id, size=64 << 20)
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    run = _run(profile)
    assert run.status == RunStatus.FAILED and run.attempts == 1
    assert run.error == (
        "The export from Tenable.io is larger than the 1.0 MB limit once decompressed "
        "(TENABLE_EXPORT_MAX_BYTES); nothing was imported."
    )
    assert sorted(Finding.objects.values_list("pk", "state")) == before


def test_revoked_keys_fail_at_once_without_retry(sim, profile):
    _run(profile)
    before = Finding.objects.count()
    profile.integration.secret_key = "revoked"
    profile.integration.save()
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    run = _run(profile)
    assert (
        run.status == RunStatus.FAILED and "Invalid User Key or Secret Key" in run.error and run.attempts == 1
    )
    assert Finding.objects.count() == before


def test_canceled_or_aborted_scan_ends_the_run_with_tenables_word(sim, profile):
    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    sim.sim.set_launch_outcome(profile.scan_id, "aborted")
    run = _run(profile)
    assert run.status == RunStatus.FAILED and "“aborted”" in run.error and not Finding.objects.exists()


def test_one_active_run_per_profile(profile, monkeypatch):
    monkeypatch.setattr("projects.runs.services._publish", lambda run_id: None)
    first = request_run(profile)
    with pytest.raises(RunRefused) as refused:
        request_run(profile)
    assert refused.value.run == first and f"run #{first.pk}" in refused.value.message
    assert ScanRun.objects.filter(profile=profile).count() == 1


@pytest.fixture
def broker_at(settings):
    """Point the Celery app at a Redis URL on a loopback port, with the production broker settings (C4)."""
    from config.celery import app

    previous = app.conf.broker_url, app.conf.broker_transport_options, app.conf.broker_connection_timeout
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def point(broker: str) -> None:
        if broker.startswith("hung"):
            listener.listen(16)  # the kernel accepts connections; nobody ever answers
        else:
            listener.close()  # nothing listens: connections are refused
        app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
        app.conf.broker_transport_options = settings.REDIS_TRANSPORT_OPTIONS
        app.conf.broker_connection_timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
        app._pool = app.amqp._producer_pool = None

    yield point
    app.conf.broker_url, app.conf.broker_transport_options, app.conf.broker_connection_timeout = previous
    app._pool = app.amqp._producer_pool = None
    listener.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "broker, action",
    [
        ("closed port", "Run now"),
        # The run's publish times out, then so does the publish of its scan.failed webhook event.
        ("hung (accepts, never answers)", "Run now"),
        ("hung (accepts, never answers)", "Upload .nessus"),
        ("closed port", "API"),
    ],
)
def test_unreachable_queue_answers_within_5_s_and_says_what_happened(
    profile, admin_client, broker_at, settings, tmp_path, broker, action
):
    """RELIABILITY C4, through the app's views: the answer comes within ~5 s and its words match the data."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from projects.runs.services import NOT_QUEUED, QUEUE_UNAVAILABLE
    from webhooks.models import WebhookDelivery

    ScannerProfile.objects.filter(pk=profile.pk).update(webhook_url="https://hooks.example.com/scan")
    settings.MEDIA_ROOT = tmp_path
    broker_at(broker)
    started = time.monotonic()
    if action == "Run now":
        response = admin_client.post(reverse("projects:run_now", args=[profile.project.pk, profile.pk]))
    elif action == "API":
        response = admin_client.post(f"/api/v1/projects/{profile.project.pk}/profiles/{profile.pk}/runs")
    else:
        nessus = b'<?xml version="1.0"?><NessusClientData_v2><Report name="r"></Report></NessusClientData_v2>'
        response = admin_client.post(
            reverse("projects:upload", args=[profile.project.pk]),
            {"file": SimpleUploadedFile("scan.nessus", nessus)},
        )
    elapsed = time.monotonic() - started
    assert elapsed < 5.5, f"{action} answered after {elapsed:.1f} s with the broker {broker}"

    run = ScanRun.objects.get()
    assert run.status == RunStatus.FAILED and not run.is_active
    assert (run.error, run.message) == (QUEUE_UNAVAILABLE, NOT_QUEUED)
    if action == "API":  # kdt/README.md documents this body
        assert response.status_code == 503
        assert response.json() == {"detail": QUEUE_UNAVAILABLE, "run_id": run.pk}
        return
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    # The words the user reads agree with the data: the run exists, recorded as failed.
    page = admin_client.get(response.url).content.decode()
    assert "could not be queued and is recorded as failed" in page and "was not started" not in page
    if action == "Run now":
        assert (
            WebhookDelivery.objects.filter(run=run, event="scan.failed").count() == 1
        )  # the sweeper sends it
    else:
        assert not list((tmp_path / "nessus").iterdir())  # the stored file is removed


def test_cancel_and_sweeper(profile):
    queued = ScanRun.objects.create(project=profile.project, profile=profile)
    assert cancel_run(queued)
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELED
    execute_run(queued.pk)  # a worker picking it up later does nothing
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELED and queued.attempts == 0

    stale = ScanRun.objects.create(
        project=profile.project, profile=profile, status=RunStatus.IMPORTING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    assert sweep_stale_runs() == 1
    stale.refresh_from_db()
    assert stale.status == RunStatus.FAILED and "stopped responding" in stale.error


# -- the shared real-world fixtures ------------------------------------------------------------------
FIXTURE_COUNTS = {
    "nessus_with_cvssv3.nessus": (1, 48, {"0": 23, "1": 1, "2": 13, "3": 10, "4": 1}),
    "nessus_many_vuln.xml": (1, 7, {"0": 7}),
    "nessus_was_many_vuln.xml": (1, 5, {"0": 1, "1": 3, "3": 1}),
    "nessus_was_no_vuln.xml": (1, 0, {}),
    "issue_6992.nessus": (1, 1, {"2": 1}),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_COUNTS))
def test_shared_fixtures_import_with_the_documented_counts(name):
    if not FIXTURES.is_dir():
        if IN_CI:
            pytest.fail(f"{FIXTURES} is missing (mandatory under CI)")
        pytest.skip(f"{FIXTURES} is absent: the shared fixtures live beside the checkout")
    hosts, total, by_severity = FIXTURE_COUNTS[name]
    project = Project.objects.create(name=name)
    run = ScanRun.objects.create(project=project, trigger="upload", source_name=name)
    import_upload(run, os.fspath(FIXTURES / name))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.count_hosts, run.count_total, run.count_by_severity) == (hosts, total, by_severity)
    assert Finding.objects.filter(project=project).count() == total
    if name == "issue_6992.nessus":
        finding = Finding.objects.get(project=project)
        assert (
            finding.severity == 2 and finding.plugin.cvss3_base_score == 7.5
        )  # Tenable's severity, not CVSS's
    # Importing the same file again changes nothing (P7).
    again = ScanRun.objects.create(project=project, trigger="upload")
    import_upload(again, os.fspath(FIXTURES / name))
    again.refresh_from_db()
    assert (again.count_new, again.count_fixed, again.count_reopened) == (0, 0, 0)
    assert Finding.objects.filter(project=project).count() == total


@pytest.mark.django_db(transaction=True)
def test_cut_download_rolls_back_batches_already_merged_on_another_connection(
    sim, postgres_required, settings
):
    """On PostgreSQL the merger runs on its own connection; a failure after some batches must undo them all."""
    scan_id = sim.sim.add_scan("Big", hosts=500, findings_per_host=100, runs=1)
    project = Project.objects.create(name="Threaded")
    profile = ScannerProfile.objects.create(
        project=project, integration=make_integration(sim.url), name="Big", scan_id=scan_id, meta_data="m"
    )
    sim.sim.set_fault("truncated_download", scan_id=scan_id, mode="chunked")
    run = ScanRun.objects.create(project=project, profile=profile)
    with pytest.raises(RetryLater):
        execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and "cut short" in run.message
    assert not Finding.objects.exists() and not RunAsset.objects.exists()
    sim.sim.clear_faults()
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and Finding.objects.count() == run.count_total == 50_000


# -- Celery-facing rules (RELIABILITY C5, C6, C7, C9, C11) ------------------------------------------------------
def test_enqueue_waits_for_commit(profile, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("projects.tasks.run_scan.apply_async", lambda args, retry=False: sent.append(args[0]))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = request_run(profile)
    assert sent == [] and len(callbacks) == 1  # nothing is published before the row is committed (C9)
    callbacks[0]()
    assert sent == [run.pk]


def test_scheduled_tick_while_a_run_is_active_is_skipped_with_a_reason(profile, caplog, monkeypatch):
    from projects.tasks import run_scheduled_profile

    monkeypatch.setattr("projects.runs.services._publish", lambda run_id: None)
    active = ScanRun.objects.create(project=profile.project, profile=profile, status=RunStatus.EXPORTING)
    caplog.set_level("INFO", logger="projects.runs.tasks")
    run_scheduled_profile(profile.pk)
    assert ScanRun.objects.filter(profile=profile).count() == 1
    assert f"skipped: A run of {profile.name} is already in progress (run #{active.pk}" in caplog.text
    run_scheduled_profile(999_999)  # a deleted profile: one log line, nothing else (C11)
    assert "no longer exists" in caplog.text


def test_deleted_profile_before_the_task_runs_exits_cleanly(profile):
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    profile.delete()  # the run goes with it
    execute_run(run.pk)  # claim finds nothing: no exception, no retry
    assert not ScanRun.objects.exists()


def test_soft_time_limit_fails_the_run_and_imports_nothing(sim, profile, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr("projects.runs.services.import_hosts", too_slow)
    run = _run(profile)
    assert run.status == RunStatus.FAILED and "longer than its" in run.error and not Finding.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_run_requests_start_one_run(profile, monkeypatch, postgres_required):
    """(On SQLite the test database is shared-cache in-memory, whose table locks ignore the busy timeout.)"""
    import threading

    from django.db import connection

    monkeypatch.setattr("projects.runs.services._publish", lambda run_id: None)
    barrier, outcomes = threading.Barrier(2), []

    def click():
        try:
            barrier.wait()
            outcomes.append(request_run(ScannerProfile.objects.get(pk=profile.pk)).pk)
        except RunRefused as refused:
            outcomes.append(refused.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ScanRun.objects.filter(profile=profile).count() == 1
    assert sum(isinstance(o, int) for o in outcomes) == 1 and any(
        "already in progress" in str(o) for o in outcomes
    )
