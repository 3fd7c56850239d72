"""The fake Tenable.io answers like TENABLE_API.md says, keeps state, streams exports and injects faults."""

from __future__ import annotations

import gzip
import time
import tracemalloc

import pytest
import requests

from integrations.connectors.tenable_io.simulator import FAULTS, TenableSimulator
from integrations.formats.nessus import iter_hosts
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_SECRET_KEY

KEYS = {"X-ApiKeys": f"accessKey={SIM_ACCESS_KEY}; secretKey={SIM_SECRET_KEY}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def get(server, path, **kwargs):
    kwargs.setdefault("headers", KEYS)
    return requests.get(server.url + path, timeout=10, **kwargs)


def post(server, path, body=None, **kwargs):
    kwargs.setdefault("headers", KEYS)
    return requests.post(server.url + path, json={} if body is None else body, timeout=10, **kwargs)


def export(server, scan_id, history_id=None, **kwargs):
    query = f"?history_id={history_id}" if history_id else ""
    file_id = post(
        server, f"/scans/{scan_id}/export{query}", {"format": "nessus", "chapters": "vuln_by_host"}
    ).json()
    return file_id["file"]


def tuples(sim, scan_id, history_id=None):
    return {f[:4] for f in sim.findings(scan_id, history_id)}


# -- shape of the answers --------------------------------------------------------------------------


def test_list_has_every_status_and_the_documented_shape(tenable_simulator):
    response = get(tenable_simulator, "/scans")
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert {"folders", "scans", "timestamp"} <= set(body)
    statuses = {s["status"] for s in body["scans"]}
    assert {"completed", "empty", "running", "canceled", "aborted", "imported"} <= statuses
    assert all("folder_id" not in s for s in body["scans"])
    assert {f["type"] for f in body["folders"]} == {"main", "trash", "custom"}


def test_never_run_scan_shape(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("never_run")
    item = next(s for s in get(tenable_simulator, "/scans").json()["scans"] if s["id"] == scan_id)
    assert (item["uuid"], item["type"], item["creation_date"], item["last_modification_date"]) == (
        None,
        None,
        0,
        0,
    )
    details = get(tenable_simulator, f"/scans/{scan_id}").json()
    assert (
        details["history"] == [] and details["info"]["status"] == "empty" and details["info"]["uuid"] is None
    )


def test_details_history_archive_and_references(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    details = get(tenable_simulator, f"/scans/{scan_id}").json()
    history = details["history"]
    assert [h["history_id"] for h in history] == sorted(sim.history_ids(scan_id), reverse=True)
    assert details["info"]["uuid"] == history[0]["uuid"] and details["hosts"] and details["vulnerabilities"]
    oldest = history[-1]
    archived = get(tenable_simulator, f"/scans/{scan_id}?history_id={oldest['uuid']}").json()
    assert archived["info"]["is_archived"] and archived["hosts"] == [] and archived["vulnerabilities"] == []
    by_schedule = get(tenable_simulator, f"/scans/{details['info']['schedule_uuid']}").json()
    assert by_schedule["info"]["object_id"] == scan_id
    assert get(tenable_simulator, f"/scans/{scan_id}?history_id=1").json() == {"error": "Scan not found"}
    assert get(tenable_simulator, "/scans/424242").status_code == 404


def test_imported_scan_has_no_hostcount_and_a_52_char_uuid(tenable_simulator):
    info = get(tenable_simulator, f"/scans/{tenable_simulator.sim.scan_id('imported')}").json()["info"]
    assert "hostcount" not in info and len(info["uuid"]) == 52 and info["control"] is False


def test_tags_editor_and_agent_groups(tenable_simulator):
    sim = tenable_simulator.sim
    value = next(iter(sim.tag_values))
    assert get(tenable_simulator, f"/tags/values/{value}").json()["category_name"] == "Location"
    inputs = get(tenable_simulator, f"/editor/scan/{sim.scan_id('agent')}").json()["settings"]["basic"][
        "inputs"
    ]
    wanted = next(i for i in inputs if i["id"] == "agent_group_id")["default"]
    groups = get(tenable_simulator, "/scanners/null/agent-groups").json()["groups"]
    assert {g["uuid"] for g in groups} >= set(wanted) and len(wanted) == 2
    assert get(tenable_simulator, "/filters/scans/reports").json() == {"filters": []}
    unknown = get(tenable_simulator, "/no/such/thing")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("application/json")


# -- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"accessKey={SIM_ACCESS_KEY}; secretKey={SIM_SECRET_KEY}",
        f"accessKey={SIM_ACCESS_KEY};secretKey={SIM_SECRET_KEY}",
        f"accessKey={SIM_ACCESS_KEY}; secretKey={SIM_SECRET_KEY};",
        f"accesskey={SIM_ACCESS_KEY};  SECRETKEY={SIM_SECRET_KEY} ;",
    ],
)
def test_api_keys_header_variants(tenable_simulator, header):
    assert get(tenable_simulator, "/session", headers={"x-apikeys": header}).status_code == 200


def test_auth_failures_answer_like_tenable(tenable_simulator):
    missing = get(tenable_simulator, "/scans", headers={})
    assert (missing.status_code, missing.json()["message"]) == (401, "Missing authentication")
    wrong = get(tenable_simulator, "/scans", headers={"X-ApiKeys": "accessKey=a;secretKey=b"})
    assert wrong.json() == {"statusCode": 401, "error": "Unauthorized", "message": "Invalid credentials."}
    forbidden = get(
        tenable_simulator,
        "/scans",
        headers={"X-ApiKeys": "accessKey=sim-forbidden-access;secretKey=sim-forbidden-secret"},
    )
    assert forbidden.json() == {"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope"}
    recorded = tenable_simulator.sim.requests
    assert [r.auth for r in recorded] == ["missing", "invalid", "forbidden"]
    assert recorded[0].has_api_keys_header is False and "sim-forbidden-secret" not in repr(recorded)


# -- launch lifecycle ------------------------------------------------------------------------------


def test_launch_lifecycle_follows_the_injected_clock():
    clock = Clock()
    sim = TenableSimulator(clock=clock, launch_seconds=10)
    scan_id = sim.scan_id("linux")
    with sim.serve() as server:
        run_uuid = post(server, f"/scans/{scan_id}/launch").json()["scan_uuid"]
        seen = []
        for step in (0, 2, 6, 8, 10):
            clock.now = 1_700_000_000.0 + step
            seen.append(get(server, f"/scans/{scan_id}/latest-status").json()["status"])
        assert seen == ["pending", "running", "running", "publishing", "completed"]
        history = get(server, f"/scans/{scan_id}").json()["history"]
        assert history[0]["uuid"] == run_uuid and len(history) == 4
        clock.now += 1
        assert post(server, f"/scans/{scan_id}/launch").status_code == 200
        assert post(server, f"/scans/{scan_id}/launch").status_code == 409  # still active
        assert post(server, f"/scans/{sim.scan_id('imported')}/launch").status_code == 403


@pytest.mark.parametrize("outcome", ["canceled", "aborted"])
def test_launch_outcome_knob(outcome):
    clock = Clock()
    sim = TenableSimulator(clock=clock, launch_seconds=1)
    scan_id = sim.scan_id(outcome)
    with sim.serve() as server:
        post(server, f"/scans/{scan_id}/launch")
        clock.now += 5
        assert get(server, f"/scans/{scan_id}/latest-status").json() == {"status": outcome}


def test_more_than_25_active_scans_is_429():
    sim = TenableSimulator(scans=30, launch_seconds=1000)
    with sim.serve() as server:
        codes = [
            post(server, f"/scans/{s['id']}/launch").status_code
            for s in get(server, "/scans").json()["scans"]
        ]
    assert codes.count(200) == 24  # one scan was already running
    assert 429 in codes


# -- exports ---------------------------------------------------------------------------------------


def test_export_flow_streams_a_parseable_document(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    history_id = sim.history_ids(scan_id)[1]
    file_id = export(tenable_simulator, scan_id, history_id)
    assert file_id.startswith("SSE-") and file_id.endswith("-nessus")
    statuses = [
        get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/status").json()["status"] for _ in "ab"
    ]
    assert statuses == ["loading", "ready"]
    response = get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/download", stream=True)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Transfer-Encoding"] == "chunked"
    response.raw.decode_content = True
    hosts = list(iter_hosts(response.raw))
    assert {(h.ip, i.plugin_id, i.port, i.protocol) for h in hosts for i in h.items} == tuples(
        sim, scan_id, history_id
    )
    assert sum(len(h.items) for h in hosts) == 20 * 15 - 15  # one host was down for this run
    assert all(h.fqdn or h.netbios or h.ip for h in hosts) and all(
        h.host_uuid and h.mac and h.os for h in hosts
    )
    assert {i.severity for h in hosts for i in h.items} == {0, 1, 2, 3, 4}
    assert get(tenable_simulator, f"/scans/{scan_id}/export/nope/status").status_code == 404


def test_gzip_downloads_knob():
    sim = TenableSimulator(gzip_downloads=True)
    with sim.serve() as server:
        file_id = export(server, sim.scan_id("windows"))
        response = get(server, f"/scans/{sim.scan_id('windows')}/export/{file_id}/download", stream=True)
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.raw.read()).endswith(b"</NessusClientData_v2>\n")


