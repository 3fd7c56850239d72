"""`kdt scan` for a profile bound to "Vulnerability data" (issue 14): the installed command against a live server,
a real Celery worker, the simulator, PostgreSQL and Redis — the same command as for a scan profile."""

from __future__ import annotations

import re

import pytest

from projects.models import Finding, Project, ScannerProfile, ScanRun
from tests.api.test_kdt_e2e import SCAN, kdt
from tests.integrations.conftest import make_integration
from tests.projects.test_worker import worker  # noqa: F401  (the real Celery worker fixture)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim():
    from integrations.connectors.tenable_io.simulator import TenableSimulator

    server = TenableSimulator(scans=0, churn=0)
    server.big_scan(hosts=40, findings_per_host=10)
    running = server.serve()
    yield running
    running.stop()


def test_kdt_syncs_a_vulnerability_data_profile(worker, sim, live_server, client, admin_user, kdt_installed):  # noqa: F811
    client.force_login(admin_user)
    page = client.post("/settings/api-tokens/", {"name": "e2e", "expires_in": "30"}).content.decode()
    token = re.search(r'id="new-token-value"[^>]*value="(kdt_[^"]+)"', page).group(1)
    project = Project.objects.create(name="Estate")
    profile = ScannerProfile.objects.create(
        project=project, integration=make_integration(sim.url), name="Everything", meta_data="env=prod",
        source_kind="export", export_scope="all", scope_label="All assets this key can view",
    )  # fmt: skip

    listed = kdt(live_server, token, "list", "profiles", "-p", "Estate")
    assert listed.returncode == 0 and "All assets this key can view" in listed.stdout, (
        listed.stdout + listed.stderr
    )

    ok = kdt(live_server, token, *SCAN, "-p", "Estate", "--timeout", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run = ScanRun.objects.get(profile=profile)
    assert run.status == "succeeded" and run.trigger == "cli" and run.count_new == 400
    assert "finished: succeeded" in ok.stdout and "env=prod" in ok.stdout
    assert Finding.objects.filter(project=project).count() == 400
    again = kdt(live_server, token, *SCAN, "-p", "Estate", "--timeout", "2")  # incremental: nothing changed
    assert again.returncode == 0, again.stdout + again.stderr
    second = ScanRun.objects.filter(profile=profile).latest("created_at")
    assert second.status == "succeeded" and second.count_new == 0 and Finding.objects.count() == 400
