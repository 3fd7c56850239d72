"""The import engine's data integrity (audit issue 12 §1; RELIABILITY D1, P7): which hosts are one asset,
duplicate items inside one file, and the counts of a failed run."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import pytest
from django.utils import timezone

from projects.choices import RunStatus
from projects.models import Asset, Finding, Project, ScanRun
from projects.runs.services import execute_upload, import_upload, sweep_stale_runs

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


# -- which hosts are one asset (D1) ---------------------------------------------------------------------------
def test_two_hosts_with_different_uuids_on_one_ip_stay_two_assets(upload):
    upload({**ALICE, "items": [CRITICAL]})
    second = upload({**BOB, "items": [INFO]})
    assert second.count_fixed == 0 and second.count_new == 1 and second.count_hosts == 1
    assert sorted(Asset.objects.values_list("name", "host_uuid", "ip")) == [
        ("server-alice", ALICE["uuid"], "10.20.0.5"),
        ("server-bob", BOB["uuid"], "10.20.0.5"),
    ]
    critical = _finding(ALICE["uuid"], CRITICAL[0])
    assert critical.state == "open" and critical.fixed_by_run is None  # bob's scan says nothing about alice


@pytest.mark.parametrize("with_uuids", [True, False], ids=["distinct uuids", "no uuids, distinct IPs"])
def test_three_hosts_sharing_a_netbios_name_are_three_assets(upload, with_uuids):
    hosts = [
        {
            "name": f"10.0.0.{n}",
            "ip": f"10.0.0.{n}",
            "netbios": "WORKSTATION",
            "uuid": f"cccccccc-0000-4000-8000-00000000000{n}" if with_uuids else None,
            "items": [INFO, (20000 + n, 445, "tcp", 2, f"share {n}")],
        }
        for n in (1, 2, 3)
    ]
    run = upload(*hosts)
    assert run.count_hosts == 3 and run.message == "Imported 6 findings from 3 hosts"
    assert Asset.objects.count() == 3 and run.count_total == run.count_new == 6
    again = upload(*hosts)  # the same file again: the same three assets, nothing new, nothing fixed (P7)
    assert (again.count_hosts, again.count_new, again.count_fixed, again.count_unchanged) == (3, 0, 0, 6)
    assert Asset.objects.count() == 3


def test_dhcp_churn_same_uuid_new_ip_is_the_same_asset(upload):
    upload({**ALICE, "items": [CRITICAL]})
    asset = Asset.objects.get()
    moved = upload({**ALICE, "ip": "10.20.0.77", "items": [CRITICAL]})
    assert (moved.count_new, moved.count_fixed, moved.count_unchanged) == (0, 0, 1)
    refreshed = Asset.objects.get()
    assert (refreshed.pk, refreshed.identity, refreshed.ip) == (asset.pk, asset.identity, "10.20.0.77")


def test_host_that_later_gains_a_uuid_keeps_its_asset_and_then_tells_hosts_apart(upload):
    upload({"name": "10.20.0.5", "ip": "10.20.0.5", "items": [CRITICAL]})
    asset = Asset.objects.get()
    assert asset.host_uuid == ""
    gained = upload({**ALICE, "items": [CRITICAL]})
    assert (gained.count_new, gained.count_fixed) == (0, 0)
    asset.refresh_from_db()
    assert (asset.host_uuid, Asset.objects.count()) == (ALICE["uuid"], 1)
    assert asset.identity == Asset.objects.get().identity  # fingerprints stay valid

    # From now on the asset has a uuid: a host with another uuid on that IP is someone else.
    other = upload({**BOB, "items": [INFO]})
    assert other.count_new == 1 and other.count_fixed == 0 and Asset.objects.count() == 2
    assert _finding(ALICE["uuid"], CRITICAL[0]).state == "open"


def test_a_host_without_uuid_matches_by_ip_and_does_not_erase_the_assets_uuid(upload):
    upload({**ALICE, "items": [CRITICAL]})
    run = upload({"name": "10.20.0.5", "ip": "10.20.0.5", "items": [CRITICAL]})
    assert (run.count_new, run.count_unchanged, Asset.objects.count()) == (0, 1, 1)
    assert Asset.objects.get().host_uuid == ALICE["uuid"]
    upload({**BOB, "items": [INFO]})  # so the uuid still tells a different host apart
    assert Asset.objects.count() == 2


def test_an_asset_whose_uuid_an_older_import_erased_still_has_it(project, upload):
    """Before audit issue 12 a uuid-less scan blanked `host_uuid`; the identity still says which host it was."""
    Asset.objects.create(
        project=project, identity=f"uuid:{ALICE['uuid']}", name="server-alice", ip="10.20.0.5"
    )
    upload({**BOB, "items": [INFO]})
    assert Asset.objects.count() == 2
    upload({**ALICE, "items": [CRITICAL]})
    assert Asset.objects.count() == 2 and Asset.objects.get(name="server-alice").host_uuid == ALICE["uuid"]


def test_an_ambiguous_weak_key_matches_nothing(upload):
    upload({**ALICE, "items": [CRITICAL]})
    upload({**BOB, "items": [CRITICAL]})
    # Two assets share 10.20.0.5: a host known only by that IP cannot be told to be either of them.
    run = upload({"name": "10.20.0.5", "ip": "10.20.0.5", "items": [INFO]})
    assert run.count_new == 1 and run.count_fixed == 0 and Asset.objects.count() == 3
    assert _finding(ALICE["uuid"], CRITICAL[0]).state == "open"
    assert _finding(BOB["uuid"], CRITICAL[0]).state == "open"
    assert len(set(Asset.objects.values_list("identity", flat=True))) == 3


def test_hosts_inside_one_file_are_never_merged(upload):
    twins = [
        {"name": "printer-1", "ip": "10.9.9.9", "items": [CRITICAL]},
        {"name": "printer-2", "ip": "10.9.9.9", "items": [CRITICAL]},
        {**ALICE, "ip": "10.9.9.9", "items": [CRITICAL]},
    ]
    run = upload(*twins)
    assert (run.count_hosts, run.count_total, Asset.objects.count()) == (3, 3, 3)
    again = upload(*twins)
    assert (again.count_hosts, again.count_new, again.count_fixed, Asset.objects.count()) == (3, 0, 0, 3)


@pytest.mark.parametrize("batch_rows", [20_000, 1], ids=["one batch", "a batch per host"])
def test_a_repeated_host_block_is_one_host(upload, monkeypatch, batch_rows):
    """The same ReportHost twice (or one host uuid twice) is one host, and its findings count once."""
    monkeypatch.setattr("projects.runs.importer.BATCH_ROWS", batch_rows)
    plain = {"name": "10.1.1.1", "ip": "10.1.1.1", "items": [CRITICAL, INFO]}
    run = upload(plain, {**ALICE, "items": [CRITICAL]}, plain, {**ALICE, "ip": "10.20.0.6", "items": [INFO]})
    assert (run.count_hosts, run.count_total, Asset.objects.count()) == (2, 4, 2)


# -- duplicate items inside one host (P7) ---------------------------------------------------------------------
def test_duplicate_items_count_once_and_keep_every_output(upload):
    host = {
        **ALICE,
        "items": [
            (22964, 443, "tcp", 0, "A web server is running on this port."),
            (22964, 443, "tcp", 0, "A TLSv1.2 server answered on this port."),
            (22964, 443, "tcp", 0, "A web server is running on this port."),  # the same text again: kept once
            INFO,
        ],
    }
    run = upload(host)
    assert (run.count_total, run.count_new, run.count_by_severity) == (2, 2, {"0": 2})
    finding = Finding.objects.get(plugin_id=22964)
    output = finding.plugin_output
    assert output.count("A web server is running on this port.") == 1
    assert output.index("A web server") < output.index("A TLSv1.2 server")
    before = list(Finding.objects.order_by("pk").values())
    again = upload(host)  # a re-import of the same file changes nothing
    assert (again.count_new, again.count_fixed, again.count_unchanged) == (0, 0, 2)
    assert list(Finding.objects.order_by("pk").values()) == before


# -- a failed run kept nothing, so it counts nothing ---------------------------------------------------------
def _cut_file(tmp_path, hosts: int = 12) -> str:
    text = _nessus(
        *({"name": f"10.3.0.{n}", "ip": f"10.3.0.{n}", "items": [INFO, CRITICAL]} for n in range(hosts))
    )
    path = tmp_path / "cut.nessus"
    path.write_text(text[: len(text) - 200])  # the last host and the closing tags are missing
    return str(path)


def _assert_nothing_counted(run: ScanRun, status: str = RunStatus.FAILED) -> None:
    assert run.status == status
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
    monkeypatch.setattr("projects.runs.importer.BATCH_ROWS", 4)  # progress is reported after every batch
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


def test_a_canceled_run_keeps_no_counts(project):
    from projects.runs.services import cancel_run

    run = ScanRun.objects.create(
        project=project, status=RunStatus.IMPORTING, count_total=20_000, count_by_severity={"0": 20_000}
    )
    assert cancel_run(run)
    run.refresh_from_db()
    _assert_nothing_counted(run, RunStatus.CANCELED)


def test_a_run_sent_back_for_a_retry_keeps_no_counts(project, settings):
    from projects.runs.services import RetryLater, _fail_or_retry

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
