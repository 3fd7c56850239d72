"""Findings review (issue #7): the list's filters, sorts, grouping and pages; CSV; the finding and host pages;
project scoping (W3), escaping (W5), hostile query strings (W6) and query counts that do not grow with rows."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from projects.findings.csv_export import csv_cell
from projects.findings.filters import SORTS, FindingFilters
from projects.models import Asset, Finding, FindingEvent, Plugin, RunAsset, ScannerProfile, ScanRun
from tests.conftest import make_project

XSS = "<script>alert(1)</script>"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The personas' password hashing would dominate these tests' run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# ---------------------------------------------------------------------------
# Factories (also used by test_triage.py and test_overview.py)
# ---------------------------------------------------------------------------
def make_plugin(plugin_id: int, name: str = "", **extra) -> Plugin:
    defaults = {"name": name or f"Plugin {plugin_id}", "family": "General", **extra}
    return Plugin.objects.update_or_create(plugin_id=plugin_id, defaults=defaults)[0]


def make_asset(project, name: str, ip: str = "", **extra) -> Asset:
    return Asset.objects.create(project=project, identity=ip or name, name=name, ip=ip, **extra)


def make_profile(project, name: str = "Weekly", shift: int = 0) -> ScannerProfile:
    from integrations.models import Integration

    integration, _ = Integration.objects.get_or_create(name="Tenable", defaults={"connector": "tenableiovm"})
    return ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name=name,
        scan_id=1,
        meta_data="team=x",
        severity_shift=shift,
    )


def make_run(project, profile=None, days_ago: float = 0, **fields) -> ScanRun:
    run = ScanRun.objects.create(project=project, profile=profile, **{"status": "succeeded", **fields})
    at = timezone.now() - timedelta(days=days_ago)
    ScanRun.objects.filter(pk=run.pk).update(created_at=at, started_at=at, finished_at=at)
    run.refresh_from_db()
    return run


def make_finding(
    project, asset: Asset, plugin: Plugin, *, severity: int = 2, effective: int | None = None, **extra
):
    now = timezone.now()
    fields = {
        "port": 443,
        "protocol": "tcp",
        "state": "open",
        "first_seen": now - timedelta(days=3),
        "last_seen": now - timedelta(days=3),
        **extra,
    }
    return Finding.objects.create(
        project=project,
        asset=asset,
        plugin=plugin,
        fingerprint=uuid.uuid4(),
        severity=severity,
        effective_severity=severity if effective is None else effective,
        **fields,
    )


def rows(response) -> list:
    return list(response.context["page"].rows)


def names(response) -> set[str]:
    """The plugin names of the flat list's rows (each test finding has its own plugin)."""
    return {f.plugin.name for f in rows(response)}


# ---------------------------------------------------------------------------
# One project with one finding of every kind, and another project with a sentinel
# ---------------------------------------------------------------------------
@pytest.fixture
def world(db, member, viewer, outsider):
    now = timezone.now()
    today = timezone.localdate()
    project = make_project("Payments", members=[member], viewers=[viewer])
    plain = make_profile(project, "Internal")
    plus = make_profile(project, "DMZ", shift=1)
    r1 = make_run(project, plain, days_ago=20, count_total=5)
    r2 = make_run(project, plus, days_ago=1, count_total=6)
    web = make_asset(project, "web-01.example.com", "10.0.0.1", last_seen=now, os="Ubuntu 22.04")
    db_ = make_asset(project, "db-01.example.com", "10.0.0.2", last_seen=now - timedelta(days=10))
    for run in (r1, r2):
        RunAsset.objects.create(run=run, asset=web)
        RunAsset.objects.create(run=run, asset=db_)

    def f(key, asset, plugin_id, **extra):
        plugin = make_plugin(
            plugin_id, key, family=extra.pop("family", "General"), cves=extra.pop("cves", [])
        )
        return make_finding(project, asset, plugin, **extra)

    findings = {
        "crit": f(
            "crit",
            web,
            1001,
            severity=4,
            cves=["CVE-2021-44228"],
            family="Misc.",
            profile=plain,
            first_run=r1,
            first_seen=now - timedelta(days=20),
        ),
        "shifted": f(
            "shifted",
            db_,
            1002,
            severity=2,
            effective=3,
            port=5432,
            profile=plus,
            first_run=r2,
            first_seen=now - timedelta(days=1),
        ),
        "fixed": f(
            "fixed",
            web,
            1003,
            severity=3,
            family="Windows",
            port=445,
            state="fixed",
            profile=plain,
            first_run=r1,
            fixed_by_run=r2,
            last_run=r2,
            fixed_at=now - timedelta(days=1),
            last_seen=now - timedelta(days=20),
        ),
        "reopened": f(
            "reopened", db_, 1004, severity=1, state="reopened", profile=plus, last_run=r2, first_run=r1
        ),
        "fp": f("fp", web, 1005, triage="false_positive", triage_reason="test lab"),
        "accepted": f(
            "accepted",
            web,
            1006,
            triage="risk_accepted",
            triage_reason="legacy",
            triage_until=today + timedelta(days=30),
        ),
        "expired": f(
            "expired",
            db_,
            1007,
            triage="risk_accepted",
            triage_reason="legacy",
            triage_until=today - timedelta(days=1),
        ),
        "info": f("info", web, 1008, severity=0, port=0, family="Settings"),
    }
    other = make_project("Other", members=[outsider])
    secret_host = make_asset(other, "SECRET-HOST-Q", "10.9.9.9")
    secret = make_finding(other, secret_host, make_plugin(9009, "SECRET-PLUGIN-Q"), severity=4)
    return {
        "project": project,
        "other": other,
        "secret": secret,
        "secret_host": secret_host,
        "web": web,
        "db": db_,
        "r1": r1,
        "r2": r2,
        "plain": plain,
        "plus": plus,
        **findings,
    }


