"""`kdt` without a server: usage errors exit 4 (not argparse's 2, which means "run failed"), the help documents
the exit codes, and thresholds compare open findings with "more than N"."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(kdt_installed, monkeypatch):
    monkeypatch.delenv("KDT_HOST", raising=False)
    monkeypatch.delenv("KDT_TOKEN", raising=False)
    from kdt import cli

    return cli


def test_help_documents_every_exit_code(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["scan", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for line in ("0  success", "1  a --threshold-*", "2  the run failed", "3  timed out", "4  usage"):
        assert line in text
    assert "KDT_HOST" in text and "KDT_TOKEN" in text and "--threshold-crit" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["scan"],  # no project
        ["scan", "-p", "x", "--threshold-high", "-1"],
        ["scan", "-p", "x", "--threshold-high", "many"],
        ["scan", "-p", "x", "--timeout", "soon"],
        ["list", "everything"],
        [],
    ],
)
def test_usage_errors_exit_4(cli, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 4
    assert "error:" in capsys.readouterr().err


def test_missing_configuration_exits_4_with_a_hint(cli, capsys, monkeypatch):
    assert cli.main(["list", "projects"]) == 4
    assert "KDT_HOST" in capsys.readouterr().err
    assert cli.main(["--host", "https://console.example.com", "list", "projects"]) == 4
    assert "KDT_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("KDT_TOKEN", "kdt_x")
    assert cli.main(["list", "projects", "--host", "console.example.com"]) == 4
    assert "https://" in capsys.readouterr().err


def test_thresholds_fail_only_above_the_limit(cli):
    open_findings = {"critical": 0, "high": 3, "medium": 10, "low": 0}
    assert cli.check_thresholds(open_findings, {"critical": 0, "high": 3}) == []
    assert cli.check_thresholds(open_findings, {"high": 2, "medium": 10}) == [
        "3 open high findings exceed the threshold of 2"
    ]


def test_host_may_include_the_api_prefix(cli):
    api = cli.Api("https://console.example.com/api/v1/", "kdt_x")
    assert api.base == "https://console.example.com/api/v1"
    assert api.session.headers["Authorization"] == "Bearer kdt_x"


def test_progress_names_what_it_counts(cli):
    """Issue 14: a vulnerability-data run counts export chunks, and kdt says so (older servers: hosts)."""
    run = {"id": 7, "phase": "Merging chunks", "finished": False, "status": "merging", "message": ""}
    polls = iter(
        [
            {**run, "progress_done": 3, "progress_total": 8, "progress_percent": 37},
            {**run, "finished": True, "status": "succeeded", "progress_done": 8, "progress_total": 8,
             "progress_percent": 100},
        ]
    )  # fmt: skip

    class Api:
        def get(self, path):
            return next(polls)

    lines: list[str] = []
    first = {
        **run,
        "progress_done": 1,
        "progress_total": 8,
        "progress_percent": 12,
        "progress_unit": "chunks",
    }
    cli.follow(Api(), first, None, 0, lines.append)
    assert any("(1/8 chunks)" in line for line in lines) and any("(3/8 hosts)" in line for line in lines)
