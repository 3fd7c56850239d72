"""Tenable's own SDK, unchanged and only configured, must be happy with the simulator."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests

from integrations.connectors.tenable_io.simulator import SimulatorServer, TenableSimulator
from integrations.formats.nessus import iter_hosts
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY, SIM_SECRET_KEY

tenable_io = pytest.importorskip("tenable.io")
tenable_errors = pytest.importorskip("tenable.errors")


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    # export_loading_polls=0: pyTenable sleeps a fixed 2.5 s after each "loading" answer.
    with TenableSimulator(export_loading_polls=0, gzip_downloads=True).serve() as running:
        yield running


@pytest.fixture
def tio(server):
    return tenable_io.TenableIO(SIM_ACCESS_KEY, SIM_SECRET_KEY, url=server.url, retries=1, backoff=0.01)


def test_list_scans_and_folders(tio, server):
    scans = tio.scans.list()
    assert len(scans) == 12 and {s["status"] for s in scans} >= {"completed", "empty", "running"}
    assert [s["id"] for s in tio.scans.list(folder_id=5)] == [
        s["id"]
        for s in scans
        if s["name"] in ("Datacenter core", "PCI quarterly", "Windows servers", "Linux servers")
    ]
    assert {f["type"] for f in tio.folders.list()} == {"main", "trash", "custom"}
    assert [g["name"] for g in tio.agent_groups.list()][:2] == ["Branch laptops", "Remote workers"]


def test_results_and_status(tio, server):
    scan_id = server.sim.scan_id("completed")
    results = tio.scans.results(scan_id)
    assert results["info"]["status"] == "completed" and len(results["hosts"]) == 19
    older = results["history"][1]["history_id"]
    assert tio.scans.results(scan_id, history_id=older)["info"]["uuid"] == results["history"][1]["uuid"]
    assert tio.scans.status(scan_id) == "completed"
    assert tio.scans.status(server.sim.scan_id("running")) == "running"


def test_launch(tio, server):
    scan_id = server.sim.scan_id("linux")
    run_uuid = tio.scans.launch(scan_id)
    assert tio.scans.results(scan_id)["info"]["uuid"] == run_uuid
    assert tio.scans.status(scan_id) == "pending"
    assert server.sim.requests[-3].body == {}


def test_export_nessus(tio, server):
    sim = server.sim
    scan_id = sim.scan_id("completed")
    fobj = io.BytesIO()
    tio.scans.export(scan_id, format="nessus", fobj=fobj)
    fobj.seek(0)
    parsed = {(h.ip, i.plugin_id, i.port, i.protocol) for h in iter_hosts(fobj) for i in h.items}
    assert parsed == {f[:4] for f in sim.findings(scan_id)}
    assert [r.path for r in sim.requests][:1] == ["/filters/scans/reports"]


def test_export_waits_through_loading():
    sim = TenableSimulator(export_loading_polls=1)
    with sim.serve() as server:
        tio = tenable_io.TenableIO(SIM_ACCESS_KEY, SIM_SECRET_KEY, url=server.url)
        fobj = io.BytesIO()
        history_id = sim.history_ids(sim.scan_id("windows"))[0]
        tio.scans.export(sim.scan_id("windows"), history_id=history_id, fobj=fobj)
    assert fobj.getvalue().rstrip().endswith(b"</NessusClientData_v2>")
    statuses = [r for r in sim.requests if r.path.endswith("/status")]
    assert len(statuses) == 2


# -- bulk exports: pyTenable's own iterator, unchanged ----------------------------------------------


@pytest.fixture
def paced():
    # One chunk more per status poll: pyTenable only sleeps when a poll brings no new chunk.
    with TenableSimulator(export_chunks_per_poll=1, gzip_downloads=True).serve() as running:
        yield running


def _ids(records):
    return sorted(r["finding_id"] for r in records)


def test_exports_vulns_iterates_the_simulators_export(paced):
    sim = paced.sim
    tio = tenable_io.TenableIO(SIM_ACCESS_KEY, SIM_SECRET_KEY, url=paced.url, retries=1, backoff=0.01)
    # pyTenable's defaults: num_assets 500, include_unlicensed true, no filter (the last 30 days, OPEN/REOPENED)
    assert _ids(tio.exports.vulns()) == _ids(sim.vulns(include_unlicensed=True))
    everything = list(tio.exports.vulns(num_assets=50, since=0, state=["OPEN", "REOPENED", "FIXED"]))
    assert _ids(everything) == _ids(
        sim.vulns(states=["OPEN", "REOPENED", "FIXED"], since=0, include_unlicensed=True)
    )
    polls = [r for r in sim.requests if r.path.endswith("/status")]
    assert len(polls) >= 4 and {r.path.split("/")[1] for r in polls} == {"vulns"}


def test_exports_vulns_adopts_the_running_job_on_409(paced):
    sim = paced.sim
    body = {"num_assets": 500, "include_unlicensed": True, "filters": {"severity": ["critical"]}}
    keys = {"X-ApiKeys": f"accessKey={SIM_ACCESS_KEY}; secretKey={SIM_SECRET_KEY}"}
    running = requests.post(paced.url + "/vulns/export", json=body, headers=keys, timeout=10).json()
    tio = tenable_io.TenableIO(SIM_ACCESS_KEY, SIM_SECRET_KEY, url=paced.url, retries=1, backoff=0.01)
    export = tio.exports.vulns(severity=["critical"])
    assert str(export.uuid) == running["export_uuid"]
    assert _ids(export) == _ids(sim.vulns(filters={"severity": ["critical"]}, include_unlicensed=True))
    assert sim.export_jobs_created == 1


def test_exports_assets_v1_and_v2_and_a_basic_key(paced):
    sim = paced.sim
    tio = tenable_io.TenableIO(SIM_ACCESS_KEY, SIM_SECRET_KEY, url=paced.url, retries=1, backoff=0.01)
    assets = list(tio.exports.assets(chunk_size=100))
    assert sorted(a["id"] for a in assets) == sorted(a["id"] for a in sim.assets())
    assert sorted(a["id"] for a in tio.exports.assets_v2()) == sorted(a["id"] for a in sim.assets())
    basic = tenable_io.TenableIO(
        SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY, url=paced.url, retries=1, backoff=0.01
    )
    seen = {r["asset"]["uuid"] for r in basic.exports.vulns(since=0)}
    assert seen == {
        r["asset"]["uuid"] for r in sim.vulns(key=SIM_BASIC_ACCESS_KEY, since=0, include_unlicensed=True)
    }
    assert seen < {a["id"] for a in assets}


def test_tags_session_and_permissions_per_role(tio, server):
    tags = [(t["category_name"], t["value"]) for t in tio.tags.list(("category_name", "eq", "Location"))]
    assert tags == [("Location", "Dallas"), ("Location", "Austin")]
    basic = tenable_io.TenableIO(SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY, url=server.url, retries=1)
    assert [(t["category_name"], t["value"]) for t in basic.tags.list()] == [("Location", "Dallas")]
    assert (tio.session.details()["permissions"], basic.session.details()["permissions"]) == (64, 16)
    (grant,) = basic.access_control.get_current_user_permission()["permissions_granted"]
    assert grant["objects"][0]["name"] == "Location:Dallas"
    with pytest.raises(tenable_errors.ForbiddenError):
        basic.scans.results(server.sim.scan_id("completed"))
