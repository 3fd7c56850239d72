"""Tenable's own SDK, unchanged and only configured, must be happy with the simulator."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from integrations.connectors.tenable_io.simulator import SimulatorServer, TenableSimulator
from integrations.formats.nessus import iter_hosts
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_SECRET_KEY

tenable_io = pytest.importorskip("tenable.io")


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
