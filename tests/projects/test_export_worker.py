"""Vulnerability-data syncs on real Celery workers (Redis, PostgreSQL, the simulator over HTTP): a worker killed
mid-sync resumes without double counting; two profiles on one connection never export at once (RELIABILITY C1,
E6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from integrations.connectors.tenable_io.simulator import TenableSimulator
from projects.choices import RunStatus
from projects.models import ExportChunk, Finding, Project, ScannerProfile, ScanRun
from projects.runs.services import request_run
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ACCESS_KEY

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
ALL_STATES = ["OPEN", "REOPENED", "FIXED"]
EXPORT_PHASES = {RunStatus.REQUESTING, RunStatus.PREPARING, RunStatus.MERGING, RunStatus.CHECKING}
DOWNLOADS = 2


@pytest.fixture
def start_worker(postgres_required, redis_url, settings, tmp_path):
    """Start `celery worker` subprocesses (one pool process each) on the test database; all stopped after."""
    db = settings.DATABASES["default"]
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TENABLE_POLL_INITIAL": "0.2",
        "TENABLE_POLL_MAX": "0.5",
        "EXPORT_POLL_MAX": "0.5",
        "EXPORT_LEASE_WAIT": "1",
        "EXPORT_CHUNK_DOWNLOADS": str(DOWNLOADS),
        "CONN_MAX_AGE": "0",
        "TENABLE_API_HOSTS": "127.0.0.1",
    }
    from config.celery import app

    app.control.purge()
    started: list[tuple[subprocess.Popen, object]] = []

    def start(name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "imports,celery", "-c", "1",
             "-P", "prefork", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def sim():
    sim = TenableSimulator(scans=0, churn=0, export_chunks_per_poll=1)
    sim.big_scan(hosts=200, findings_per_host=20)  # four chunks of 50 assets, 1,000 findings each
    server = sim.serve()
    yield server
    server.stop()


def export_profile(server, name: str, integration, **fields) -> ScannerProfile:
    project = Project.objects.create(name=name)
    values = {"export_scope": "all", "scope_label": "All assets this key can view", **fields}
    return ScannerProfile.objects.create(
        project=project, integration=integration, name=name, meta_data="m", source_kind="export", **values
    )


def wait_for(run: ScanRun, condition, timeout: float = 120, what: str = "") -> ScanRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if condition(run):
            return run
        time.sleep(0.1)
    pytest.fail(f"run #{run.pk} stayed {run.status} ({run.message}) for {timeout} s {what}")


def truth(sim, **kwargs) -> set:
    return {r["finding_id"] for r in sim.vulns(states=ALL_STATES, since=0, **kwargs)}


def test_a_worker_killed_mid_sync_resumes_without_double_counting(start_worker, sim):
    worker = start_worker("w1")
    profile = export_profile(sim, "Everything", make_integration(sim.url))
    sim.sim.set_fault("slow", path="/vulns/export/", seconds=1)  # polls and chunks take a second each
    run = request_run(profile)
    wait_for(run, lambda r: ExportChunk.objects.filter(run=r).exists(), what="before a chunk merged")
    assert run.status in EXPORT_PHASES, "the sync finished before it could be interrupted"
    merged_before = ExportChunk.objects.filter(run=run).count()
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert children, "no pool process found"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)  # the pool child dies mid-sync, as with the OOM killer
    sim.sim.clear_faults()
    run = wait_for(run, lambda r: not r.is_active)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and 0 < merged_before < ExportChunk.objects.filter(run=run, kind="vulns").count()
    expected = truth(sim.sim)
    assert len(sim.sim.export_jobs("vulns")) == 1  # the redelivered task adopted the job it had stored
    assert run.count_new == run.count_total == len(expected) and run.count_unchanged == 0
    assert set(Finding.objects.values_list("tenable_finding_id", flat=True)) == expected
    assert Finding.objects.count() == len(expected)
    downloads = [r.path for r in sim.sim.requests if "/vulns/export/" in r.path and "/chunks/" in r.path]
    assert len(downloads) - len(set(downloads)) <= DOWNLOADS  # only chunks in flight at the kill came again
    profile.refresh_from_db()
    assert profile.sync_cursor is not None


def test_two_profiles_on_one_connection_never_export_at_once(start_worker, sim):
    start_worker("w1")
    start_worker("w2")
    integration = make_integration(sim.url)
    dallas = next(u for u, t in sim.sim.tag_values.items() if t["value"] == "Dallas")
    everything = export_profile(sim, "Everything", integration)
    tagged = export_profile(
        sim, "Dallas", integration, export_scope=f"tag:{dallas}", scope_category="Location",
        scope_value="Dallas", scope_label="Location: Dallas",
    )  # fmt: skip
    sim.sim.set_fault("slow", path="/chunks/", seconds=0.4)
    samples: list[tuple[int, str]] = []
    stop = threading.Event()

    def sample() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                runs = ScanRun.objects.filter(profile__integration=integration)
                busy = runs.filter(status__in=EXPORT_PHASES).count()
                waiting = " | ".join(runs.filter(status=RunStatus.QUEUED).values_list("message", flat=True))
                samples.append((busy, waiting))
                time.sleep(0.05)
        finally:
            connection.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        runs = [request_run(everything), request_run(tagged)]
        runs = [wait_for(run, lambda r: not r.is_active, timeout=180) for run in runs]
    finally:
        stop.set()
        sampler.join(timeout=5)
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 2, [r.error for r in runs]
    assert max(busy for busy, _ in samples) == 1
    assert any("Waiting for run #" in waiting for _, waiting in samples)  # one queued behind the other
    assert all(r.attempts == 1 for r in runs)  # waiting spent no attempt
    assert 1 <= sim.sim.peak_chunk_downloads(SIM_ACCESS_KEY) <= DOWNLOADS
    # Tenable's log: every request of the first sync's jobs comes before the second sync asks for its export.
    requests = [r.path for r in sim.sim.requests]
    second = [i for i, path in enumerate(requests) if path == "/vulns/export"][1]
    first_jobs = {p.split("/")[-2] for p in requests[:second] if p.endswith("/status")}
    assert len(first_jobs) == 2  # its vulnerability export and its asset export
    assert not any(job in path for path in requests[second:] for job in first_jobs)
    for run, profile in zip(runs, (everything, tagged), strict=True):
        kwargs = {"filters": {"tag.Location": ["Dallas"]}} if profile is tagged else {}
        expected = truth(sim.sim, **kwargs)
        assert run.count_new == run.count_total == len(expected) > 0
        found = Finding.objects.filter(project=profile.project).values_list("tenable_finding_id", flat=True)
        assert set(found) == expected
