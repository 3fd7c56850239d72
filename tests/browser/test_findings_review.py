"""Reviewing findings in a browser: filter to High and open, mark one false positive and watch it leave the
list, accept a risk until a date, export the CSV, and see the overview's charts. No JS dialog may fire."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import login, make_project
from tests.projects.test_findings import XSS, make_asset, make_finding, make_plugin, make_profile, make_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded(member):
    project = make_project("Payments", members=[member])
    profile = make_profile(project, "DMZ weekly")
    for i in range(3):
        make_run(
            project,
            profile,
            days_ago=14 - i * 7,
            count_by_severity={"4": 1, "3": 3 + i, "2": 2, "1": 1},
            count_new=i,
            count_fixed=1,
            count_reopened=0,
        )
    web = make_asset(project, "web-01.example.com", "10.0.0.1", last_seen=timezone.now())
    db = make_asset(project, XSS, "10.0.0.2", last_seen=timezone.now())
    highs = [
        make_finding(project, host, make_plugin(100 + i, f"High issue {i}"), severity=3, port=443 + i)
        for i, host in enumerate([web, web, db])
    ]
    make_finding(project, web, make_plugin(200, "Medium issue"), severity=2)
    make_finding(project, db, make_plugin(201, "Critical issue"), severity=4, plugin_output=XSS)
    make_finding(project, web, make_plugin(202, "High but fixed"), severity=3, state="fixed")
    return {"project": project, "highs": highs}


def result_rows(page):
    return page.locator("#findings-results tbody tr")


def settle(page) -> None:
    """Wait until htmx has no request in flight, so a swap cannot replace what the test clicks next."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_filter_triage_and_export(page, seeded):
    project = seeded["project"]
    login(page, "member")
    page.goto(f"/projects/{project.pk}/findings/")
    expect(result_rows(page)).to_have_count(5)

    page.locator('input[name="severity"][value="3"]').check()
    page.wait_for_url(re.compile(r"severity=3"))
    settle(page)
    page.get_by_label("State").select_option("open")
    settle(page)
    expect(result_rows(page)).to_have_count(3)
    expect(page.locator("#findings-results")).not_to_contain_text("High but fixed")
    assert "state=open" in page.url

    # Mark one false positive from the bulk bar: it leaves the open, untriaged list.
    row = result_rows(page).filter(has_text="High issue 0")
    row.locator('input[name="ids"]').check()
    expect(page.locator("[data-bulk-count]")).to_have_text("1 selected")
    page.locator("#bulk-triage").select_option("false_positive")
    page.get_by_placeholder("Reason (required)").fill("Load balancer answers for the host")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text("Marked 1 finding as false positive.")).to_be_visible()
    expect(result_rows(page)).to_have_count(2)
    expect(page.locator("#findings-results")).not_to_contain_text("High issue 0")
    assert "severity=3" in page.url  # back to the same filtered view

    # Export exactly what is shown.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
    assert lines[0][:2] == ["host", "ip"]
    assert sorted(line[4] for line in lines[1:]) == ["High issue 1", "High issue 2"]
    assert page.dialogs == []


def test_accept_a_risk_until_a_date(page, seeded):
    project, finding = seeded["project"], seeded["highs"][2]
    until = timezone.localdate() + timedelta(days=30)
    login(page, "member")
    page.goto(f"/projects/{project.pk}/findings/{finding.pk}/")
    expect(page.locator("h1")).to_have_text("High issue 2")
    expect(page.get_by_label("Accept until")).to_be_hidden()  # only for an accepted risk
    page.get_by_label("Risk accepted").check()
    page.get_by_label("Reason").fill("Replaced in the Q3 migration")
    page.get_by_label("Accept until").fill(until.isoformat())
    page.get_by_role("button", name="Save triage").click()
    expect(page.get_by_text("Marked as risk accepted.")).to_be_visible()
    triage = page.locator("#triage")
    expect(triage).to_contain_text("Risk accepted")
    expect(triage).to_contain_text(f"until {until:%b} {until.day}, {until.year}")
    expect(page.locator(".timeline")).to_contain_text("Replaced in the Q3 migration")
    assert page.dialogs == []  # the host name and plugin output are <script> payloads


def test_overview_charts_render(page, seeded):
    project = seeded["project"]
    login(page, "member")
    page.goto(f"/projects/{project.pk}/")
    donut = page.locator("svg.donut")
    expect(donut).to_be_visible()
    expect(donut.locator("circle.donut-seg")).to_have_count(3)  # Critical, High and Medium are open
    expect(page.locator("svg.trend")).to_be_visible()
    expect(page.locator("svg.trend g.trend-bar")).to_have_count(3)
    assert page.locator("svg.trend rect").first.bounding_box()["height"] > 0
    expect(page.locator(".overview-stats")).to_contain_text("Open findings")
    page.get_by_role("link", name=re.compile("High")).first.click()
    page.wait_for_url(re.compile(r"/findings/\?severity=3"))
    expect(result_rows(page)).to_have_count(3)
    assert page.dialogs == []