def test_more_than_10_loading_exports_is_429(tenable_simulator):
    sim = tenable_simulator.sim
    scans = [s for s in get(tenable_simulator, "/scans").json()["scans"] if s["uuid"]]
    codes = [
        post(tenable_simulator, f"/scans/{s['id']}/export", {"format": "nessus"}).status_code for s in scans
    ]
    assert codes[:10] == [200] * 10 and codes[10] == 429
    assert len(sim.requests) == len(scans) + 1


def test_download_is_generated_lazily_in_flat_memory():
    sim = TenableSimulator(scans=0)
    scan_id = sim.big_scan(hosts=400, findings_per_host=50)
    tracemalloc.start()
    total = sum(len(chunk) for chunk in sim.export_document(scan_id))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > 20_000_000 and peak < 3_000_000


# -- deterministic data and churn ------------------------------------------------------------------


def test_same_seed_same_data():
    clock = Clock()
    one, two = TenableSimulator(seed=7, clock=clock), TenableSimulator(seed=7, clock=clock)
    scan_id = one.scan_id("linux")
    assert list(one.findings(scan_id)) == list(two.findings(scan_id))
    assert tuples(one, scan_id) != tuples(TenableSimulator(seed=8, clock=clock), scan_id)


@pytest.mark.parametrize("churn", [0.05, 0.2])
def test_consecutive_runs_differ_by_churn(churn):
    sim = TenableSimulator(scans=0, churn=churn, hosts_down=0)
    scan_id = sim.add_scan("churny", hosts=50, findings_per_host=40, runs=2)
    old, new = (tuples(sim, scan_id, h) for h in sim.history_ids(scan_id))
    assert len(old) == len(new) == 2000
    gone, added = len(old - new) / len(old), len(new - old) / len(new)
    assert gone == added and churn * 0.6 <= gone <= churn * 1.4


