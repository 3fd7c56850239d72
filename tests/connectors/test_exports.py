"""Bulk exports through the connector, over real HTTP against the simulator, checked against its ground truth.

`sim.vulns(...)` and `sim.assets(...)` say what an export with those filters holds; every test downloads
chunks as they are listed (out of order) through `TenableIOConnector`, the product's only door.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.connectors.base import (
    AssetExportRequest,
    ConnectorError,
    ExportStatus,
    VulnChunk,
    VulnExportRequest,
)
from integrations.connectors.tenable_io import errors as say
from integrations.connectors.tenable_io.connector import TenableIOConnector
from integrations.connectors.tenable_io.simulator import TenableSimulator
from tests.tenable_fixtures import (
    SIM_ACCESS_KEY,
    SIM_BASIC_ACCESS_KEY,
    SIM_ROLE_KEYS,
    SIM_SECRET_KEY,
    FakeTime,
    SimClock,
)

ALL_STATES = ["OPEN", "REOPENED", "FIXED"]
DAY = 86400


def connect(
    server, fake_time: FakeTime | None = None, role: str | None = None, **options
) -> TenableIOConnector:
    access, secret = SIM_ROLE_KEYS[role] if role else (SIM_ACCESS_KEY, SIM_SECRET_KEY)
    fake_time = fake_time or FakeTime()
    options.setdefault("timeout", (2.0, 10.0))
    return TenableIOConnector(
        access_key=access,
        secret_key=secret,
        api_url=server.url,
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
        **options,
    )


def run_vulns(
    connector, request: VulnExportRequest, polls: int = 100
) -> tuple[list[ExportStatus], list[VulnChunk]]:
    """Poll until the job ends, downloading every chunk as soon as it is listed: (statuses, chunks)."""
    job = connector.start_vuln_export(request)
    return follow(connector.vuln_export_status, connector.vuln_export_chunk, job.uuid, polls)


def follow(status_of, chunk_of, uuid: str, polls: int = 100):
    statuses, chunks, seen = [], [], set()
    for _ in range(polls):
        status = status_of(uuid)
        statuses.append(status)
        for chunk_id in status.chunks_available:
            if chunk_id not in seen:
                seen.add(chunk_id)
                chunks.append(chunk_of(uuid, chunk_id))
        if not status.active:
            return statuses, chunks
    raise AssertionError(f"export {uuid} still {statuses[-1].status} after {polls} polls")


def keys(chunks) -> list[str]:
    return sorted(f.key for chunk in chunks for f in chunk.findings)


def truth_ids(records) -> list[str]:
    return sorted(r["finding_id"] for r in records)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def server(clock):
    with TenableSimulator(clock=clock, export_chunks_per_poll=1).serve() as running:
        yield running


@pytest.fixture
def connector(server):
    with connect(server) as connector:
        yield connector


# -- the vulnerability export: everything, field by field ---------------------------------------------


def test_everything_since_the_start_of_time_matches_the_ground_truth(server, connector):
    statuses, chunks = run_vulns(connector, VulnExportRequest(since=0, num_assets=50))
    truth = server.sim.vulns(states=ALL_STATES, since=0)
    assert keys(chunks) == truth_ids(truth)
    assert statuses[-1].status == "FINISHED" and statuses[-1].complete and statuses[-1].problem() is None
    # Chunks were listed (and downloaded) out of order, one more per poll.
    listed = statuses[-1].chunks_available
    assert [c.chunk_id for c in chunks] == list(listed) and list(listed) != sorted(listed)
    assert [len(s.chunks_available) for s in statuses] == list(range(1, len(listed) + 1))
    assert all(c.rejected == [] and c.size > 0 for c in chunks)
    sent = next(r for r in server.sim.requests if r.path == "/vulns/export")
    assert sent.body == {
        "num_assets": 50,
        "include_unlicensed": False,
        "filters": {"since": 0, "state": ALL_STATES},
    }


def test_each_finding_is_normalised_from_tenables_fields(server, connector):
    _, chunks = run_vulns(connector, VulnExportRequest(since=0, include_unlicensed=True))
    truth = {
        r["finding_id"]: r for r in server.sim.vulns(states=ALL_STATES, since=0, include_unlicensed=True)
    }
    findings = [f for c in chunks for f in c.findings]
    assert len(findings) == len(truth)
    for f in findings:
        r = truth[f.finding_id]
        plugin, asset, port = r["plugin"], r["asset"], r["port"]
        assert (f.plugin_id, f.plugin_name, f.plugin_family) == (
            plugin["id"],
            plugin["name"],
            plugin["family"],
        )
        assert (f.port, f.protocol, f.service) == (port["port"], port["protocol"].lower(), port["service"])
        assert (f.state, f.severity, f.severity_default) == (
            r["state"],
            r["severity_id"],
            r["severity_default_id"],
        )
        assert f.severity_modification == r["severity_modification_type"]
        assert f.first_found == when(r["first_found"]) and f.last_found == when(r["last_found"])
        assert f.last_fixed == (when(r["last_fixed"]) if "last_fixed" in r else None)
        assert f.resurfaced == (when(r["resurfaced_date"]) if "resurfaced_date" in r else None)
        assert f.first_found.tzinfo is UTC and f.indexed == datetime.fromtimestamp(r["indexed"], UTC)
        assert f.source == r["source"] and f.scan_uuid == r["scan"]["uuid"]
        assert f.plugin_output == r["output"].strip("\r\n")
        assert f.cves == plugin.get("cve", []) and f.cwes == [x["id"] for x in plugin.get("xrefs", [])]
        assert f.see_also == plugin.get("see_also", [])
        assert f.cvss3_vector == plugin.get("cvss3_vector", {}).get("raw")
        assert f.cvss_vector == plugin.get("cvss_vector", {}).get("raw")
        assert (f.cvss_base_score, f.cvss3_base_score) == (
            plugin.get("cvss_base_score"),
            plugin.get("cvss3_base_score"),
        )
        assert f.vpr_score == plugin.get("vpr", {}).get("score") and f.epss_score == plugin.get("epss_score")
        host = f.host
        assert (host.host_uuid, host.ip, host.fqdn, host.netbios) == (
            asset["uuid"],
            asset["ipv4"],
            asset.get("fqdn") or asset.get("hostname"),
            asset.get("netbios_name"),
        )
        assert host.os == "\n".join(asset["operating_system"]) and host.mac == asset["mac_address"]
    states = {f.state for f in findings}
    modifications = {f.severity_modification for f in findings}
    assert states == {"OPEN", "FIXED"} and modifications == {"NONE", "RECASTED", "ACCEPTED"}
    # Findings of one asset share one host record; the chunk lists its hosts once each.
    chunk = chunks[0]
    assert len(chunk.hosts()) == len({f.host.host_uuid for f in chunk.findings})


def test_reopened_findings_keep_identity_and_dates(clock):
    sim = TenableSimulator(clock=clock, churn=0, hosts_down=0)
    scan_id = sim.scan_id("linux")
    asset = sim.asset_uuid(scan_id, 3)
    with sim.serve() as server, connect(server) as connector:
        before = [f for c in run_vulns(connector, VulnExportRequest(since=0))[1] for f in c.findings]
        target = next(f for f in before if f.host.host_uuid == asset)
        clock.now += DAY
        sim.add_run(scan_id, fixed=[(asset, target.plugin_id)])
        clock.now += DAY
        sim.add_run(scan_id)
        after = [f for c in run_vulns(connector, VulnExportRequest(since=0))[1] for f in c.findings]
    again = next(f for f in after if f.key == target.key)
    assert (target.state, again.state) == ("OPEN", "REOPENED")
    assert again.first_found == target.first_found and again.resurfaced is not None and again.last_fixed


# -- filters ---------------------------------------------------------------------------------------


def test_since_brings_found_and_fixed_findings_since_the_cursor(server, connector, clock):
    sim = server.sim
    cursor = int(clock.now)
    clock.now += DAY
    sim.add_run(sim.scan_id("linux"))  # churn: some findings fixed, some new
    _, chunks = run_vulns(connector, VulnExportRequest(since=cursor))
    assert keys(chunks) == truth_ids(sim.vulns(states=ALL_STATES, since=cursor))
    assert {f.state for c in chunks for f in c.findings} == {"OPEN", "FIXED"}
    assert len(keys(chunks)) < len(sim.vulns(states=ALL_STATES, since=0))


@pytest.mark.parametrize(
    ("request_", "truth", "sent"),
    [
        (
            VulnExportRequest(since=0, states=("OPEN", "REOPENED")),
            {"states": ["OPEN", "REOPENED"], "since": 0},
            {"since": 0, "state": ["OPEN", "REOPENED"]},
        ),
        (
            VulnExportRequest(since=0, severities=("critical", "high")),
            {"states": ALL_STATES, "since": 0, "filters": {"severity": ["critical", "high"]}},
            {"since": 0, "state": ALL_STATES, "severity": ["critical", "high"]},
        ),
        (
            VulnExportRequest(since=0, tag=("Location", "Dallas")),
            {"states": ALL_STATES, "since": 0, "filters": {"tag.Location": ["Dallas"]}},
            {"since": 0, "state": ALL_STATES, "tag.Location": ["Dallas"]},
        ),
    ],
    ids=["states", "severity", "tag"],
)
def test_each_filter_is_sent_and_honoured(server, connector, request_, truth, sent):
    _, chunks = run_vulns(connector, request_)
    expected = server.sim.vulns(**truth)
    assert expected and keys(chunks) == truth_ids(expected)
    body = next(r for r in server.sim.requests if r.path == "/vulns/export").body
    assert body["filters"] == sent


def test_include_unlicensed_and_num_assets_are_sent(server, connector):
    _, licensed = run_vulns(connector, VulnExportRequest(since=0))
    _, everything = run_vulns(
        connector, VulnExportRequest(since=0, include_unlicensed=True, num_assets=10**6)
    )
    assert keys(everything) == truth_ids(
        server.sim.vulns(states=ALL_STATES, since=0, include_unlicensed=True)
    )
    assert len(keys(licensed)) < len(keys(everything))
    bodies = [r.body for r in server.sim.requests if r.path == "/vulns/export"]
    assert [(b["include_unlicensed"], b["num_assets"]) for b in bodies] == [(False, 500), (True, 5000)]


@pytest.mark.parametrize(
    "arguments",
    [
        {"since": -1},
        {"since": None},
        {"since": 0, "states": ("CLOSED",)},
        {"since": 0, "states": ()},
        {"since": 0, "severities": ("urgent",)},
    ],
)
def test_a_request_tenable_would_misread_is_refused_before_sending(arguments):
    with pytest.raises(ValueError):
        VulnExportRequest(**arguments)


# -- the job: 409 adoption, status shapes, cancel, faults ------------------------------------------


def test_a_duplicate_request_adopts_the_running_job(server, connector):
    first = connector.start_vuln_export(VulnExportRequest(since=0))
    again = connector.start_vuln_export(VulnExportRequest(since=0))
    assert (first.adopted, again.adopted, again.uuid, again.kind) == (False, True, first.uuid, "vulns")
    assert server.sim.export_jobs_created == 1
    _, chunks = follow(connector.vuln_export_status, connector.vuln_export_chunk, again.uuid)
    assert keys(chunks) == truth_ids(server.sim.vulns(states=ALL_STATES, since=0))


def test_a_409_without_a_job_id_is_a_transient_conflict(server, connector):
    server.sim.set_fault("flap", status=409, path="/vulns/export", times=1)
    with pytest.raises(ConnectorError) as caught:
        connector.start_vuln_export(VulnExportRequest(since=0))
    assert (caught.value.kind, caught.value.permanent, caught.value.message) == (
        "conflict",
        False,
        say.EXPORT_DUPLICATE,
    )


def test_status_shapes_from_queued_to_finished(clock):
    with (
        TenableSimulator(clock=clock, export_queued_polls=2, export_chunks_per_poll=2).serve() as server,
        connect(server) as connector,
    ):
        statuses, chunks = run_vulns(connector, VulnExportRequest(since=0, num_assets=50))
    assert [s.status for s in statuses] == ["QUEUED", "QUEUED", "PROCESSING", "FINISHED"]
    first, last = statuses[0], statuses[-1]
    assert first.active and first.chunks_available == () and first.problem() is None
    assert first.created == datetime.fromtimestamp(clock.now, UTC) and first.total_chunks == 4
    assert (last.total_chunks, last.finished_chunks, last.empty_chunks) == (4, 4, 0)
    assert last.complete and not last.active and len(chunks) == 4


def test_error_with_partial_chunks_is_visible_and_never_complete(server, connector):
    server.sim.set_fault("export_error_partial", path="/vulns/export", available=2)
    statuses, chunks = run_vulns(connector, VulnExportRequest(since=0, num_assets=50))
    last = statuses[-1]
    assert last.status == "ERROR" and len(last.chunks_available) == 2 and len(last.chunks_cancelled) == 2
    assert not last.complete and not last.active and len(chunks) == 2
    assert last.problem() == (
        "The export job ended ERROR: Export failed while processing chunks; the remaining chunks were cancelled "
        "(2 chunks ready, 2 cancelled); the export is incomplete."
    )


def test_finished_with_failed_chunks_is_not_complete(server, connector):
    server.sim.set_fault("export_chunks_failed", failed=1)
    statuses, _ = run_vulns(connector, VulnExportRequest(since=0, num_assets=50))
    last = statuses[-1]
    assert last.status == "FINISHED" and len(last.chunks_failed) == 1 and not last.complete
    assert last.reason == "1 of 4 chunks failed to process. Please re-run the export."
    assert f"chunk(s) {last.chunks_failed[0]} failed" in last.problem()


def test_cancel_stops_the_job_and_keeps_its_finished_chunks(server, connector):
    job = connector.start_vuln_export(VulnExportRequest(since=0, num_assets=50))
    listed = connector.vuln_export_status(job.uuid).chunks_available
    assert connector.cancel_vuln_export(job.uuid) == "CANCELLED"
    status = connector.vuln_export_status(job.uuid)
    assert status.status == "CANCELLED" and len(status.chunks_cancelled) == 3 and not status.complete
    assert "ended CANCELLED" in status.problem()
    assert connector.vuln_export_chunk(job.uuid, listed[0]).findings
    assert [r.path for r in server.sim.requests if r.method == "POST"][
        -1
    ] == f"/vulns/export/{job.uuid}/cancel"


def test_a_job_tenable_no_longer_knows_is_expired(connector):
    for call in (connector.vuln_export_status, connector.cancel_vuln_export):
        with pytest.raises(ConnectorError) as caught:
            call("00000000-0000-0000-0000-000000000000")
        assert (caught.value.kind, caught.value.permanent, caught.value.status) == ("expired", True, 404)
        assert caught.value.message == say.EXPORT_GONE.format(job="00000000-0000-0000-0000-000000000000")


def test_an_expired_chunk_is_its_own_error_kind(server, connector, clock):
    job = connector.start_vuln_export(VulnExportRequest(since=0))
    chunk = connector.vuln_export_status(job.uuid).chunks_available[0]
    clock.now += 25 * 3600  # chunks can be downloaded for 24 h
    with pytest.raises(ConnectorError) as caught:
        connector.vuln_export_chunk(job.uuid, chunk)
    assert (caught.value.kind, caught.value.permanent, caught.value.status) == ("expired", True, 404)
    assert caught.value.message == say.CHUNK_EXPIRED.format(chunk=chunk, job=job.uuid)
    # The simulator's one-off 404 too (Tenable's "file not found" for a listed chunk).
    other = connector.start_vuln_export(VulnExportRequest(since=1))
    chunk = connector.vuln_export_status(other.uuid).chunks_available[0]
    server.sim.set_fault("chunk_not_found", times=1)
    with pytest.raises(ConnectorError, match="is gone"):
        connector.vuln_export_chunk(other.uuid, chunk)
    assert connector.vuln_export_chunk(other.uuid, chunk).findings


@pytest.mark.parametrize(("mode", "says"), [("invalid", "not valid JSON"), ("truncated", "cut short")])
def test_an_unreadable_chunk_raises_never_an_empty_list(server, connector, mode, says):
    job = connector.start_vuln_export(VulnExportRequest(since=0))
    chunk = connector.vuln_export_status(job.uuid).chunks_available[0]
    server.sim.set_fault("chunk_invalid_json", mode=mode, times=1)
    with pytest.raises(ConnectorError) as caught:
        connector.vuln_export_chunk(job.uuid, chunk)
    error = caught.value
    assert (error.kind, error.permanent) == ("unreadable", False)
    assert error.message.startswith(f"Chunk {chunk} of Tenable.io export {job.uuid} could not be read")
    assert says in error.message
    assert connector.vuln_export_chunk(job.uuid, chunk).findings  # read again: the whole chunk


def test_a_rate_limited_chunk_waits_for_retry_after(server):
    fake_time = FakeTime()
    with connect(server, fake_time) as connector:
        job = connector.start_vuln_export(VulnExportRequest(since=0))
        chunk = connector.vuln_export_status(job.uuid).chunks_available[0]
        server.sim.set_fault("rate_limit", path="/chunks/", retry_after="7", times=1)
        assert connector.vuln_export_chunk(job.uuid, chunk).findings
    assert fake_time.sleeps == [7.0]
    assert sum("/chunks/" in r.path for r in server.sim.requests) == 2


def test_the_export_limit_is_a_transient_error_after_the_retry_budget(clock):
    fake_time = FakeTime()
    with (
        TenableSimulator(clock=clock, max_export_jobs=1).serve() as server,
        connect(server, fake_time) as connector,
    ):
        connector.start_vuln_export(VulnExportRequest(since=0))
        with pytest.raises(ConnectorError) as caught:
            connector.start_vuln_export(VulnExportRequest(since=1))  # other filters: a second job
    error = caught.value
    assert (error.kind, error.permanent, error.status, error.retry_after) == (
        "rate_limited",
        False,
        429,
        60.0,
    )
    assert error.message == say.EXPORT_LIMIT.format(seconds=60)
    assert fake_time.sleeps == [60.0] and server.sim.export_jobs_created == 1


def test_keys_revoked_mid_export_stop_with_an_auth_error(server, connector):
    job = connector.start_vuln_export(VulnExportRequest(since=0))
    status = connector.vuln_export_status(job.uuid)
    server.sim.set_fault("revoked_key", key=SIM_ACCESS_KEY)
    for call in (
        lambda: connector.vuln_export_chunk(job.uuid, status.chunks_available[0]),
        lambda: connector.vuln_export_status(job.uuid),
    ):
        with pytest.raises(ConnectorError) as caught:
            call()
        assert (caught.value.kind, caught.value.permanent, caught.value.message) == ("auth", True, say.AUTH)


def test_a_key_without_asset_permission_is_told_what_it_lacks(server, connector):
    server.sim.set_fault("forbidden", path="/export")
    with pytest.raises(ConnectorError) as caught:
        connector.start_vuln_export(VulnExportRequest(since=0))
    assert (caught.value.kind, caught.value.message) == ("forbidden", say.FORBIDDEN_EXPORT)
    assert "Can View on the assets" in caught.value.message


def test_gzip_chunks_are_decoded(clock):
    with TenableSimulator(clock=clock, gzip_downloads=True).serve() as server, connect(server) as connector:
        _, chunks = run_vulns(connector, VulnExportRequest(since=0))
        assert keys(chunks) == truth_ids(server.sim.vulns(states=ALL_STATES, since=0))


def test_the_2018_schema_is_identified_by_asset_plugin_port_and_protocol(clock):
    with TenableSimulator(clock=clock, finding_schema="2018").serve() as server, connect(server) as connector:
        _, chunks = run_vulns(connector, VulnExportRequest(since=0))
        truth = server.sim.vulns(states=ALL_STATES, since=0)
    findings = [f for c in chunks for f in c.findings]
    assert len(findings) == len(truth) and all(c.rejected == [] for c in chunks)
    assert {(f.finding_id, f.indexed, f.source, f.vpr_score) for f in findings} == {(None, None, None, None)}
    assert sorted(f.key for f in findings) == sorted(
        f"{r['asset']['uuid']}:{r['plugin']['id']}:{r['port']['port']}:{r['port']['protocol'].lower()}"
        for r in truth
    )
    assert len({f.key for f in findings}) == len(findings)


# -- the least-privilege key -----------------------------------------------------------------------


def test_a_basic_key_exports_only_its_tags_assets_while_scan_details_are_refused(server):
    with connect(server, role="basic") as basic:
        with pytest.raises(ConnectorError) as refused:
            basic.describe_source(server.sim.scan_id("completed"))
        _, chunks = run_vulns(basic, VulnExportRequest(since=0))
    assert refused.value.kind == "forbidden"
    truth = server.sim.vulns(key=SIM_BASIC_ACCESS_KEY, states=ALL_STATES, since=0)
    everything = server.sim.vulns(states=ALL_STATES, since=0)
    assert truth and keys(chunks) == truth_ids(truth) and len(truth) < len(everything)
    dallas = {a["id"] for a in server.sim.assets(filters={"tag.Location": ["Dallas"]})}
    assert {f.host.host_uuid for c in chunks for f in c.findings} <= dallas


def test_export_scopes_are_all_assets_then_each_visible_tag(server, connector):
    sources = connector.list_sources()
    assert len(sources.scans) == 12
    scopes = [(s.id, s.label, s.tag, s.asset_count) for s in sources.scopes]
    assert scopes[0] == ("all", "All assets this key can view", None, None)
    labels = [s[1] for s in scopes[1:]]
    assert labels == sorted(labels, key=str.lower) and len(labels) == 6
    dallas = next(s for s in sources.scopes if s.label == "Location: Dallas")
    assert dallas.tag == ("Location", "Dallas") and dallas.id == f"tag:{next(iter(server.sim.tag_values))}"
    with connect(server, role="basic") as basic:
        assert [s.label for s in basic.list_sources().scopes] == [
            "All assets this key can view",
            "Location: Dallas",
        ]
    server.sim.set_fault("forbidden", path="/tags/values")
    assert [s.id for s in connector.list_sources().scopes] == ["all"]


# -- assets ----------------------------------------------------------------------------------------


def test_asset_export_v2_since_finds_deleted_and_terminated_assets(server, connector, clock):
    sim = server.sim
    scan_id = sim.scan_id("linux")
    gone, ended = sim.asset_uuid(scan_id, 1), sim.asset_uuid(scan_id, 2)
    cursor = int(clock.now)
    clock.now += 60
    sim.delete_asset(gone)
    sim.terminate_asset(ended)
    job = connector.start_asset_export(AssetExportRequest(since=cursor, chunk_size=5))
    assert (job.kind, job.version, job.adopted) == ("assets", "v2", False)
    statuses, chunks = follow(connector.asset_export_status, connector.asset_export_chunk, job.uuid)
    assets = {a.uuid: a for c in chunks for a in c.assets}
    assert set(assets) == {gone, ended} and statuses[-1].complete
    assert (
        assets[gone].deleted_at == datetime.fromtimestamp(clock.now, UTC)
        and assets[gone].terminated_at is None
    )
    assert assets[ended].terminated_at and assets[ended].gone == assets[ended].terminated_at
    assert {a.uuid for c in chunks for a in c.gone()} == {gone, ended}
    truth = {a["id"]: a for a in sim.assets(filters={"since": cursor}, version="v2")}
    assert assets[gone].ipv4s == truth[gone]["ipv4s"] and assets[gone].hostnames == truth[gone]["hostnames"]
    sent = next(r for r in sim.requests if r.path == "/assets/v2/export")
    assert sent.body == {"chunk_size": 100, "filters": {"since": cursor}}  # clamped to Tenable's minimum


def test_asset_export_falls_back_to_v1_where_v2_is_refused(server, connector, clock):
    sim = server.sim
    cursor = int(clock.now)
    clock.now += 60
    sim.delete_asset(sim.asset_uuid(sim.scan_id("linux"), 1))
    sim.set_fault("flap", status=404, path="/assets/v2/export", times=5)
    job = connector.start_asset_export(AssetExportRequest(since=cursor))
    assert job.version == "v1"
    _, chunks = follow(connector.asset_export_status, connector.asset_export_chunk, job.uuid)
    assert {a.uuid for c in chunks for a in c.assets} == {
        a["id"] for a in sim.assets(filters={"updated_at": cursor})
    }
    connector.start_asset_export(AssetExportRequest(since=cursor))  # remembered: v2 is not asked again
    posts = [(r.path, r.body) for r in sim.requests if r.method == "POST"]
    assert posts == [
        ("/assets/v2/export", {"chunk_size": 1000, "filters": {"since": cursor}}),
        ("/assets/export", {"chunk_size": 1000, "filters": {"updated_at": cursor}}),
        ("/assets/export", {"chunk_size": 1000, "filters": {"updated_at": cursor}}),
    ]


def test_asset_export_cancel_and_the_whole_population(server, connector):
    job = connector.start_asset_export(AssetExportRequest(since=0, chunk_size=100))
    _, chunks = follow(connector.asset_export_status, connector.asset_export_chunk, job.uuid)
    assert sorted(a.uuid for c in chunks for a in c.assets) == sorted(a["id"] for a in server.sim.assets())
    other = connector.start_asset_export(AssetExportRequest(since=1, chunk_size=100))
    assert connector.cancel_asset_export(other.uuid) == "CANCELLED"


# -- a few downloads at once on one connector --------------------------------------------------------


@pytest.mark.parametrize(("threads", "peak"), [(4, 4), (6, 4)])
def test_chunks_download_from_several_threads_at_once_at_most_four(clock, threads, peak):
    sim = TenableSimulator(clock=clock, scans=0, churn=0)
    sim.big_scan(hosts=300, findings_per_host=4)
    with sim.serve() as server, connect(server) as connector:
        job = connector.start_vuln_export(VulnExportRequest(since=0, num_assets=50))
        status = connector.vuln_export_status(job.uuid)
        status = connector.vuln_export_status(job.uuid)  # four more chunks per poll
        assert status.complete and len(status.chunks_available) == 6
        sim.set_fault("slow", path="/chunks/", seconds=0.3)
        results: dict[int, VulnChunk] = {}
        errors: list[BaseException] = []

        def download(chunk_id: int) -> None:
            try:
                results[chunk_id] = connector.vuln_export_chunk(job.uuid, chunk_id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=download, args=(c,)) for c in status.chunks_available[:threads]]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert errors == [] and sim.peak_chunk_downloads(SIM_ACCESS_KEY) == peak
    findings = sorted(f.key for c in results.values() for f in c.findings)
    wanted = {c for c in status.chunks_available[:threads]}
    assert set(results) == wanted and len(findings) == len(set(findings)) == threads * 50 * 4
    pool = connector.client._session.get_adapter(server.url).poolmanager.connection_pool_kw
    assert pool["maxsize"] >= 5  # four downloads and a status poll keep their connections


class _KeepAlive(BaseHTTPRequestHandler):
    """Answers every chunk with an empty array after a pause, keeping the connection open (as Tenable does)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.1)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args):
        pass


def test_four_downloads_at_once_keep_their_pooled_connections(caplog):
    # The simulator closes every connection; a keep-alive server shows whether the pool holds four at once
    # (a smaller pool opens a connection per request and logs "Connection pool is full, discarding").
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    caplog.set_level(logging.WARNING, logger="urllib3")
    try:
        connector = TenableIOConnector(
            access_key="a",
            secret_key="b",
            api_url=f"http://127.0.0.1:{server.server_address[1]}",
            timeout=(2, 5),
        )
        workers = [
            threading.Thread(target=lambda: [connector.vuln_export_chunk("job", 1) for _ in range(3)])
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        connector.close()
    finally:
        server.shutdown()
        server.server_close()
    assert "Connection pool is full" not in caplog.text
