"""The simulator's bulk exports answer like TENABLE_API.md says: shapes, states, filters, limits and faults."""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime

import pytest
import requests

from integrations.connectors.tenable_io.simulator import TenableSimulator
from integrations.formats.nessus import iter_hosts
from tests.tenable_fixtures import SIM_BASIC_ACCESS_KEY, SimClock

ADMIN = {"X-ApiKeys": "accessKey=sim-access; secretKey=sim-secret"}
BASIC = {"X-ApiKeys": "accessKey=sim-basic-access; secretKey=sim-basic-secret"}
EVERYTHING = {"since": 0, "state": ["OPEN", "REOPENED", "FIXED"]}
DAY = 86400
STATUS_KEYS = {
    "uuid", "status", "chunks_available", "chunks_failed", "chunks_cancelled", "total_chunks",
    "chunks_available_count", "empty_chunks_count", "finished_chunks", "filters", "num_assets_per_chunk",
    "created",
}  # fmt: skip
POSTS = {"vulns": "/vulns/export", "assets": "/assets/export", "v2": "/assets/v2/export"}


def get(server, path, headers=ADMIN, **kwargs):
    return requests.get(server.url + path, headers=headers, timeout=10, **kwargs)


def post(server, path, body=None, headers=ADMIN):
    return requests.post(server.url + path, json=body, headers=headers, timeout=10)


def start(server, body=None, kind="vulns", headers=ADMIN) -> str:
    response = post(server, POSTS[kind], {"filters": EVERYTHING} if body is None else body, headers)
    assert response.status_code == 200, response.text
    return response.json()["export_uuid"]


def finish(server, uuid, kind="vulns", headers=ADMIN, polls=60):
    """Poll until the job ends, downloading each chunk as soon as it is listed: (statuses, records)."""
    kind = "assets" if kind == "v2" else kind
    statuses, records, seen = [], [], set()
    for _ in range(polls):
        status = get(server, f"/{kind}/export/{uuid}/status", headers).json()
        statuses.append(status)
        for chunk in status["chunks_available"]:
            if chunk not in seen:
                seen.add(chunk)
                records += get(server, f"/{kind}/export/{uuid}/chunks/{chunk}", headers).json()
        if status["status"] not in ("QUEUED", "PROCESSING"):
            return statuses, records
    raise AssertionError(f"export {uuid} still {statuses[-1]['status']} after {polls} polls")


def export(server, body=None, kind="vulns", headers=ADMIN):
    return finish(server, start(server, body, kind, headers), kind, headers)


def _everything():
    """sim.vulns() arguments for all states since the start of time."""
    return {"states": EVERYTHING["state"], "since": 0}


def ids(records):
    return sorted(r["finding_id"] for r in records)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def server(clock):
    with TenableSimulator(clock=clock, export_chunks_per_poll=1).serve() as running:
        yield running


# -- the job: status, chunks that finish out of order over polls ---------------------------------------


def test_status_shape_and_chunks_that_finish_out_of_order(server, clock):
    statuses, records = export(server)
    first, last = statuses[0], statuses[-1]
    assert set(last) == STATUS_KEYS | {"include_unlicensed"} and last["status"] == "FINISHED"
    assert first["status"] == "PROCESSING" and len(first["chunks_available"]) == 1
    assert [len(s["chunks_available"]) for s in statuses] == list(range(1, last["total_chunks"] + 1))
    assert last["chunks_available"] != sorted(last["chunks_available"])  # finished out of order
    assert last["created"] == int(clock.now * 1000) and last["num_assets_per_chunk"] == 50
    assert last["filters"]["state"] == ["OPEN", "REOPENED", "FIXED"] and last["finished_chunks"] == 4
    assert ids(records) == ids(server.sim.vulns(states=EVERYTHING["state"], since=0))
    chunk = get(server, f"/vulns/export/{last['uuid']}/chunks/{last['chunks_available'][0]}")
    assert chunk.headers["Content-Type"] == "application/octet-stream" and chunk.json()


