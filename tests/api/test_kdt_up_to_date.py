"""`kdt` in CI after the first import (issue 12 §6): without Start Scan every later run is "up to date", and its
summary must still show the project's open findings (the ones the thresholds count), say what the run changed,
name the run that imported the Tenable run, and report complete progress.

The installed `kdt` runs in-process against a live server; a run is executed where the broker would hand it to a
worker, right after the request that queued it commits."""

from __future__ import annotations

import json

import pytest

from projects.models import Finding, Project, ScannerProfile, ScanRun
from projects.runs.services import execute_run
from tests.integrations.conftest import make_integration

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def instant_worker(monkeypatch):
    monkeypatch.setattr("projects.runs.services._publish", execute_run)


@pytest.fixture
def shop(tenable_simulator):
    scan_id = tenable_simulator.sim.add_scan("Shop scan", hosts=4, findings_per_host=25)
    return ScannerProfile.objects.create(
        project=Project.objects.create(name="Shop"),
        integration=make_integration(tenable_simulator.url),
        name="Shop nightly",
        scan_id=scan_id,
        meta_data="env=prod",
    )


def kdt_scan(cli, capsys, live_server, token: str, *extra: str) -> tuple[int, str, str]:
    argv = ["--host", live_server.url, "--token", token, "scan", "-p", "Shop", "-t", "tenableiovm", "-b", "-"]
    code = cli.main([*argv, "--poll", "0.1", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def cell(output: str, header_start: str, column: str) -> str:
    """The value under `column` in the one-row table whose header line starts with `header_start`."""
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header, row = lines[index], lines[index + 2]
    start = header.index(column)
    return row[start:].split()[0]


def test_up_to_date_summary_shows_the_open_findings_the_thresholds_count(
    instant_worker, shop, live_server, member, capsys, kdt_installed
):
    from api.models import ApiToken
    from kdt import cli

    shop.project.memberships.create(user=member, role="member")
    _, token = ApiToken.issue(member, "ci")

    code, first_out, _ = kdt_scan(cli, capsys, live_server, token)
    assert code == 0, first_out
    first = ScanRun.objects.get(profile=shop)
    assert not first.up_to_date and first.count_new > 0
    assert cell(first_out, "NEW", "NEW") == str(first.count_new)

    open_by = {
        name: Finding.objects.filter(project=shop.project, state="open", effective_severity=level).count()
        for level, name in ((4, "CRITICAL"), (3, "HIGH"), (2, "MEDIUM"), (1, "LOW"))
    }
    assert open_by["HIGH"] > 0

    # The next CI build: the same Tenable run, so "up to date" — and the table still shows the open findings.
    code, out, _ = kdt_scan(cli, capsys, live_server, token, "--threshold-high", "0")
    second = ScanRun.objects.filter(profile=shop).latest("pk")
    assert code == 1 and second.up_to_date
    for column, count in open_by.items():
        assert cell(out, "PROJECT", column) == str(count), out
    assert f"This run (#{second.pk}) changed nothing." in out
    assert f"already imported by run #{first.pk}" in out
    assert f"Threshold exceeded: {open_by['HIGH']} open high findings exceed the threshold of 0." in out

    # And the build after that names the run that imported, not the previous up-to-date run.
    code, out, _ = kdt_scan(cli, capsys, live_server, token, "--json")
    result = json.loads(out)
    third = ScanRun.objects.filter(profile=shop).latest("pk")
    assert code == 0 and result["id"] == third.pk and result["up_to_date"] is True
    assert result["message"].endswith(f"already imported by run #{first.pk}")
    assert result["progress_total"] and result["progress_done"] == result["progress_total"]
    assert result["progress_percent"] == 100
    assert {k.upper(): v for k, v in result["open_findings"].items() if k != "info"} == open_by
