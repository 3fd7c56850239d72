"""A real Celery worker against Redis and PostgreSQL, importing from the simulator over HTTP (RELIABILITY C1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from projects.choices import RunStatus
from projects.models import Finding, Project, ScannerProfile, ScanRun
from projects.runs.services import request_run
from tests.integrations.conftest import make_integration

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(postgres_required, redis_url, settings, tmp_path):
    """`celery worker` in a subprocess on the test database, with one pool process; yields its Popen."""
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
        "CONN_MAX_AGE": "0",
        "TENABLE_API_HOSTS": "127.0.0.1",
    }
    from config.celery import app

    app.control.purge()
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "imports,celery", "-c", "1", "-P", "prefork",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def sim(settings):
    from integrations.connectors.tenable_io.simulator import TenableSimulator

    server = TenableSimulator(scans=1, launch_seconds=0.5, hosts_down=1).serve()
    yield server
    server.stop()


def _profile(sim, **fields) -> ScannerProfile:
    scan_id = sim.sim.add_scan("Worker scan", hosts=12, findings_per_host=25, runs=1)
    project = Project.objects.create(name="Worker")
    return ScannerProfile.objects.create(
        project=project,
        integration=make_integration(sim.url),
        name="Nightly",
        scan_id=scan_id,
        meta_data="m",
        **fields,
    )


def _wait(run: ScanRun, statuses, timeout: float = 90) -> ScanRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.2)
    pytest.fail(f"run #{run.pk} stayed {run.status} ({run.message}) for {timeout} s")


def test_worker_imports_a_scan_then_a_changed_run(worker, sim):
    profile = _profile(sim, severity_shift=-1)
    first = _wait(request_run(profile), {RunStatus.SUCCEEDED, RunStatus.FAILED})
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert first.count_new == first.count_total == Finding.objects.count() > 0
    assert not Finding.objects.filter(severity__gt=0, effective_severity__gte=models_f("severity")).exists()
    triaged = Finding.objects.order_by("pk").first()
    Finding.objects.filter(pk=triaged.pk).update(triage="risk_accepted", triage_reason="compensating control")

    ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=True)
    profile.refresh_from_db()
    second = _wait(request_run(profile), {RunStatus.SUCCEEDED, RunStatus.FAILED})
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert second.tenable_run_uuid and second.tenable_run_uuid != first.tenable_run_uuid
    assert second.count_new > 0 and second.count_fixed > 0
    assert second.count_new + second.count_unchanged + second.count_reopened == second.count_total
    assert (
        Finding.objects.exclude(state="fixed").filter(asset__run_assets__run=second).count()
        == second.count_total
    )
    triaged.refresh_from_db()
    assert triaged.triage == "risk_accepted" and triaged.triage_reason == "compensating control"


def test_killed_pool_process_is_retried_without_duplicates(worker, sim):
    profile = _profile(sim)
    sim.sim.set_fault("slow", scan_id=profile.scan_id, path="/download", seconds=4, times=1)
    run = _wait(
        request_run(profile), {RunStatus.EXPORTING, RunStatus.IMPORTING, RunStatus.SUCCEEDED}, timeout=60
    )
    assert run.status != RunStatus.SUCCEEDED, "the run finished before it could be interrupted"
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert children, "no pool process found"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)  # the pool child dies mid-run, as with the OOM killer
    run = _wait(run, {RunStatus.SUCCEEDED, RunStatus.FAILED}, timeout=90)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert Finding.objects.count() == run.count_total == run.count_new


def models_f(name):
    from django.db.models import F

    return F(name)
