"""The import engine's data integrity (audit issue 12 §1; RELIABILITY D1, P7): which hosts are one asset,
duplicate items inside one file, and the counts of a failed run."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import pytest
from django.utils import timezone

from projects.choices import RunStatus
from projects.models import Asset, Finding, Project, ScanRun
from projects.runs import execute_upload, import_upload, sweep_stale_runs

pytestmark = pytest.mark.django_db

ALICE = {"name": "server-alice", "uuid": "aaaaaaaa-0000-4000-8000-000000000001", "ip": "10.20.0.5"}
BOB = {"name": "server-bob", "uuid": "bbbbbbbb-0000-4000-8000-000000000002", "ip": "10.20.0.5"}
CRITICAL = (19506, 443, "tcp", 4, "TLS 1.0 enabled")
INFO = (10180, 0, "tcp", 0, "The remote host is up")


def _nessus(*hosts: dict) -> str:
    """A small `.nessus` v2 file. A host: name, and optionally uuid, ip, fqdn, netbios, items.

    An item is (plugin id, port, protocol, severity, plugin output).
    """
    blocks = []
    for host in hosts:
        tags = {
            "host-uuid": host.get("uuid"),
            "host-ip": host.get("ip"),
            "host-fqdn": host.get("fqdn"),
            "netbios-name": host.get("netbios"),
        }
        props = "".join(f'<tag name="{k}">{escape(v)}</tag>' for k, v in tags.items() if v)
        items = "".join(
            f'<ReportItem port="{port}" svc_name="www" protocol="{proto}" severity="{sev}" pluginID="{plugin}" '
            f'pluginName="Plugin {plugin}" pluginFamily="General"><plugin_output>{escape(out)}</plugin_output>'
            "</ReportItem>"
            for plugin, port, proto, sev, out in host.get("items", [INFO])
        )
        blocks.append(
            f'<ReportHost name="{escape(host["name"])}"><HostProperties>{props}</HostProperties>{items}</ReportHost>'
        )
    return f'<?xml version="1.0" ?><NessusClientData_v2><Report name="t">{"".join(blocks)}</Report></NessusClientData_v2>'


@pytest.fixture
def project():
    return Project.objects.create(name="Integrity")


@pytest.fixture
def upload(project, tmp_path):
    """Import a synthetic file into `project` as an upload; returns the finished run."""
    counter = iter(range(1, 1000))

    def _upload(*hosts: dict) -> ScanRun:
        path = tmp_path / f"scan-{next(counter)}.nessus"
        path.write_text(_nessus(*hosts))
        run = ScanRun.objects.create(project=project, trigger="upload", source_name=path.name)
        import_upload(run, str(path))
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
        return run

    return _upload


def _finding(host_uuid: str, plugin_id: int) -> Finding:
    return Finding.objects.get(asset__host_uuid=host_uuid, plugin_id=plugin_id)


# -- a failed run kept nothing, so it counts nothing ---------------------------------------------------------
def _cut_file(tmp_path, hosts: int = 12) -> str:
    text = _nessus(
        *({"name": f"10.3.0.{n}", "ip": f"10.3.0.{n}", "items": [INFO, CRITICAL]} for n in range(hosts))
    )
    path = tmp_path / "cut.nessus"
    path.write_text(text[: len(text) - 200])  # the last host and the closing tags are missing
    return str(path)


def _assert_nothing_counted(run: ScanRun) -> None:
    assert run.status == RunStatus.FAILED
    assert (
        run.count_total,
        run.count_new,
        run.count_fixed,
        run.count_reopened,
        run.count_unchanged,
        run.count_hosts,
        run.count_by_severity,
    ) == (0, 0, 0, 0, 0, 0, {})


@pytest.mark.django_db(transaction=True)
def test_a_cut_upload_fails_with_zero_counts(project, tmp_path, monkeypatch):
    """Progress committed while importing (PostgreSQL merges on its own connection) must not survive the failure."""
    monkeypatch.setattr("projects.importer.BATCH_ROWS", 4)  # progress is reported after every batch
    path = _cut_file(tmp_path)
    run = ScanRun.objects.create(project=project, trigger="upload", source_name="cut.nessus")
    execute_upload(run.pk, path)
    run.refresh_from_db()
    assert "not well-formed" in run.error
    _assert_nothing_counted(run)
    assert not Finding.objects.exists() and not Asset.objects.exists()


def test_a_swept_run_fails_with_zero_counts(project):
    run = ScanRun.objects.create(
        project=project, status=RunStatus.IMPORTING, heartbeat_at=timezone.now() - timedelta(hours=1),
        count_total=20_000, count_hosts=400, count_by_severity={"0": 20_000},
    )  # fmt: skip
    assert sweep_stale_runs() == 1
    run.refresh_from_db()
    _assert_nothing_counted(run)


def test_a_run_sent_back_for_a_retry_keeps_no_counts(project, settings):
    from projects.runs import RetryLater, _fail_or_retry

    settings.RUN_RETRY_BASE = 1
    run = ScanRun.objects.create(
        project=project,
        status=RunStatus.IMPORTING,
        attempts=1,
        count_total=20_000,
        count_by_severity={"0": 1},
    )
    with pytest.raises(RetryLater):
        _fail_or_retry(run, "The download was cut short.", permanent=False, retry_after=None)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and (run.count_total, run.count_by_severity) == (0, {})