def test_pace_is_configurable_and_fast_by_default():
    with TenableSimulator(export_queued_polls=2).serve() as server:
        statuses, _ = export(server)
    assert [s["status"] for s in statuses] == ["QUEUED", "QUEUED", "FINISHED"]
    assert statuses[0]["chunks_available"] == [] and len(statuses[-1]["chunks_available"]) == 4


def test_chunks_can_appear_over_time(clock):
    with TenableSimulator(clock=clock, export_chunk_seconds=10).serve() as server:
        uuid = start(server)
        seen = []
        for _ in range(5):
            status = get(server, f"/vulns/export/{uuid}/status").json()
            seen.append((status["status"], len(status["chunks_available"])))
            clock.now += 10
    assert seen == [
        ("PROCESSING", 0),
        ("PROCESSING", 1),
        ("PROCESSING", 2),
        ("PROCESSING", 3),
        ("FINISHED", 4),
    ]


def test_empty_chunks_are_counted_not_listed(server, clock):
    sim = server.sim
    clock.now += 2 * DAY
    sim.add_run(sim.scan_id("trash"))  # only this scan's 20 hosts were seen in the last day
    statuses, records = export(server, {"filters": {"since": int(clock.now - DAY)}})
    last = statuses[-1]
    assert last["empty_chunks_count"] >= 1 and last["total_chunks"] == 4
    assert last["chunks_available_count"] == 4 - last["empty_chunks_count"]
    assert {r["asset"]["ipv4"].split(".")[1] for r in records} == {str(sim.scan_id("trash") % 200)}


# -- findings: consistent with the scans, states over runs ---------------------------------------------


def test_findings_are_the_hosts_and_plugins_of_the_scans(server):
    sim = server.sim
    scan_id = sim.scan_id("windows")
    hosts = {h.host_uuid: h for h in iter_hosts(io.BytesIO(b"".join(sim.export_document(scan_id))))}
    _, records = export(server, {"include_unlicensed": True, "filters": EVERYTHING})
    latest = [r for r in records if r["asset"]["uuid"] in hosts and r["state"] != "FIXED"]
    latest = [r for r in latest if r["scan"]["uuid"] == get_run_uuid(server, scan_id)]
    seen = {(r["asset"]["uuid"], r["plugin"]["id"], r["port"]["port"], r["port"]["protocol"]) for r in latest}
    assert seen == {
        (h.host_uuid, i.plugin_id, i.port, i.protocol.upper()) for h in hosts.values() for i in h.items
    }
    for r in latest:
        host = hosts[r["asset"]["uuid"]]
        item = next(i for i in host.items if i.plugin_id == r["plugin"]["id"])
        assert (r["asset"]["ipv4"], r["asset"].get("fqdn"), r["asset"].get("netbios_name")) == (
            host.ip,
            host.fqdn,
            host.netbios,
        )
        assert r["severity_default_id"] == item.severity and r["plugin"].get("cve", []) == item.cves
        assert [x["id"] for x in r["plugin"].get("xrefs", [])] == item.cwes
        assert r["plugin"].get("vpr", {}).get("score") == item.vpr_score
        assert r["output"].strip() == item.plugin_output.strip() and r["source"] == "NESSUS"
        word = ["info", "low", "medium", "high", "critical"][r["severity_id"]]
        assert r["severity"] == word and r["severity_modification_type"] in ("NONE", "RECASTED", "ACCEPTED")
    assert ids(records) == ids(export(server, {"include_unlicensed": True, "filters": EVERYTHING})[1])


def get_run_uuid(server, scan_id):
    return get(server, f"/scans/{scan_id}").json()["info"]["uuid"]


def test_recast_and_accepted_findings_keep_their_default_severity(server):
    records = server.sim.vulns(states=EVERYTHING["state"], since=0, include_unlicensed=True)
    recast = [r for r in records if r["severity_modification_type"] == "RECASTED"]
    accepted = [r for r in records if r["severity_modification_type"] == "ACCEPTED"]
    assert recast and accepted
    assert all(r["severity_id"] == r["severity_default_id"] - 1 for r in recast)
    assert all(r["severity_id"] == r["severity_default_id"] for r in accepted)


