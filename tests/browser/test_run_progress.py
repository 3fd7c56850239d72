"""Run now, watch the progress bar finish, see the counts (issue 6)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from accounts.choices import Role
from integrations.connectors.tenable_io.simulator import TenableSimulator
from projects.models import Project, ScannerProfile
from projects.runs.services import execute_run
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_thread(monkeypatch):
    """Stand in for the Celery worker: execute each published run on a thread, as a worker process would."""

    def publish(run_id: int) -> None:
        def work():
            try:
                execute_run(run_id)
            finally:
                connection.close()

        threading.Thread(target=work, daemon=True).start()

    monkeypatch.setattr("projects.runs.services._publish", publish)


def test_run_now_shows_progress_then_counts(page, worker_thread, postgres_required):
    """(PostgreSQL only: a worker thread writing beside the live server needs real locks; SQLite's shared-cache
    in-memory test database fails table locks at once instead of waiting, which made this flaky.)"""
    server = TenableSimulator(scans=1).serve()
    try:
        scan_id = server.sim.add_scan("Web tier", hosts=10, findings_per_host=20)
        server.sim.set_fault("slow", scan_id=scan_id, path="/download", seconds=2, times=1)
        make_user("secadmin", Role.ADMIN)
        project = Project.objects.create(name="Payments")
        ScannerProfile.objects.create(
            project=project,
            integration=make_integration(server.url),
            name="Weekly",
            scan_id=scan_id,
            meta_data="m",
        )
        login(page, "secadmin")
        page.goto(f"/projects/{project.pk}/settings/scanners/")
        page.get_by_role("button", name="Run now").click()
        bar = page.get_by_role("progressbar", name="Run progress")
        expect(bar).to_be_visible()
        expect(page.get_by_text("Exporting the results from Tenable.io")).to_be_visible(timeout=10_000)
        expect(page.get_by_text("Succeeded", exact=True)).to_be_visible(timeout=20_000)
        expect(bar).to_have_attribute("aria-valuenow", "100")
        new = page.locator(".stat", has_text="New")
        expect(new.locator(".value")).to_have_text("200")
        expect(page.get_by_text("Imported 200 findings from 10 hosts")).to_be_visible()
        assert page.dialogs == []
    finally:
        server.stop()
        time.sleep(0.1)