def test_no_churn_means_identical_runs():
    sim = TenableSimulator(scans=0, churn=0, hosts_down=0)
    scan_id = sim.add_scan("stable", runs=2)
    old, new = (tuples(sim, scan_id, h) for h in sim.history_ids(scan_id))
    assert old == new


def test_a_host_is_down_in_a_later_run(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    first, second = (tuples(sim, scan_id, h) for h in sim.history_ids(scan_id)[:2])
    assert {t[0] for t in first} - {t[0] for t in second}


# -- faults ----------------------------------------------------------------------------------------


def test_rate_limit_every_nth_call_with_html_body(tenable_simulator):
    tenable_simulator.sim.set_fault("rate_limit", every=2, retry_after="7")
    responses = [get(tenable_simulator, "/session") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 429, 200, 429]
    assert responses[1].headers["retry-after"] == "7" and responses[1].text.startswith("<html>")


def test_flap_after_and_times(tenable_simulator):
    tenable_simulator.sim.set_fault("flap", status=502, after=1, times=2)
    assert [get(tenable_simulator, "/session").status_code for _ in range(4)] == [200, 502, 502, 200]


def test_faults_can_target_a_scan_a_key_or_a_method(tenable_simulator):
    sim = tenable_simulator.sim
    linux, windows = sim.scan_id("linux"), sim.scan_id("windows")
    sim.set_fault("flap", scan_id=linux, status=504, times=10)
    sim.set_fault("flap", key="someone-else", status=500, times=10)
    sim.set_fault("forbidden", method="POST", path="/launch")
    assert get(tenable_simulator, f"/scans/{linux}/latest-status").status_code == 504
    assert get(tenable_simulator, f"/scans/{windows}/latest-status").status_code == 200
    assert post(tenable_simulator, f"/scans/{windows}/launch").status_code == 403
    sim.clear_faults("flap")
    assert get(tenable_simulator, f"/scans/{linux}/latest-status").status_code == 200
    sim.clear_faults()
    assert post(tenable_simulator, f"/scans/{windows}/launch").status_code == 200


def test_slow_fault(tenable_simulator):
    tenable_simulator.sim.set_fault("slow", seconds=0.3, times=1)
    started = time.monotonic()
    assert get(tenable_simulator, "/session").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_export_faults(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    sim.set_fault("export_stuck", scan_id=scan_id)
    file_id = export(tenable_simulator, scan_id)
    polls = {
        get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/status").json()["status"] for _ in range(5)
    }
    assert polls == {"loading"}
    sim.clear_faults()
    sim.set_fault("export_error")
    assert get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/status").json() == {"status": "error"}


@pytest.mark.parametrize("mode", ["length", "chunked"])
def test_truncated_download_breaks_the_transfer(tenable_simulator, mode):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    sim.set_fault("truncated_download", mode=mode)
    file_id = export(tenable_simulator, scan_id)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/download").content  # noqa: B018


def test_close_delimited_truncation_and_malformed_xml(tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    file_id = export(tenable_simulator, scan_id)
    sim.set_fault("truncated_download", mode="close", times=1)
    cut = get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/download")
    assert cut.status_code == 200 and not cut.content.rstrip().endswith(b"</NessusClientData_v2>")
    sim.set_fault("malformed_xml", times=1)
    broken = get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/download").content
    assert b"<description>unclosed</ReportItem>" in broken


def test_no_scans_fault(tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("no_scans")
    assert get(tenable_simulator, "/scans").json()["scans"] is None
    assert get(tenable_simulator, f"/scans/{sim.scan_id('completed')}").status_code == 404


@pytest.mark.parametrize(("mode", "per_folder"), [("all", [12, 12, 12, 12]), ("trash", [12, 0, 0, 0])])
def test_ignore_folder_filter_fault(tenable_simulator, mode, per_folder):
    sim = tenable_simulator.sim
    honest = [len(get(tenable_simulator, f"/scans?folder_id={f}").json()["scans"]) for f in (3, 2, 5, 6)]
    assert honest == [1, 6, 4, 1]
    sim.set_fault("ignore_folder_filter", mode=mode)
    folders = [f["id"] for f in get(tenable_simulator, "/scans").json()["folders"]]
    assert folders == [3, 2, 5, 6]  # Trash first, as real accounts list it
    assert [
        len(get(tenable_simulator, f"/scans?folder_id={f}").json()["scans"]) for f in folders
    ] == per_folder


def test_gzip_bomb_fault_is_small_on_the_wire_and_huge_decoded(tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("gzip_bomb", size=8 << 20)
    scan_id = sim.scan_id("completed")
    file_id = export(tenable_simulator, scan_id)
    with get(tenable_simulator, f"/scans/{scan_id}/export/{file_id}/download", stream=True) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        wire = response.raw.read(decode_content=False)
    assert len(wire) < 64 * 1024 and len(gzip.decompress(wire)) == len(b"<NessusClientData_v2>") + (8 << 20)


def test_faults_at_construction_and_unknown_names():
    sim = TenableSimulator(faults={"flap": {"status": 503, "times": 1}})
    with sim.serve() as server:
        assert [get(server, "/session").status_code for _ in "ab"] == [503, 200]
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_fault("meteor")
    assert "truncated_download" in FAULTS