def test_2018_schema_has_no_finding_id_indexed_vpr_or_source():
    with TenableSimulator(finding_schema="2018").serve() as server:
        _, records = export(server)
    assert records and not any({"finding_id", "indexed", "source"} & set(r) for r in records)
    assert not any("vpr" in r["plugin"] for r in records)


def test_open_fixed_reopened_across_runs(clock):
    sim = TenableSimulator(clock=clock, churn=0, hosts_down=0)
    scan_id = sim.scan_id("linux")
    asset = sim.asset_uuid(scan_id, 3)
    body = {"include_unlicensed": True, "filters": EVERYTHING}
    with sim.serve() as server:
        before = [r for r in export(server, body)[1] if r["asset"]["uuid"] == asset]
        plugin = before[0]["plugin"]["id"]
        clock.now += DAY
        sim.add_run(scan_id, fixed=[(asset, plugin)])  # the run no longer finds it on host 3
        fixed_at = clock.now + 60 + 3 * 3
        after_fix = find(export(server, body)[1], asset, plugin)
        clock.now += DAY
        sim.add_run(scan_id)
        reopened = find(export(server, body)[1], asset, plugin)
    assert before[0]["state"] == "OPEN" and "last_fixed" not in before[0]
    assert after_fix["state"] == "FIXED" and epoch(after_fix["last_fixed"]) == fixed_at
    assert reopened["state"] == "REOPENED" and epoch(reopened["resurfaced_date"]) == fixed_at + DAY
    assert reopened["first_found"] == before[0]["first_found"] == after_fix["first_found"]
    assert (
        reopened["finding_id"] == before[0]["finding_id"] and epoch(reopened["last_found"]) == fixed_at + DAY
    )
    assert reopened == find(sim.vulns(**_everything(), include_unlicensed=True), asset, plugin)


def find(records, asset, plugin):
    return next(r for r in records if r["asset"]["uuid"] == asset and r["plugin"]["id"] == plugin)


def test_a_launched_scan_moves_states_when_it_completes(clock):
    sim = TenableSimulator(clock=clock, launch_seconds=10, hosts_down=0)
    scan_id = sim.scan_id("linux")
    with sim.serve() as server:
        before = {r["finding_id"]: r for r in export(server, {"filters": EVERYTHING})[1]}
        post(server, f"/scans/{scan_id}/launch", {})
        clock.now += 5
        assert ids(export(server, {"filters": {**EVERYTHING, "severity": ["info"]}})[1]) == ids(
            [r for r in before.values() if r["severity"] == "info"]
        )  # a running scan changes nothing yet
        clock.now += 10
        after = {r["finding_id"]: r for r in export(server, {"filters": EVERYTHING})[1]}
    fixed = [r for k, r in after.items() if r["state"] == "FIXED" and before[k]["state"] != "FIXED"]
    new = set(after) - set(before)
    assert fixed and new and all(epoch(r["last_fixed"]) >= clock.now - 15 for r in fixed)
    assert sorted(after) == ids(sim.vulns(**_everything()))


# -- filters and windows ---------------------------------------------------------------------------


def test_since_returns_found_and_fixed_since_the_cursor(server, clock):
    sim = server.sim
    cursor = int(clock.now)
    clock.now += DAY
    sim.add_run(sim.scan_id("linux"))  # churn: some findings fixed, some new
    _, records = export(server, {"filters": {"since": cursor, "state": EVERYTHING["state"]}})
    everything = sim.vulns(states=EVERYTHING["state"], since=0)
    wanted = [
        r
        for r in everything
        if (r["state"] == "FIXED" and epoch(r["last_fixed"]) >= cursor)
        or (r["state"] != "FIXED" and epoch(r["last_found"]) >= cursor)
    ]
    assert ids(records) == ids(wanted) and len(wanted) < len(everything)
    assert {r["state"] for r in records} == {"OPEN", "FIXED"}
    open_only = export(server, {"filters": {"since": cursor}})[1]
    assert ids(open_only) == ids([r for r in wanted if r["state"] != "FIXED"])