def url(world, name="findings", *args):
    return reverse(f"projects:{name}", args=[world["project"].pk, *args])


DEFAULT = {"crit", "shifted", "reopened", "expired", "info"}


def test_default_list_is_open_and_untriaged(member_client, world):
    response = member_client.get(url(world))
    assert response.status_code == 200
    assert names(response) == DEFAULT
    assert "SECRET" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("severity=4", {"crit"}),
        ("severity=3", {"shifted"}),  # effective severity, after Severity+
        ("severity=3&severity=4", {"crit", "shifted"}),
        ("severity=3,4", {"crit", "shifted"}),
        ("tenable_severity=2", {"shifted", "expired"}),
        ("tenable_severity=3&state=any&triage=any", {"fixed"}),
        ("state=fixed", {"fixed"}),
        ("state=reopened", {"reopened"}),
        ("state=open", DEFAULT),
        (
            "state=any&triage=any",
            {"crit", "shifted", "fixed", "reopened", "fp", "accepted", "expired", "info"},
        ),
        ("triage=none", DEFAULT),
        ("triage=false_positive", {"fp"}),
        ("triage=risk_accepted", {"accepted"}),
        ("triage=expired", {"expired"}),
        ("q=1002", {"shifted"}),
        ("q=CVE-2021-44228", {"crit"}),
        ("q=cve-2021-44228", {"crit"}),
        ("q=SHIFT", {"shifted"}),
        ("host=db-01", {"shifted", "reopened", "expired"}),
        ("host=10.0.0.1", {"crit", "info"}),
        ("family=Windows&state=any", {"fixed"}),
        ("family=Misc.", {"crit"}),
        ("port=5432", {"shifted"}),
        ("port=0", {"info"}),
        ("run={r2}&change=new", {"shifted"}),
        ("run={r2}&change=fixed", {"fixed"}),  # state defaults to any for "fixed in run"
        ("run={r2}&change=reopened", {"reopened"}),
        ("profile={plus}", {"shifted", "reopened"}),
        ("first_seen_from={d2}", {"shifted", "reopened", "expired", "info"}),
        ("first_seen_to={d10}", {"crit"}),
        (
            "last_seen_to={d5}",
            {"shifted", "reopened", "expired"},
        ),  # open: the host's last seen (db-01, 10 days)
        ("state=fixed&last_seen_to={d5}", {"fixed"}),  # fixed: the finding's own last seen
        ("state=fixed&last_seen_from={d5}", set()),
        ("last_seen_from={today}", {"crit", "info"}),
    ],
)
def test_each_filter(member_client, world, query, expected):
    today = timezone.localdate()
    query = query.format(
        r2=world["r2"].pk,
        plus=world["plus"].pk,
        today=today.isoformat(),
        d2=(today - timedelta(days=4)).isoformat(),
        d5=(today - timedelta(days=5)).isoformat(),
        d10=(today - timedelta(days=10)).isoformat(),
    )
    response = member_client.get(f"{url(world)}?{query}")
    assert response.status_code == 200
    assert names(response) == expected


