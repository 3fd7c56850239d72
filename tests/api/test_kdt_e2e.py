"""`kdt` end to end: the installed command against a live server, a real Celery worker, the simulator, PostgreSQL
and Redis — success (0), threshold (1), failed run (2), timeout (3), bad token (4)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from projects.choices import ACTIVE_RUN_STATUSES
from projects.models import Finding, Project, ScannerProfile, ScanRun
from tests.api.conftest import KDT_PYTHONPATH
from tests.integrations.conftest import make_integration
from tests.projects.test_worker import worker  # noqa: F401  (the real Celery worker fixture)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SCAN = ("scan", "-t", "tenableiovm", "-b", "-", "--poll", "0.3")  # the seed's KDT command, polling fast


@pytest.fixture
def sim():
    from integrations.connectors.tenable_io.simulator import TenableSimulator

    server = TenableSimulator(scans=1, launch_seconds=0.5, hosts_down=0).serve()
    yield server
    server.stop()


def kdt(live_server, token: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed `kdt` as CI would, with KDT_HOST and KDT_TOKEN in the environment."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": KDT_PYTHONPATH,  # this checkout's kdt, not a copy installed from elsewhere
        "KDT_HOST": live_server.url,
        "KDT_TOKEN": token,
    }
    return subprocess.run(
        [sys.executable, "-m", "kdt", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def profile_for(sim, integration, project_name: str, *, start_scan: bool = False, **scan) -> ScannerProfile:
    scan_id = sim.sim.add_scan(f"{project_name} scan", **scan)
    project = Project.objects.create(name=project_name)
    return ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name=f"{project_name} nightly",
        scan_id=scan_id,
        meta_data="env=prod",
        start_scan=start_scan,
    )


def test_kdt_from_ci(worker, sim, live_server, client, admin_user, kdt_installed):  # noqa: F811
    # A token created the way a person does it: Settings › API Tokens.
    client.force_login(admin_user)
    page = client.post("/settings/api-tokens/", {"name": "e2e", "expires_in": "30"}).content.decode()
    token = re.search(r'id="new-token-value"[^>]*value="(kdt_[^"]+)"', page).group(1)

    integration = make_integration(sim.url)
    shop = profile_for(sim, integration, "Shop", hosts=6, findings_per_host=12)
    broken = profile_for(sim, integration, "Launchpad", start_scan=True, hosts=2, findings_per_host=3)
    sim.sim.set_launch_outcome(broken.scan_id, "aborted")
    slow = profile_for(sim, integration, "Slowpoke", hosts=2, findings_per_host=3)
    sim.sim.set_fault("slow", scan_id=slow.scan_id, path="/download", seconds=20)

    listed = kdt(live_server, token, "list", "scanners")
    assert listed.returncode == 0 and "tenableiovm" in listed.stdout, listed.stderr
    projects = kdt(live_server, token, "list", "projects", "--json")
    assert {p["name"] for p in json.loads(projects.stdout)} == {"Shop", "Launchpad", "Slowpoke"}

    # 0: the run succeeds; each phase is printed, then the summary.
    ok = kdt(live_server, token, *SCAN, "-p", "Shop", "--timeout", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run = ScanRun.objects.get(profile=shop)
    assert run.status == "succeeded" and run.trigger == "cli" and run.requested_by == admin_user
    assert "queued" in ok.stdout and "finished: succeeded" in ok.stdout
    for column in ("PROJECT", "PROFILE", "META DATA", "TOOL", "CRITICAL", "HIGH", "MEDIUM", "LOW", "NEW", "FIXED", "DATE", "LINK"):  # fmt: skip
        assert column in ok.stdout
    assert "env=prod" in ok.stdout and f"/projects/{shop.project_id}/runs/{run.pk}/" in ok.stdout

    # 1: a threshold the project's open findings exceed.
    open_high = Finding.objects.filter(project=shop.project, effective_severity=3, state="open").count()
    assert open_high > 0
    breach = kdt(
        live_server,
        token,
        *SCAN,
        "-p",
        "Shop",
        "--threshold-high",
        "0",
        "--threshold-crit",
        "100000",
        "--json",
    )
    assert breach.returncode == 1, breach.stdout + breach.stderr
    result = json.loads(breach.stdout)
    assert result["status"] == "succeeded" and result["open_findings"]["high"] == open_high
    assert result["threshold_breaches"] == [f"{open_high} open high findings exceed the threshold of 0"]
    assert "Threshold exceeded" in breach.stderr

    # 2: the launched Tenable scan is aborted, so the run fails.
    failed = kdt(live_server, token, *SCAN, "-p", "Launchpad")
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "aborted" in failed.stdout and "failed" in failed.stdout

    # 4: a wrong token, before anything starts.
    denied = kdt(live_server, "kdt_wrong", *SCAN, "-p", "Shop")
    assert denied.returncode == 4 and "Authentication failed" in denied.stderr
    assert ScanRun.objects.filter(profile=shop).count() == 2  # nothing started

    # --async: the run id, at once.
    queued = kdt(live_server, token, *SCAN, "-p", "Shop", "--async")
    assert queued.returncode == 0, queued.stderr
    async_run = ScanRun.objects.get(pk=int(queued.stdout.strip()))
    assert async_run.profile == shop and async_run.trigger == "cli"
    deadline = time.monotonic() + 60
    while ScanRun.objects.filter(pk=async_run.pk, status__in=ACTIVE_RUN_STATUSES).exists():
        assert time.monotonic() < deadline, "the --async run never finished"
        time.sleep(0.2)

    # 3: the export download hangs longer than --timeout; the run goes on on the server.
    late = kdt(live_server, token, *SCAN, "-p", "Slowpoke", "--timeout", "0.1")
    assert late.returncode == 3, late.stdout + late.stderr
    assert "Timed out after 0.1 minutes" in late.stderr
    assert ScanRun.objects.get(profile=slow).status in ("queued", "exporting", "importing")
