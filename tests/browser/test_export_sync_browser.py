"""Issue 14 as a user reads it: with the least-privilege Basic key, Add Scanner › Bind to › Vulnerability data ›
All assets this key can view; the drawer says what it covers and which role a scan would need; Run now shows the
chunks coming in; the findings are there to review."""

from __future__ import annotations

import os
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from accounts.choices import Role
from integrations.connectors.tenable_io.simulator import TenableSimulator
from projects.models import Project, ScannerProfile
from projects.runs.services import execute_run
from tests.conftest import login, make_user
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    directory = os.environ.get("SCREENSHOT_DIR")
    if directory:
        page.screenshot(path=os.path.join(directory, f"issue14-{name}.png"), full_page=True)


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


def test_a_basic_key_syncs_all_it_may_view_and_the_findings_are_reviewed(
    page, watch, worker_thread, postgres_required, settings
):
    """(PostgreSQL only, like test_run_progress: a worker thread writing beside the live server needs real locks.)"""
    settings.EXPORT_CHUNK_DOWNLOADS, settings.EXPORT_NUM_ASSETS = 1, 50
    settings.TENABLE_POLL_INITIAL, settings.EXPORT_POLL_MAX = 0.2, 0.5
    sim = TenableSimulator(export_chunks_per_poll=1)
    sim.set_fault("slow", path="/chunks/", seconds=1.5)  # chunks come in one by one, slowly enough to watch
    server = sim.serve()
    try:
        make_user("secadmin", Role.ADMIN)
        make_integration(server.url, SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY)
        project = Project.objects.create(name="Payments")
        expected = sim.vulns(key=SIM_BASIC_ACCESS_KEY, states=["OPEN", "REOPENED", "FIXED"], since=0)
        login(page, "secadmin")
        page.goto(f"/projects/{project.pk}/settings/scanners/")
        page.get_by_role("link", name="Add Scanner").first.click()
        drawer = page.locator("#drawer")
        drawer.get_by_text("Infra", exact=True).click()
        drawer.get_by_role("radio", name=re.compile("Tenable.io VM")).check()
        drawer.get_by_role("button", name="Add").click()
        expect(drawer.get_by_role("heading", name="Add Tenable.io VM scanner")).to_be_visible()

        bind_to = drawer.get_by_label("Bind to")
        summary = drawer.locator("#scan-summary")
        # A scan: this key may list it but not read it, and the drawer says which role that needs.
        bind_to.select_option(str(sim.scan_id("completed")))
        expect(summary.get_by_text("This API key cannot read or import this scan")).to_be_visible()
        expect(summary.get_by_text(re.compile("Basic role.*Scan Operator role"))).to_be_visible()
        expect(drawer.get_by_role("checkbox", name="Start Scan")).to_be_visible()
        shot(page, "scan-needs-a-role")

        # Vulnerability data: what it covers, the key's role and visibility, the sync settings, no Start Scan.
        group = bind_to.locator("optgroup[label='Vulnerability data'] option")
        expect(group).to_have_text(["All assets this key can view", "Location: Dallas"])
        bind_to.select_option("scope:all")
        expect(summary.get_by_text("Every asset this key may view in Tenable.io")).to_be_visible()
        expect(summary.get_by_text("Basic", exact=True)).to_be_visible()
        expect(summary.locator(".chip-tag", has_text="Location: Dallas")).to_be_visible()
        expect(drawer.get_by_role("checkbox", name="Start Scan")).to_be_hidden()
        expect(drawer.get_by_text("Start Scan does not apply to vulnerability data")).to_be_visible()
        expect(drawer.get_by_role("checkbox", name="Critical", exact=True)).to_be_checked()
        expect(drawer.get_by_role("checkbox", name="Info", exact=True)).to_be_checked()
        expect(drawer.get_by_role("checkbox", name="Include unlicensed assets")).not_to_be_checked()
        expect(drawer.get_by_label("First sync window (days)")).to_have_value("")
        shot(page, "drawer-vulnerability-data")
        drawer.get_by_text("Start Scan does not apply to vulnerability data").scroll_into_view_if_needed()
        shot(page, "drawer-sync-settings")

        drawer.get_by_label("Profile Name").fill("Everything Dallas")
        drawer.get_by_label("Meta Data").fill("owner=secops")
        drawer.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Scanner profile Everything Dallas added.")).to_be_visible()
        row = page.locator("#profiles tr", has_text="Everything Dallas")
        expect(row.get_by_text("All assets this key can view")).to_be_visible()
        expect(row.get_by_text("Vulnerability data · not synced yet")).to_be_visible()
        shot(page, "profiles")

        sim.set_fault("export_queued", path="/vulns/export/", times=15)  # Tenable takes a few polls to start
        row.get_by_role("button", name="Run now").click()
        run_card = page.locator(".run-progress")
        expect(run_card.locator(".phases li.current")).to_have_text("Tenable preparing", timeout=20_000)
        expect(
            run_card.get_by_text(re.compile(r"Tenable.io is preparing the export \(QUEUED, \d+ s\)"))
        ).to_be_visible()
        shot(page, "run-preparing")
        expect(run_card.locator(".phases li.current")).to_have_text("Merging chunks", timeout=20_000)
        expect(
            run_card.get_by_text(
                re.compile(r"Chunks: \d+ of \d+ downloaded( \(\d downloading\))?, \d+ merged")
            )
        ).to_be_visible()
        shot(page, "run-merging")
        expect(page.get_by_text("Succeeded", exact=True)).to_be_visible(timeout=60_000)
        expect(run_card.locator(".stat", has_text="New").locator(".value")).to_have_text(f"{len(expected):,}")
        expect(run_card.get_by_text(re.compile(r"Synced [\d,]+ findings on \d+ hosts"))).to_be_visible()
        shot(page, "run-succeeded")

        page.get_by_role("link", name="Review new findings").click()
        expect(page.locator("table").first).to_be_visible()
        shot(page, "findings")
        profile = ScannerProfile.objects.get()
        recast = project.findings.filter(severity_modification="RECASTED").first()
        assert recast is not None and profile.sync_cursor is not None
        page.goto(recast.get_absolute_url())
        expect(page.get_by_text("Recast in Tenable.io")).to_be_visible()
        expect(page.get_by_text("Plugin default")).to_be_visible()
        expect(page.get_by_text(recast.tenable_finding_id)).to_be_visible()
        shot(page, "finding-recast")
        fixed = project.findings.filter(state="fixed").first()
        page.goto(fixed.get_absolute_url())
        expect(page.get_by_text("Fixed in Tenable.io.")).to_be_visible()
        watch.assert_clean()
    finally:
        server.stop()