def test_without_a_time_filter_only_the_last_30_days_come_back(server, clock):
    sim = server.sim
    assert len(export(server, {})[1]) == len(sim.vulns(since=0))
    clock.now += 31 * DAY
    assert export(server, {})[1] == [] and export(server, {"filters": {"since": 0}})[1]
    sim.add_run(sim.scan_id("windows"))
    recent = export(server, {})[1]
    assert recent and {r["scan"]["uuid"] for r in recent} == {get_run_uuid(server, sim.scan_id("windows"))}


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"since": 5, "last_found": 5, "state": ["OPEN"]}, "'since' cannot be combined"),
        ({"last_found": 5}, "require the 'state' filter"),
        ({"first_found": "yesterday", "state": ["OPEN"]}, "'first_found' must be a whole number"),
        ({"state": ["CLOSED"]}, "Invalid 'state' value 'CLOSED'"),
        ({"severity": ["urgent"]}, "Invalid 'severity' value 'urgent'"),
    ],
)
def test_bad_filters_are_400(server, filters, message):
    response = post(server, "/vulns/export", {"filters": filters})
    assert response.status_code == 400 and message in response.json()["message"]


def test_first_found_last_found_and_last_fixed_with_state(server, clock):
    sim = server.sim
    everything = sim.vulns(states=EVERYTHING["state"], since=0)
    cursor = sorted(epoch(r["last_found"]) for r in everything)[len(everything) // 2]
    for name in ("first_found", "last_found", "last_fixed"):
        records = export(server, {"filters": {name: int(cursor), "state": EVERYTHING["state"]}})[1]
        wanted = [r for r in everything if name in r and epoch(r[name]) >= int(cursor)]
        assert ids(records) == ids(wanted), name


def test_severity_plugin_tag_and_license_filters(server):
    sim = server.sim
    everything = sim.vulns(states=EVERYTHING["state"], since=0, include_unlicensed=True)
    critical = export(server, {"filters": {**EVERYTHING, "severity": ["critical"]}})[1]
    assert critical and {r["severity"] for r in critical} == {"critical"}
    plugin = everything[0]["plugin"]["id"]
    one_plugin = export(
        server, {"include_unlicensed": True, "filters": {**EVERYTHING, "plugin_id": [plugin]}}
    )[1]
    assert ids(one_plugin) == ids([r for r in everything if r["plugin"]["id"] == plugin])
    dallas = {a["id"] for a in sim.assets() if ("Location", "Dallas") in _tags(a)}
    tagged = export(server, {"filters": {**EVERYTHING, "tag.Location": ["Dallas"]}})[1]
    assert tagged and {r["asset"]["uuid"] for r in tagged} <= dallas
    licensed = export(server, {"filters": EVERYTHING})[1]
    unlicensed = export(server, {"include_unlicensed": True, "filters": EVERYTHING})[1]
    assert len(licensed) < len(unlicensed) == len(everything)


def _tags(asset):
    return {(t["tag_key"], t["tag_value"]) for t in asset["tags"]}


@pytest.mark.parametrize(("asked", "used"), [(1, 50), (100, 100), (100_000, 5000)])
def test_num_assets_is_clamped(server, asked, used):
    status = finish(server, start(server, {"num_assets": asked, "filters": EVERYTHING}))[0][-1]
    assert status["num_assets_per_chunk"] == used


# -- limits, cancel, expiry ------------------------------------------------------------------------


def test_duplicate_vuln_export_is_409_naming_the_active_job(server):
    first = start(server)
    duplicate = post(server, "/vulns/export", {"filters": EVERYTHING})
    assert duplicate.status_code == 409 and duplicate.json()["active_job_id"] == first
    assert "Duplicate export" in duplicate.json()["failure_reason"]
    assert post(server, "/vulns/export", {"filters": EVERYTHING}, BASIC).status_code == 200  # another user
    finish(server, first)
    assert start(server) != first


def test_duplicate_asset_export_cancels_the_old_job(server):
    old = start(server, {"chunk_size": 100}, "assets")
    get(server, f"/assets/export/{old}/status")
    new = start(server, {"chunk_size": 100}, "assets")
    status = get(server, f"/assets/export/{old}/status").json()
    assert new != old and status["status"] == "CANCELLED" and status["chunks_cancelled"]
    assert finish(server, new, "assets")[0][-1]["status"] == "FINISHED"


def test_at_most_10_jobs_at_once_then_429(server):
    for n in range(10):
        start(server, {"filters": {"since": n}})
    refused = post(server, "/vulns/export", {"filters": {"since": 99}})
    assert refused.status_code == 429 and refused.headers["retry-after"] and refused.text.startswith("<html>")
    assert post(server, "/assets/export", {"chunk_size": 100}).status_code == 429
    job = server.sim.export_jobs()[0]["uuid"]
    assert post(server, f"/vulns/export/{job}/cancel").json() == {"status": "CANCELLED"}
    assert post(server, "/vulns/export", {"filters": {"since": 99}}).status_code == 200
    assert server.sim.export_jobs_created == 11


def test_cancel_keeps_finished_chunks_and_lists_jobs(server):
    uuid = start(server)
    listed = get(server, f"/vulns/export/{uuid}/status").json()["chunks_available"]
    assert post(server, f"/vulns/export/{uuid}/cancel").json() == {"status": "CANCELLED"}
    status = get(server, f"/vulns/export/{uuid}/status").json()
    assert status["status"] == "CANCELLED" and len(status["chunks_cancelled"]) == 3
    assert get(server, f"/vulns/export/{uuid}/chunks/{listed[0]}").status_code == 200
    assert get(server, f"/vulns/export/{uuid}/chunks/{status['chunks_cancelled'][0]}").status_code == 404
    jobs = get(server, "/vulns/export/status").json()["exports"]
    assert [j["uuid"] for j in jobs] == [uuid] and jobs[0]["status"] == "CANCELLED"


def test_chunks_expire_after_24_hours_or_on_demand(server, clock):
    uuid = start(server)
    statuses, _ = finish(server, uuid)
    chunk = f"/vulns/export/{uuid}/chunks/{statuses[-1]['chunks_available'][0]}"
    clock.now += 23 * 3600
    assert get(server, chunk).status_code == 200
    clock.now += 2 * 3600
    expired = get(server, chunk)
    assert expired.status_code == 404 and expired.json() == {"error": "The requested file was not found"}
    other = start(server, {"filters": {"since": 1}})
    first = get(server, f"/vulns/export/{other}/status").json()["chunks_available"][0]
    server.sim.expire_chunks(other)
    assert get(server, f"/vulns/export/{other}/chunks/{first}").status_code == 404


# -- assets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [99, 10_001, None, "100"])
def test_asset_chunk_size_outside_100_to_10000_is_400(server, size):
    response = post(server, "/assets/export", {"chunk_size": size})
    assert response.status_code == 400 and "'chunk_size'" in response.json()["message"]


def test_asset_export_shape_matches_the_hosts(server):
    sim = server.sim
    _, assets = export(server, {"chunk_size": 100}, "assets")
    assert len(assets) == len(sim.assets()) == 220  # 11 scans that ran × 20 hosts, licensed or not
    asset = next(a for a in assets if a["id"] == sim.asset_uuid(sim.scan_id("completed"), 0))
    assert asset["ipv4s"] == [f"10.{sim.scan_id('completed') % 200}.0.1"] and asset["deleted_at"] is None
    for name in (
        "fqdns",
        "hostnames",
        "netbios_names",
        "mac_addresses",
        "operating_systems",
        "sources",
        "tags",
    ):
        assert isinstance(asset[name], list), name
    assert {"Location", "Environment"} <= {t["tag_key"] for t in asset["tags"]}  # the scan's tag targets


def test_deleted_and_terminated_assets(server, clock):
    sim = server.sim
    scan_id = sim.scan_id("linux")
    gone, ended = sim.asset_uuid(scan_id, 1), sim.asset_uuid(scan_id, 2)
    assert {gone, ended} <= {r["asset"]["uuid"] for r in sim.vulns(since=0, include_unlicensed=True)}
    cursor = int(clock.now)
    clock.now += 60
    sim.delete_asset(gone)
    sim.terminate_asset(ended)
    left = {
        r["asset"]["uuid"] for r in export(server, {"include_unlicensed": True, "filters": EVERYTHING})[1]
    }
    assert not {gone, ended} & left
    updated = export(server, {"chunk_size": 100, "filters": {"updated_at": cursor}}, "assets")[1]
    assert {a["id"] for a in updated} == {gone, ended}
    deleted = next(a for a in updated if a["id"] == gone)
    assert epoch(deleted["deleted_at"]) == clock.now and deleted["terminated_at"] is None
    only = export(server, {"chunk_size": 100, "filters": {"is_terminated": True}}, "assets")[1]
    assert [a["id"] for a in only] == [ended] and only[0]["terminated_at"]
    v2 = export(server, {"chunk_size": 100, "filters": {"since": cursor}}, "v2")[1]
    assert {a["id"] for a in v2} == {gone, ended} and all(a["types"] == ["host"] for a in v2)
    assert export(server, {"chunk_size": 100, "filters": {"types": ["webapp"]}}, "v2")[1] == []


# -- faults ----------------------------------------------------------------------------------------


def test_rate_limit_on_chunk_downloads(server):
    server.sim.set_fault("rate_limit", path="/chunks/", every=2, retry_after="3")
    uuid = start(server)
    chunk = get(server, f"/vulns/export/{uuid}/status").json()["chunks_available"][0]
    answers = [get(server, f"/vulns/export/{uuid}/chunks/{chunk}") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429] and answers[1].headers["retry-after"] == "3"


def test_export_stuck_in_queued(server):
    server.sim.set_fault("export_queued")
    uuid = start(server)
    assert {get(server, f"/vulns/export/{uuid}/status").json()["status"] for _ in range(5)} == {"QUEUED"}
    server.sim.clear_faults()
    assert get(server, f"/vulns/export/{uuid}/status").json()["status"] == "PROCESSING"


def test_error_with_partial_chunks(server):
    server.sim.set_fault("export_error_partial", path="/vulns/export", available=2)
    statuses, records = export(server)
    last = statuses[-1]
    assert (
        last["status"] == "ERROR"
        and len(last["chunks_available"]) == 2
        and len(last["chunks_cancelled"]) == 2
    )
    assert last["reason"] and 0 < len(records) < len(server.sim.vulns(**_everything()))


def test_finished_with_failed_chunks(server):
    server.sim.set_fault("export_chunks_failed", failed=1)
    statuses, records = export(server)
    last = statuses[-1]
    assert last["status"] == "FINISHED" and len(last["chunks_failed"]) == 1
    assert last["reason"] == "1 of 4 chunks failed to process. Please re-run the export."
    assert get(server, f"/vulns/export/{last['uuid']}/chunks/{last['chunks_failed'][0]}").status_code == 404
    assert len(records) < len(server.sim.vulns(**_everything()))


def test_chunk_404_fault(server):
    uuid = start(server)
    chunk = get(server, f"/vulns/export/{uuid}/status").json()["chunks_available"][0]
    server.sim.set_fault("chunk_not_found", times=1)
    assert [get(server, f"/vulns/export/{uuid}/chunks/{chunk}").status_code for _ in "ab"] == [404, 200]


@pytest.mark.parametrize("mode", ["invalid", "truncated"])
def test_chunk_with_invalid_or_truncated_json(server, mode):
    uuid = start(server)
    chunk = get(server, f"/vulns/export/{uuid}/status").json()["chunks_available"][0]
    server.sim.set_fault("chunk_invalid_json", mode=mode, times=1)
    broken = get(server, f"/vulns/export/{uuid}/chunks/{chunk}")
    assert broken.status_code == 200 and int(broken.headers["Content-Length"]) == len(broken.content)
    with pytest.raises(ValueError):
        broken.json()
    assert get(server, f"/vulns/export/{uuid}/chunks/{chunk}").json()


def test_keys_revoked_mid_export(server):
    server.sim.set_fault("revoked_key", key="sim-access", after=2)
    uuid = start(server)
    assert get(server, f"/vulns/export/{uuid}/status").status_code == 200
    revoked = get(server, f"/vulns/export/{uuid}/status")
    assert revoked.status_code == 401 and revoked.json()["message"] == "Invalid credentials."
    assert get(server, "/scans", BASIC).status_code == 200


# -- counting, preparing, big scans ----------------------------------------------------------------


def test_peak_concurrent_chunk_downloads_per_key(server):
    sim = server.sim
    uuid = start(server, {"filters": EVERYTHING})
    chunks = finish_listing(server, uuid)
    sim.set_fault("slow", path="/chunks/", seconds=0.3)
    threads = [
        threading.Thread(target=get, args=(server, f"/vulns/export/{uuid}/chunks/{c}")) for c in chunks[:3]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sim.clear_faults()
    basic = start(server, headers=BASIC)
    for chunk in finish_listing(server, basic, BASIC):
        get(server, f"/vulns/export/{basic}/chunks/{chunk}", BASIC)
    assert sim.peak_chunk_downloads("sim-access") == 3 and sim.peak_requests("sim-access") == 3
    assert sim.peak_chunk_downloads(SIM_BASIC_ACCESS_KEY) == 1 and sim.export_jobs_created == 2


def finish_listing(server, uuid, headers=ADMIN):
    return finish(server, uuid, headers=headers)[0][-1]["chunks_available"]


def test_prepared_export_is_served_from_disk(tmp_path):
    sim = TenableSimulator(export_chunks_per_poll=1)
    body = {"num_assets": 50, "filters": EVERYTHING}
    prepared = sim.prepare_vulns_export(body=body, directory=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"chunk-{c}.json" for c in prepared.chunk_ids)
    with sim.serve() as server:
        statuses, records = export(server, body)
    assert len(statuses) == 1 and statuses[0]["status"] == "FINISHED"  # all available at once
    on_disk = [r for c in prepared.chunk_ids for r in json.loads((tmp_path / f"chunk-{c}.json").read_bytes())]
    assert ids(records) == ids(on_disk) == ids(sim.vulns(**_everything())) and prepared.findings == len(
        records
    )


def test_a_prepared_incremental_export_whose_last_chunks_are_empty(tmp_path):
    """Only the first hosts were rescanned, so the plan's last chunks are empty: preparing must still work."""
    sim = TenableSimulator(scans=0, churn=0)
    scan_id = sim.big_scan(hosts=300, findings_per_host=5)
    sim.advance(DAY)
    since = int(sim.now())
    sim.advance(60)
    sim.add_run(scan_id, down=range(50, 300))
    body = {"num_assets": 50, "filters": {**EVERYTHING, "since": since}}
    prepared = sim.prepare_vulns_export(body=body, directory=str(tmp_path))
    with sim.serve() as server:
        _, records = export(server, body)
    assert prepared.findings == len(records) > 0
    assert ids(records) == ids(sim.vulns(states=EVERYTHING["state"], since=since))


def test_big_scan_exports_with_the_nessus_host_ids():
    sim = TenableSimulator(scans=0, churn=0)
    scan_id = sim.big_scan(hosts=300, findings_per_host=20)
    hosts = {h.host_uuid: h.ip for h in iter_hosts(io.BytesIO(b"".join(sim.export_document(scan_id))))}
    with sim.serve() as server:
        _, records = export(server, {"num_assets": 100})
    assert len(records) == 300 * 20
    assert {(r["asset"]["uuid"], r["asset"]["ipv4"]) for r in records} == set(hosts.items())
