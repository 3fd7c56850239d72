"""What a first-time user stumbled on (issue 12 §8, §9), measured in Chromium: the findings table's last column
keeps its padding, the profiles table keeps its buttons on one line, CVSS vectors wrap only at slashes,
Tenable's hard-wrapped text reads as paragraphs, tab titles have their separator, "just now", and a queued run
that no worker takes says so while you watch."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from projects.models import Plugin, ScannerProfile, ScanRun
from tests.conftest import login, make_project
from tests.integrations.conftest import make_integration
from tests.projects.test_findings import make_asset, make_finding, make_plugin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESCRIPTION = (
    "The X.509 certificate chain for this service is not signed by a\n"
    "recognized certificate authority.  If the remote host is a public host\n"
    "in production, this nullifies the use of SSL as anyone could\n"
    "establish a man-in-the-middle attack against the remote host.\n"
    "\n"
    "  - An information disclosure vulnerability exists in the\n"
    "    handling of renegotiation. (CVE-2023-0001)"
)
CVSS3 = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"
CVSS2 = "CVSS2#AV:N/AC:L/Au:N/C:P/I:P/A:P"


def shot(page, name: str) -> None:
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"{name}.png"), full_page=True)


@pytest.fixture
def project(member):
    project = make_project("Payments", members=[member])
    host = make_asset(project, "esx003.corp.example.com", "10.104.0.3")
    for i in range(6):
        plugin = make_plugin(
            200180 + i,
            f"Ubuntu 22.04 LTS : python3.10 vulnerabilities (USN-7180-{i})",
            family="Ubuntu Local Security Checks",
        )
        make_finding(project, host, plugin, severity=3, port=443 + i)
    return project


def test_findings_table_keeps_its_last_column_off_the_card_edge(page, project):
    login(page, "member")
    for width in (1360, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/projects/{project.pk}/findings/")
        shot(page, f"findings-{width}")
        box = page.evaluate(
            """() => {
              const wrap = document.querySelector('#findings-results .table-wrap');
              const cell = document.querySelector('#findings-results tbody tr').lastElementChild;
              const text = document.createRange();
              text.selectNodeContents(cell);
              return {scroll: wrap.scrollWidth, visible: wrap.clientWidth,
                      card: wrap.closest('.card').getBoundingClientRect().right,
                      text: text.getBoundingClientRect().right};
            }"""
        )
        assert box["scroll"] <= box["visible"], f"{width}px: the table scrolls sideways: {box}"
        assert box["card"] - box["text"] >= 12, f"{width}px: the last column touches the card edge: {box}"


def test_profiles_table_keeps_run_now_edit_and_delete_on_one_line(page, member, admin_user):
    project = make_project("Payments", members=[member])
    integration = make_integration("http://127.0.0.1:9", name="Tenable.io VM — production tenant")
    ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name="Web tier weekly with a descriptive name",
        scan_id=5,
        scan_name="Quarterly external perimeter scan of every customer-facing web tier",
        meta_data="m",
        scan_tag="perimeter",
        scheduler_enabled=True,
        start_scan=True,
        severity_shift=1,
        webhook_url="https://hooks.example.com/tenable",
    )
    login(page, "admin")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/projects/{project.pk}/settings/scanners/")
    shot(page, "profiles-1280")
    tops = [
        page.get_by_role(role, name=name).bounding_box()["y"]
        for role, name in (("button", "Run now"), ("link", "Edit Web tier"), ("link", "Delete Web tier"))
    ]
    assert max(tops) - min(tops) < 2, f"the buttons wrap: tops {tops}"


def test_finding_page_reflows_tenable_text_and_wraps_vectors_at_slashes(page, project):
    finding = project.findings.first()
    Plugin.objects.filter(pk=finding.plugin_id).update(
        description=DESCRIPTION,
        cvss3_vector=CVSS3,
        cvss3_base_score=9.3,
        cvss_vector=CVSS2,
        cvss_base_score=8.5,
    )
    login(page, "member")
    page.goto(finding.get_absolute_url())
    shot(page, "finding")
    description = page.locator(".prose .tenable-text").first
    expect(description.locator("p").first).to_have_text(
        "The X.509 certificate chain for this service is not signed by a recognized certificate authority. "
        "If the remote host is a public host in production, this nullifies the use of SSL as anyone could "
        "establish a man-in-the-middle attack against the remote host."
    )
    expect(description.locator("li")).to_have_text(
        "An information disclosure vulnerability exists in the handling of renegotiation. (CVE-2023-0001)"
    )
    assert page.locator(".prose br").count() == 0

    # Where each vector wraps: the character before every line break is a slash.
    for vector in (CVSS3, CVSS2):
        lines = page.locator(".cvss-vector", has_text=vector.split("/")[0]).evaluate(
            """el => {
              const text = el.textContent, range = document.createRange(), lines = [];
              let node = el.firstChild, offset = 0, top = null, line = '';
              const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
              while ((node = walker.nextNode())) {
                for (offset = 0; offset < node.length; offset++) {
                  range.setStart(node, offset); range.setEnd(node, offset + 1);
                  const y = Math.round(range.getBoundingClientRect().top);
                  if (top !== null && y > top + 2) { lines.push(line); line = ''; }
                  top = y; line += node.data[offset];
                }
              }
              lines.push(line);
              return {lines, fits: el.scrollWidth <= el.clientWidth};
            }"""
        )
        assert "".join(lines["lines"]) == vector and lines["fits"], lines
        assert len(lines["lines"]) > 1, "the Scores card is narrower than the vector, so it must wrap"
        assert all(line.endswith("/") for line in lines["lines"][:-1]), lines["lines"]


def test_tab_titles_have_their_separator(page, project):
    page.goto("/login/")
    assert page.title() == "Sign in · Tenable Console"
    login(page, "member")
    page.goto(f"/projects/{project.pk}/findings/")
    assert page.title().endswith(" · Tenable Console") and page.title() != " · Tenable Console"


def test_last_run_just_now_and_a_run_no_worker_takes(page, member):
    project = make_project("Payments", members=[member])
    profile = ScannerProfile.objects.create(
        project=project,
        integration=make_integration("http://127.0.0.1:9"),
        name="Weekly",
        scan_id=5,
        meta_data="m",
    )
    run = ScanRun.objects.create(project=project, profile=profile, message="Waiting for a worker")
    ScanRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=27))
    login(page, "member")
    page.goto(f"/projects/{project.pk}/settings/scanners/")
    expect(page.locator(f"#profile-{profile.pk}")).to_contain_text("just now")
    expect(page.locator(f"#profile-{profile.pk}")).not_to_contain_text("0 minutes ago")

    page.goto(run.get_absolute_url())
    card = page.locator(f"#run-{run.pk}")
    expect(card.get_by_text("Waiting for a worker", exact=True)).to_have_count(1)
    expect(card).not_to_contain_text("No worker has picked")
    # The page polls the run: once 30 s have passed it says so, and what to check.
    expect(card).to_contain_text("No worker has picked this run up in the", timeout=10_000)
    expect(card).to_contain_text("Check that a Celery worker is running")
    shot(page, "run-no-worker")
    assert page.dialogs == []
