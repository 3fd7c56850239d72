"""Project overview (issue #7): open findings by severity, the last run's changes, the trend, profiles with
their last and next run, the riskiest hosts, empty states, scoping and escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from projects.findings.overview import project_overview
from tests.conftest import make_project
from tests.projects.test_findings import XSS, make_asset, make_finding, make_plugin, make_profile, make_run


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(db, member, viewer):
    return make_project("Payments", members=[member], viewers=[viewer])


@pytest.fixture
def populated(project):
    today = timezone.localdate()
    profile = make_profile(project, "DMZ weekly")
    runs = [
        make_run(
            project,
            profile,
            days_ago=30 - i * 7,
            count_by_severity={"4": i, "3": 2 * i, "2": 5, "1": 1, "0": 9},
            count_total=i * 3 + 15,
            count_new=i,
            count_fixed=2 * i,
            count_reopened=1,
        )
        for i in range(4)
    ]
    make_run(project, profile, days_ago=0.1, status="failed")  # not part of the trend
    a = make_asset(project, "a.example.com", "10.0.0.1")
    b = make_asset(project, "b.example.com", "10.0.0.2")
    c = make_asset(project, "c.example.com", "10.0.0.3")
    p = iter(range(1, 100))

    def f(asset, severity, **extra):
        return make_finding(project, asset, make_plugin(next(p)), severity=severity, **extra)

    f(a, 4), f(a, 4), f(a, 3)  # a: 2 critical, 1 high
    f(b, 4), f(b, 3), f(b, 3), f(b, 3)  # b: 1 critical, 3 high
    f(c, 3), f(c, 2), f(c, 0)  # c: 1 high
    f(c, 4, triage="false_positive", triage_reason="lab")  # triaged: not counted
    f(c, 4, triage="risk_accepted", triage_reason="x", triage_until=today + timedelta(days=9))  # not counted
    f(
        c, 4, triage="risk_accepted", triage_reason="x", triage_until=today - timedelta(days=1)
    )  # expired: counted
    f(a, 4, state="fixed")  # fixed: not counted
    f(a, 1, state="reopened")  # reopened counts as open
    return {"profile": profile, "runs": runs, "a": a, "b": b, "c": c}


def detail(project):
    return reverse("projects:detail", args=[project.pk])


def test_open_findings_by_severity(member_client, project, populated):
    response = member_client.get(detail(project))
    assert response.status_code == 200
    ctx = response.context
    assert ctx["open_by_severity"] == {4: 4, 3: 5, 2: 1, 1: 1, 0: 1}
    assert ctx["open_total"] == 12
    assert ctx["triaged_open"] == 2
    donut = {s["severity"]: s for s in ctx["donut"]}
    assert donut[4]["count"] == 4 and donut[4]["percent"] == pytest.approx(33.3)
    body = response.content.decode()
    assert '<svg class="donut"' in body and body.count('class="donut-seg') == 5
    # Each legend entry links to the same numbers in the findings list.
    findings_url = reverse("projects:findings", args=[project.pk])
    assert f'href="{findings_url}?severity=4&amp;state=open&amp;triage=none"' in body
    listing = member_client.get(f"{findings_url}?severity=4&state=open&triage=none")
    assert len(listing.context["page"].rows) == 4


def test_changes_since_the_previous_run(member_client, project, populated):
    latest = populated["runs"][-1]
    response = member_client.get(detail(project))
    assert response.context["latest_run"] == latest
    body = response.content.decode()
    for change, value in (
        ("new", latest.count_new),
        ("fixed", latest.count_fixed),
        ("reopened", latest.count_reopened),
    ):
        assert f"run={latest.pk}&amp;change={change}" in body
        assert re.search(rf'value( stat-{change})?">{value}<', body)


def test_trend_over_runs(member_client, project, populated):
    response = member_client.get(detail(project))
    bars = response.context["trend"]["bars"]
    assert [bar["run"] for bar in bars] == populated["runs"]  # oldest first, succeeded only
    assert [bar["total"] for bar in bars] == [6, 9, 12, 15]  # Low..Critical
    assert bars[0]["info"] == 9
    tallest = bars[-1]
    assert sum(float(s["h"]) for s in tallest["segments"]) == pytest.approx(
        response.context["trend"]["height"]
    )
    body = response.content.decode()
    assert '<svg class="trend"' in body and body.count('class="trend-bar"') == 4


def test_top_hosts_by_critical_then_high(member_client, project, populated):
    top = member_client.get(detail(project)).context["top_hosts"]
    assert [(row["asset"].name, row["critical"], row["high"]) for row in top] == [
        ("a.example.com", 2, 1),
        ("b.example.com", 1, 3),
        ("c.example.com", 1, 1),  # the expired acceptance counts; the active triage does not
    ]


def test_top_hosts_limit_is_exact_when_triage_reorders(project, populated):
    a, b = populated["a"], populated["b"]
    # Triage both of a's criticals: a drops below b and c. Counted without triage, c (3 criticals) and a
    # rank above b, so the top one is only right if the query looks past the hosts that have triage.
    from projects.findings.overview import top_hosts
    from projects.models import Finding

    Finding.objects.filter(asset=a, effective_severity=4, state="open").update(triage="false_positive")
    rows = project_overview(project)["top_hosts"]
    assert [row["asset"] for row in rows] == [b, populated["c"], a]
    assert [row["asset"] for row in top_hosts(project, limit=1)] == [b]


def test_profiles_with_last_and_next_run(member_client, project, populated, monkeypatch):
    from projects.findings import overview as findings

    failed = project.runs.order_by("-created_at").first()
    profiles = member_client.get(detail(project)).context["profiles"]
    assert profiles[0].latest_run == failed and profiles[0].latest_run_badge == "danger"
    assert profiles[0].next_run is None
    body = member_client.get(detail(project)).content.decode()
    assert "DMZ weekly" in body and "Failed" in body

    # When the profile's schedule is on, the next run comes from projects.profiles.schedules.next_run_at.
    at = timezone.now() + timedelta(hours=5)
    monkeypatch.setattr(findings, "next_run_at", lambda profile: at)
    populated["profile"].__class__.objects.filter(pk=populated["profile"].pk).update(scheduler_enabled=True)
    profiles = member_client.get(detail(project)).context["profiles"]
    assert profiles[0].next_run == at


def test_next_run_guard_survives_errors(project, monkeypatch):
    from projects.findings import overview as findings

    profile = make_profile(project)
    profile.scheduler_enabled = True

    def boom(_):
        raise RuntimeError("schedule broken")

    from projects.profiles import schedules

    monkeypatch.setattr(schedules, "next_run_at", boom)
    assert findings.next_run_at(profile) is None


def test_empty_project_says_what_to_do(member_client, project):
    response = member_client.get(detail(project))
    body = response.content.decode()
    assert "No findings yet" in body
    assert "Settings › Scanners" in body
    try:
        scanners = reverse("projects:scanners", args=[project.pk])
    except NoReverseMatch:
        scanners = None
    if scanners:
        assert f'href="{scanners}"' in body


def test_profiles_but_no_findings(member_client, project):
    make_profile(project, "Internal daily")
    body = member_client.get(detail(project)).content.decode()
    assert "No findings imported yet" in body and "Internal daily" in body and "Never run" in body


def test_viewer_reads_outsider_404(viewer_client, outsider, client, project, populated):
    assert viewer_client.get(detail(project)).status_code == 200
    client.force_login(outsider)
    assert client.get(detail(project)).status_code == 404


def test_numbers_never_include_other_projects(member_client, project, populated, outsider):
    other = make_project("Other", members=[outsider])
    host = make_asset(other, "SECRET-HOST")
    for i in range(5):
        make_finding(other, host, make_plugin(500 + i), severity=4)
    response = member_client.get(detail(project))
    assert response.context["open_by_severity"][4] == 4
    assert "SECRET-HOST" not in response.content.decode()


def test_overview_escapes_host_names(member_client, project, populated):
    make_finding(project, make_asset(project, XSS, "10.6.6.6"), make_plugin(666), severity=4)
    body = member_client.get(detail(project)).content.decode()
    assert XSS not in body and "&lt;script&gt;" in body