def test_host_id_filter_and_host_page(member_client, world):
    response = member_client.get(f"{url(world)}?asset={world['db'].pk}")
    assert names(response) == {"shifted", "reopened", "expired"}
    page = member_client.get(url(world, "host", world["db"].pk))
    assert page.status_code == 200
    assert names(page) == {"shifted", "reopened", "expired"}
    # The host page ignores a host filter that would widen it.
    page = member_client.get(url(world, "host", world["db"].pk) + f"?asset={world['web'].pk}&host=web")
    assert names(page) == {"shifted", "reopened", "expired"}


@pytest.mark.parametrize("key", sorted(SORTS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort(member_client, world, key, descending):
    sort = f"-{key}" if descending else key
    response = member_client.get(f"{url(world)}?state=any&triage=any&sort={sort}")
    assert response.status_code == 200
    found = rows(response)
    assert len(found) == 8
    value = {
        "severity": lambda f: f.effective_severity,
        "tenable_severity": lambda f: f.severity,
        "plugin": lambda f: f.plugin.name,
        "plugin_id": lambda f: f.plugin.plugin_id,
        "host": lambda f: f.asset.name,
        "port": lambda f: f.port,
        "state": lambda f: f.state,
        "first_seen": lambda f: f.first_seen,
        "last_seen": lambda f: f.seen_at,
    }[key]
    assert [value(f) for f in found] == sorted((value(f) for f in found), reverse=descending)


def test_last_seen_sort_on_open_findings_uses_the_hosts_last_seen(member_client, world):
    response = member_client.get(f"{url(world)}?sort=-last_seen")
    found = rows(response)
    assert [f.asset.name for f in found][:2] == ["web-01.example.com", "web-01.example.com"]
    assert all(f.seen_at == f.asset.last_seen for f in found)


def test_group_by_plugin_counts_hosts(member_client, world):
    project = world["project"]
    crit_plugin = world["crit"].plugin
    make_finding(project, world["db"], crit_plugin, severity=4, port=8443)
    make_finding(project, world["db"], crit_plugin, severity=4, port=443)
    response = member_client.get(f"{url(world)}?group=plugin")
    assert response.status_code == 200
    groups = {row["plugin_id"]: row for row in rows(response)}
    assert groups[1001]["hosts"] == 2
    assert groups[1001]["findings"] == 3
    assert rows(response)[0]["plugin_id"] == 1001  # worst first
    assert set(groups) == {1001, 1002, 1004, 1007, 1008}
    assert b"SECRET" not in response.content


def test_group_by_host_counts_severities(member_client, world):
    response = member_client.get(f"{url(world)}?group=host")
    groups = {row["asset"].name: row for row in rows(response)}
    assert groups["web-01.example.com"]["critical"] == 1
    assert groups["web-01.example.com"]["info"] == 1
    assert groups["db-01.example.com"]["high"] == 1
    assert groups["db-01.example.com"]["low"] == 1
    assert groups["db-01.example.com"]["findings"] == 3
    assert rows(response)[0]["asset"].name == "web-01.example.com"  # has the critical


def test_htmx_request_gets_only_the_table(member_client, world):
    response = member_client.get(f"{url(world)}?severity=4", headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'form="findings-filters"' in body
    assert names(response) == {"crit"}


def test_filter_form_is_a_get_form_with_htmx(member_client, world):
    body = member_client.get(url(world)).content.decode()
    form = re.search(r'<form id="findings-filters"[^>]*>', body).group(0)
    assert 'method="get"' in form
    assert 'hx-push-url="true"' in form
    assert "keyup changed delay:300ms from:input[name=q]" in form
    assert 'hx-target="#findings-results"' in form


def test_filters_round_trip_through_the_query_string(rf):
    query = (
        "severity=4&severity=3&tenable_severity=2&state=fixed&triage=any&q=log4j&host=web&asset=3&family=Misc."
        "&port=443&profile=2&run=5&change=new&first_seen_from=2024-01-01&first_seen_to=2024-02-01"
        "&last_seen_from=2024-01-05&last_seen_to=2024-03-01&sort=host&group=plugin&page=3"
    )
    filters = FindingFilters.from_query(rf.get(f"/?{query}").GET)
    again = FindingFilters.from_query(rf.get(f"/?{filters.querystring()}").GET)
    assert again == filters
    assert filters.severity == [4, 3]
    assert filters.first_seen_from == date(2024, 1, 1)


# ---------------------------------------------------------------------------
# Pages without COUNT(*) over everything
# ---------------------------------------------------------------------------
def test_pagination_fetches_a_page_and_caps_the_count(member_client, world, settings):
    from projects.findings import queries as findings

    project, web = world["project"], world["web"]
    plugin = make_plugin(2000, "bulk")
    Finding.objects.bulk_create(
        [
            Finding(
                project=project,
                asset=web,
                plugin=plugin,
                fingerprint=uuid.uuid4(),
                port=i,
                severity=1,
                effective_severity=1,
                first_seen=timezone.now(),
                last_seen=timezone.now(),
            )
            for i in range(1, 131)
        ]
    )
    first = member_client.get(f"{url(world)}?q=bulk")
    page = first.context["page"]
    assert (page.start, page.end, page.total, page.has_next) == (1, 50, 130, True)
    third = member_client.get(f"{url(world)}?q=bulk&page=3").context["page"]
    assert (third.start, third.end, third.has_next) == (101, 130, False)
    ids = {f.pk for f in rows(first)} | {f.pk for f in third.rows}
    assert len(ids) == 80

    original = findings.COUNT_CAP
    findings.COUNT_CAP = 60
    try:
        capped = member_client.get(f"{url(world)}?q=bulk")
    finally:
        findings.COUNT_CAP = original
    assert capped.context["page"].capped and capped.context["page"].total is None
    assert "60+" in capped.content.decode()


@pytest.mark.parametrize("page", ["-1", "0", "abc", "99999999999999999999", "1e3", "", "2.5"])
def test_bad_page_numbers_show_a_page(member_client, world, page):
    response = member_client.get(f"{url(world)}?page={page}")
    assert response.status_code == 200
    assert names(response) == DEFAULT


# ---------------------------------------------------------------------------
# W6: hostile or unknown parameters
# ---------------------------------------------------------------------------
HOSTILE = [
    "severity=1' OR 1=1--",
    "severity=1%27%20OR%201%3D1--",
    "sort=-password",
    "sort=project__owner__password",
    "sort=asset__project__name",
    "project__owner__password__startswith=a",
    "project=999&project_id=999",
    "asset__project=999",
    "state=open' OR '1'='1",
    "triage[]=x&triage=__all__",
    "group=project",
    "port=-1&port=70000&port=abc",
    "profile=abc&run=1;DROP TABLE x&change=new",
    "first_seen_from=2024-13-45&last_seen_to=yesterday",
    "q=" + "%25" * 300,
    "q=%00%01",
    "host=%25&host=_",
    "asset=-5",
    "page=-1&sort=-password&severity=9",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_query_strings_never_500_nor_widen(member_client, world, query):
    baseline = {f.pk for f in rows(member_client.get(f"{url(world)}?state=any&triage=any"))}
    for base in ("findings", "findings_csv", "hosts"):
        response = member_client.get(f"{url(world, base)}?{query}")
        assert response.status_code in (200, 400)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"SECRET" not in body
    response = member_client.get(f"{url(world)}?{query}")
    if response.status_code == 200 and "page" in response.context and response.context["filters"].group == "":
        assert {f.pk for f in rows(response)} <= baseline
    for group in ("plugin", "host"):
        assert member_client.get(f"{url(world)}?group={group}&{query}").status_code in (200, 400)


def test_no_orm_injection_shapes_in_the_code():
    """Static guard (W6): no request data splatted into filters, no raw SQL built with f-strings."""
    for path in sorted((ROOT / "projects" / "findings").glob("*.py")):
        source = path.read_text()
        assert not re.search(r"filter\(\*\*request", source), path
        assert not re.search(r"\.(raw|extra)\(", source), path
        assert "cursor" not in source, path


def test_templates_never_mark_imported_text_safe():
    """Static guard (W5): none of this issue's templates use |safe or autoescape off."""
    templates = ROOT / "templates" / "projects"
    files = [
        templates / "detail.html",
        templates / "findings.html",
        templates / "finding.html",
        templates / "hosts.html",
        templates / "host.html",
        *(templates / "partials").glob("_finding*.html"),
        *(templates / "partials").glob("_host*.html"),
        *(templates / "partials").glob("_overview*.html"),
    ]
    for file in files:
        text = file.read_text()
        assert "|safe" not in text and "autoescape off" not in text, file.name


# ---------------------------------------------------------------------------
# W3: another project's objects answer 404 and never leak
# ---------------------------------------------------------------------------
def test_other_projects_finding_host_and_csv_are_404(member_client, world):
    other, secret, secret_host = world["other"], world["secret"], world["secret_host"]
    project = world["project"]
    for path in (
        reverse("projects:findings", args=[other.pk]),
        reverse("projects:findings_csv", args=[other.pk]),
        reverse("projects:hosts", args=[other.pk]),
        reverse("projects:finding", args=[other.pk, secret.pk]),
        reverse("projects:host", args=[other.pk, secret_host.pk]),
        reverse("projects:detail", args=[other.pk]),
        # The other project's ids under our own project's URL.
        reverse("projects:finding", args=[project.pk, secret.pk]),
        reverse("projects:host", args=[project.pk, secret_host.pk]),
    ):
        for headers in ({}, {"HX-Request": "true"}):
            response = member_client.get(path, headers=headers)
            assert response.status_code == 404, path
            assert b"SECRET" not in response.content


def test_filters_naming_another_projects_ids_show_nothing_of_it(member_client, world):
    secret = world["secret"]
    for query in (f"asset={secret.asset_id}", "q=9009", "q=PLUGIN-Q", "host=HOST-Q", f"profile={secret.pk}"):
        response = member_client.get(f"{url(world)}?state=any&triage=any&{query}")
        assert response.status_code == 200
        assert rows(response) == []
        body = response.content.decode()
        assert "SECRET-PLUGIN-Q" not in body and "SECRET-HOST-Q" not in body
        csv_body = b"".join(
            member_client.get(f"{url(world, 'findings_csv')}?state=any&triage=any&{query}").streaming_content
        )
        assert b"SECRET" not in csv_body


def test_outsider_and_anonymous(client, outsider, world):
    paths = [
        url(world),
        url(world, "findings_csv"),
        url(world, "hosts"),
        url(world, "finding", world["crit"].pk),
    ]
    for path in paths:
        assert client.get(path).status_code == 302  # to the login page
        assert client.get(path, headers={"HX-Request": "true"})["HX-Redirect"].startswith("/login/")
    client.force_login(outsider)
    for path in [*paths, url(world, "host", world["web"].pk)]:
        assert client.get(path).status_code == 404


def test_viewer_reads_everything(viewer_client, world):
    for path in (
        url(world),
        url(world, "hosts"),
        url(world, "finding", world["crit"].pk),
        url(world, "host", world["web"].pk),
    ):
        assert viewer_client.get(path).status_code == 200
    body = viewer_client.get(url(world)).content.decode()
    assert 'name="ids"' not in body  # no bulk triage for read-only users
    assert "Mark as" not in viewer_client.get(url(world, "finding", world["crit"].pk)).content.decode()


# ---------------------------------------------------------------------------
# W5: Tenable text is escaped everywhere
# ---------------------------------------------------------------------------
def test_xss_payloads_render_escaped(member_client, world):
    project = world["project"]
    host = make_asset(project, XSS + ".example", "10.6.6.6", fqdn=XSS, os=XSS, netbios=XSS)
    plugin = make_plugin(
        6666,
        XSS + ' "><img src=x onerror=alert(1)>',
        family=XSS,
        synopsis=XSS,
        description=XSS,
        solution=XSS,
        see_also=["javascript:alert(1)", XSS, "https://example.com/advisory?a=1&b=<x>"],
        cves=[XSS],
        cwes=[XSS],
        cvss3_vector=XSS,
    )
    finding = make_finding(project, host, plugin, severity=4, plugin_output=XSS, service=XSS)
    pages = [
        url(world),
        f"{url(world)}?group=plugin",
        f"{url(world)}?group=host",
        f"{url(world)}?q={plugin.plugin_id}",
        url(world, "finding", finding.pk),
        url(world, "hosts"),
        url(world, "host", host.pk),
        reverse("projects:detail", args=[project.pk]),
    ]
    for path in pages:
        body = member_client.get(path).content.decode()
        assert XSS not in body, path
        assert "&lt;script&gt;" in body, path
        assert "<img src=x" not in body, path
    detail = member_client.get(url(world, "finding", finding.pk)).content.decode()
    assert 'href="javascript:' not in detail
    assert 'href="https://example.com/advisory?a=1&amp;b=&lt;x&gt;"' in detail


def test_finding_page_shows_the_details(member_client, world):
    finding = world["shifted"]
    plugin = finding.plugin
    plugin.cves = ["CVE-2024-1234", "not-a-cve"]
    plugin.cwes = ["CWE-79", "79"]
    plugin.see_also = ["https://example.com/a", "ftp://example.com/b"]
    plugin.cvss3_base_score, plugin.cvss3_vector = 9.8, "CVSS:3.1/AV:N"
    plugin.cvss_base_score, plugin.cvss_vector = 7.5, "AV:N/AC:L"
    plugin.vpr_score, plugin.epss_score = 8.9, 0.97
    plugin.synopsis, plugin.description, plugin.solution = (
        "Synopsis text",
        "Description text",
        "Solution text",
    )
    plugin.save()
    Finding.objects.filter(pk=finding.pk).update(plugin_output="line\n" * 100)
    body = member_client.get(url(world, "finding", finding.pk)).content.decode()
    assert 'href="https://nvd.nist.gov/vuln/detail/CVE-2024-1234"' in body
    assert "not-a-cve" in body and "detail/not-a-cve" not in body
    assert 'href="https://cwe.mitre.org/data/definitions/79.html"' in body
    assert 'href="https://example.com/a"' in body and 'href="ftp://' not in body
    for text in (
        "9.8",
        "CVSS:3.1/AV:N",
        "7.5",
        "AV:N/AC:L",
        "8.9",
        "0.9700",
        "Synopsis text",
        "Solution text",
    ):
        assert text in strip_tags(body)  # as read: the vectors carry <wbr> after each slash (issue 12)
    assert "<details" in body and "<pre" in body  # long output collapses
    assert "Severity+" in body and "DMZ" in body  # why effective differs from Tenable's
    assert "10.0.0.2" in body  # the asset


def test_finding_history_shows_runs_and_events(member_client, world):
    fixed = world["fixed"]
    FindingEvent.objects.create(finding=fixed, kind="fixed", run=world["r2"], created_at=fixed.fixed_at)
    response = member_client.get(url(world, "finding", fixed.pk))
    history = response.context["history"]
    kinds = [item.kind for item in history]
    assert kinds[0] == "fixed" and kinds[-1] == "opened"
    body = response.content.decode()
    assert "Not seen on a host the run covered" in body
    assert f"run #{world['r2'].pk}" in body and f"run #{world['r1'].pk}" in body


# ---------------------------------------------------------------------------
# Query counts do not grow with rows
# ---------------------------------------------------------------------------
def _add_findings(world, n: int) -> None:
    project = world["project"]
    for i in range(n):
        host = make_asset(project, f"bulk-{n}-{i}", f"10.1.{n}.{i}")
        plugin = make_plugin(50_000 + n * 100 + i, f"bulk plugin {n}-{i}", cves=[f"CVE-2020-{1000 + i}"])
        make_finding(project, host, plugin, severity=i % 5, first_run=world["r1"], last_run=world["r2"])


@pytest.mark.parametrize(
    "path",
    [
        "findings",
        "findings?group=plugin",
        "findings?group=host",
        "findings?sort=-last_seen&state=any&triage=any",
        "hosts",
        "detail",
    ],
)
def test_query_count_does_not_grow_with_rows(member_client, world, django_assert_max_num_queries, path):
    name, _, query = path.partition("?")
    target = f"{url(world, name)}?{query}"
    _add_findings(world, 3)
    with CaptureQueriesContext(connection) as few:
        assert member_client.get(target).status_code == 200
    _add_findings(world, 40)
    with django_assert_max_num_queries(len(few)):
        response = member_client.get(target)
    if name != "detail":
        assert len(response.context["page"].rows) > 20


def test_finding_page_query_count_is_constant(member_client, world, django_assert_max_num_queries):
    finding = world["crit"]
    with CaptureQueriesContext(connection) as few:
        member_client.get(url(world, "finding", finding.pk))
    for i in range(30):
        run = make_run(world["project"], world["plain"], days_ago=0.5 - i / 100)
        RunAsset.objects.create(run=run, asset=finding.asset)
        FindingEvent.objects.create(finding=finding, kind="triaged", actor=None, note=f"note {i}")
    with django_assert_max_num_queries(len(few) + 1):  # +1: "and N earlier runs" counts the rest
        response = member_client.get(url(world, "finding", finding.pk))
    assert len(response.context["history"]) > 50


# ---------------------------------------------------------------------------
# CSV export
# ---------------------------------------------------------------------------
def _csv(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_streams_the_filtered_list(member_client, world):
    response = member_client.get(f"{url(world, 'findings_csv')}?severity=4&severity=3")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = _csv(response)
    assert table[0] == [
        "host",
        "ip",
        "fqdn",
        "plugin id",
        "plugin name",
        "family",
        "severity",
        "effective severity",
        "port",
        "protocol",
        "state",
        "triage",
        "first seen",
        "last seen",
        "CVEs",
    ]
    assert {row[4] for row in table[1:]} == {"crit", "shifted"}
    shifted = next(row for row in table if row[4] == "shifted")
    assert shifted[6:8] == ["Medium", "High"]
    crit = next(row for row in table if row[4] == "crit")
    assert crit[14] == "CVE-2021-44228"


def test_csv_all_states_and_expired_triage(member_client, world):
    table = _csv(member_client.get(f"{url(world, 'findings_csv')}?state=any&triage=any"))
    assert len(table) == 9
    by_name = {row[4]: row for row in table[1:]}
    assert by_name["expired"][11] == "Acceptance expired"
    assert by_name["fp"][11] == "False positive"
    assert by_name["fixed"][10] == "fixed"


def test_csv_neutralises_formulas(member_client, world):
    project = world["project"]
    host = make_asset(project, "=cmd|' /C calc'!A0", "+10.0.0.9", fqdn="@SUM(1+1)")
    plugin = make_plugin(7777, "-2+3 evil", family='=HYPERLINK("http://x")')
    make_finding(project, host, plugin, severity=4)
    table = _csv(member_client.get(f"{url(world, 'findings_csv')}?q=7777"))
    row = table[1]
    assert row[0] == "'=cmd|' /C calc'!A0"
    assert row[1] == "'+10.0.0.9"
    assert row[2] == "'@SUM(1+1)"
    assert row[4] == "'-2+3 evil"
    assert row[5].startswith("'=HYPERLINK")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("ok", "ok"),
        (None, ""),
        (443, "443"),
    ],
)
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


def test_csv_uses_a_server_side_iterator():
    """Memory stays flat because rows are read in chunks, never all at once."""
    export = (ROOT / "projects" / "findings" / "csv_export.py").read_text()
    views = (ROOT / "projects" / "findings" / "views.py").read_text()
    assert ".iterator(chunk_size=" in export and "StreamingHttpResponse(csv_rows(" in views


# ---------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------
def test_host_list_counts_open_untriaged_by_severity(member_client, world):
    response = member_client.get(url(world, "hosts"))
    assert response.status_code == 200
    hosts = {asset.name: asset.open_counts for asset in rows(response)}
    assert hosts["web-01.example.com"] == {
        "critical": 1,
        "high": 0,
        "medium": 0,
        "low": 0,
        "info": 1,
        "total": 2,
    }
    # db-01: shifted (high), reopened (low), expired acceptance (medium, counts as open)
    assert hosts["db-01.example.com"] == {
        "critical": 0,
        "high": 1,
        "medium": 1,
        "low": 1,
        "info": 0,
        "total": 3,
    }
    assert "SECRET" not in response.content.decode()


def test_host_list_search_and_sort(member_client, world):
    response = member_client.get(f"{url(world, 'hosts')}?q=10.0.0.2")
    assert [a.name for a in rows(response)] == ["db-01.example.com"]
    response = member_client.get(f"{url(world, 'hosts')}?sort=-name")
    assert [a.name for a in rows(response)] == ["web-01.example.com", "db-01.example.com"]
    response = member_client.get(
        f"{url(world, 'hosts')}?sort=password&page=x", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
