"""TenableClient over real HTTP against the simulator, plus loopback servers for network faults (T1–T11)."""

from __future__ import annotations

import logging
import pickle
import socket
import ssl
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests

from integrations.connectors.tenable_io import errors as say
from integrations.connectors.tenable_io.client import (
    HistoryEntry,
    ScanDetails,
    TenableClient,
    parse_retry_after,
)
from integrations.connectors.tenable_io.errors import TenableError
from integrations.connectors.tenable_io.simulator import TenableSimulator
from integrations.formats.nessus import NessusParseError, iter_hosts
from tests.tenable_fixtures import (
    SIM_ACCESS_KEY,
    SIM_FORBIDDEN_ACCESS_KEY,
    SIM_FORBIDDEN_SECRET_KEY,
    SIM_SECRET_KEY,
    FakeTime,
)

REPO = Path(__file__).resolve().parents[2]


def client_for(url: str, fake_time: FakeTime | None = None, **kwargs) -> TenableClient:
    fake_time = fake_time or FakeTime()
    kwargs.setdefault("access_key", SIM_ACCESS_KEY)
    kwargs.setdefault("secret_key", SIM_SECRET_KEY)
    kwargs.setdefault("timeout", (2.0, 10.0))
    return TenableClient(api_url=url, sleep=fake_time.sleep, clock=fake_time.monotonic, **kwargs)


def paths(sim: TenableSimulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.requests]


# -- every call ------------------------------------------------------------------------------------


def test_test_connection_names_user_and_counts_scans(tenable_client, tenable_simulator):
    info = tenable_client.test_connection()
    # The count is what Bind to lists: the scan in Tenable's trash is not counted (issue 12 §7).
    assert (info.username, info.container, info.scan_count) == ("secops@example.com", "Example Corp", 11)
    # The list, then each folder; then (issue 15) the role, a read of one scan and the agent groups.
    probed = tenable_simulator.sim.scan_id("completed")
    assert paths(tenable_simulator.sim) == ["GET /scans"] * 5 + [
        "GET /session",
        f"GET /scans/{probed}/latest-status",
        "GET /scanners/null/agent-groups",
    ]
    assert all(r.has_api_keys_header for r in tenable_simulator.sim.requests)


def test_test_connection_on_an_empty_account_counts_zero(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("no_scans")
    assert tenable_client.test_connection().scan_count == 0


def test_test_connection_survives_a_forbidden_session_call(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("forbidden", path="/session")
    info = tenable_client.test_connection()
    assert (info.username, info.container, info.scan_count, info.role) == (None, None, 11, None)


def test_trailing_slash_is_stripped(tenable_simulator):
    client = client_for(tenable_simulator.url + "/")
    assert client.api_url == tenable_simulator.url
    assert client.latest_status(tenable_simulator.sim.scan_id("completed")) == "completed"


def test_list_scans_gives_folders_and_folder_membership(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    listing = tenable_client.list_scans()
    assert {f.type for f in listing.folders} == {"main", "trash", "custom"}
    by_id = {s.id: s for s in listing.scans}
    assert len(by_id) == 12
    assert by_id[sim.scan_id("trash")].folder_id == 3
    assert by_id[sim.scan_id("agent")].folder_id == 6
    never = by_id[sim.scan_id("never_run")]
    assert (never.uuid, never.type, never.last_modification_date, never.status) == (None, None, None, "empty")
    imported = by_id[sim.scan_id("imported")]
    assert imported.control is False and len(imported.uuid) == 52
    scheduled = by_id[sim.scan_id("scheduled")]
    assert (scheduled.enabled, scheduled.rrules, scheduled.starttime, scheduled.timezone) == (
        True,
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO",
        "20181003T010000",
        "US/Central",
    )
    assert scheduled.schedule_uuid.startswith("template-") and scheduled.policy_id


def test_trash_scans_are_hidden_when_the_folder_answers_add_up(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    visible = tenable_client.list_scans().visible()
    assert len(visible) == 11 and sim.scan_id("trash") not in {s.id for s in visible}
    assert tenable_client.test_connection().scan_count == 11  # the same function as Bind to


@pytest.mark.parametrize("mode", ["all", "trash"])
def test_folder_bookkeeping_fails_open_when_the_server_ignores_the_folder_filter(
    tenable_client, tenable_simulator, mode
):
    # Real GET /scans items carry no folder_id; a server (or replay) that ignores ?folder_id= must not
    # put every scan in Trash, nor guess any folder.
    tenable_simulator.sim.set_fault("ignore_folder_filter", mode=mode)
    listing = tenable_client.list_scans()
    assert len(listing.scans) == 12
    assert {s.folder_id for s in listing.scans} == {None}
    assert listing.visible() == listing.scans
    assert tenable_client.test_connection().scan_count == 12


def test_folder_bookkeeping_fails_open_when_a_folder_cannot_be_read(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("forbidden", path="/scans", method="GET", after=1)
    listing = tenable_client.list_scans()
    assert len(listing.scans) == 12 and {s.folder_id for s in listing.scans} == {None}


def test_describe_scan_reports_its_folder(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    assert tenable_client.describe_scan(sim.scan_id("agent")).folder_id == 6
    assert tenable_client.describe_scan(sim.scan_id("trash")).folder_id == 3


def test_describe_scan_network_scan(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    details = tenable_client.describe_scan(sim.scan_id("completed"))
    assert isinstance(details, ScanDetails)
    assert details.targets == ["10.101.0.0/24", "gateway101.corp.example.com"]
    assert details.tags == ["Location: Dallas", "Environment: Production"]
    assert details.policy == "Basic Network Scan" and details.scanner == "US Cloud Scanner"
    assert details.agent_groups == [] and details.schedule is None and details.scan_type == "ps"
    assert [h.history_id for h in details.history] == sorted(sim.history_ids(details.id), reverse=True)
    assert details.history[-1].is_archived and not details.history[0].is_archived
    assert details.last_run_uuid == details.history[0].uuid
    assert details.host_count == 19  # one host was down for the latest run


def test_describe_scan_agent_scan_resolves_agent_groups(tenable_client, tenable_simulator):
    details = tenable_client.describe_scan(tenable_simulator.sim.scan_id("agent"))
    assert details.scan_type == "agent" and details.targets == []
    assert [(g.name, g.agents_count) for g in details.agent_groups] == [
        ("Branch laptops", 2),
        ("Remote workers", 14),
    ]


def test_describe_scan_schedule_tags_and_schedule_uuid_reference(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    scheduled = tenable_client.list_scans().scans[7]
    details = tenable_client.describe_scan(scheduled.schedule_uuid)
    assert details.id == scheduled.id == sim.scan_id("scheduled")
    assert details.schedule.rrules == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO" and details.schedule.enabled
    assert tenable_client.describe_scan(sim.scan_id("cloud")).tags == [
        "Business Unit: Payments",
        "Cloud: AWS",
    ]


def test_describe_scan_unresolvable_tag_keeps_the_uuid(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("forbidden", path="/tags/values/")
    tags = tenable_client.describe_scan(sim.scan_id("completed")).tags
    assert tags == list(sim.tag_values)[:2]


def test_describe_scan_without_editor_permission_still_answers(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("forbidden", path="/editor/")
    details = tenable_client.describe_scan(tenable_simulator.sim.scan_id("agent"))
    assert details.agent_groups == [] and details.name == "Branch laptops (agents)"


def test_describe_never_run_and_imported(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    never = tenable_client.describe_scan(sim.scan_id("never_run"))
    assert (never.status, never.history, never.last_run_uuid, never.host_count) == ("empty", [], None, None)
    imported = tenable_client.describe_scan(sim.scan_id("imported"))
    assert imported.status == "imported" and imported.host_count is None


def test_latest_status_and_history(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    assert tenable_client.latest_status(sim.scan_id("running")) == "running"
    history = tenable_client.scan_history(sim.scan_id("linux"))
    assert all(isinstance(h, HistoryEntry) for h in history) and len(history) == 3
    assert history[0].creation_date > history[-1].creation_date


def test_launch_returns_run_uuid_and_sends_alt_targets(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    run_uuid = tenable_client.launch(sim.scan_id("linux"))
    assert tenable_client.scan_history(sim.scan_id("linux"))[0].uuid == run_uuid
    assert tenable_client.latest_status(sim.scan_id("linux")) == "pending"
    tenable_client.launch(sim.scan_id("windows"), alt_targets=["10.0.0.1"])
    launches = [r for r in sim.requests if r.path.endswith("/launch")]
    assert [r.body for r in launches] == [{}, {"alt_targets": ["10.0.0.1"]}]


def test_export_nessus_streams_the_requested_run(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("linux")
    first = sim.history_ids(scan_id)[0]
    with tenable_client.export_nessus(scan_id, first) as stream:
        parsed = {(h.ip, i.plugin_id, i.port, i.protocol) for h in iter_hosts(stream) for i in h.items}
    assert parsed == {f[:4] for f in sim.findings(scan_id, first)}
    export = next(r for r in sim.requests if r.path.endswith("/export"))
    assert export.query == {"history_id": str(first)}
    assert export.body == {"format": "nessus", "chapters": "vuln_by_host"}


def test_every_call_sets_an_explicit_timeout(tenable_client, tenable_simulator, monkeypatch):
    seen = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    sim = tenable_simulator.sim
    tenable_client.test_connection()
    tenable_client.describe_scan(sim.scan_id("agent"))
    with tenable_client.export_nessus(sim.scan_id("completed")) as stream:
        stream.read()
    assert len(seen) > 8 and set(seen) == {(2.0, 10.0)}


# -- T1, T2: keys ----------------------------------------------------------------------------------


def test_t1_invalid_keys_fail_once_without_retry(tenable_simulator):
    client = client_for(tenable_simulator.url, access_key="wrong", secret_key="keys")
    with pytest.raises(TenableError) as caught:
        client.test_connection()
    error = caught.value
    assert (error.kind, error.status, error.permanent) == ("auth", 401, True)
    assert str(error) == error.message == say.AUTH
    assert len(tenable_simulator.sim.requests) == 1


def test_t2_forbidden_key_pair(tenable_simulator):
    client = client_for(
        tenable_simulator.url, access_key=SIM_FORBIDDEN_ACCESS_KEY, secret_key=SIM_FORBIDDEN_SECRET_KEY
    )
    with pytest.raises(TenableError) as caught:
        client.test_connection()
    assert (caught.value.kind, caught.value.permanent) == ("forbidden", True)
    assert str(caught.value) == say.FORBIDDEN_LIST
    assert len(tenable_simulator.sim.requests) == 1


def test_t2_forbidden_on_export_only(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("forbidden", path="/export")
    scan_id = sim.scan_id("completed")
    assert tenable_client.describe_scan(scan_id).name
    with pytest.raises(TenableError) as caught, tenable_client.export_nessus(scan_id):
        pass
    assert caught.value.kind == "forbidden"
    assert (
        caught.value.message == say.FORBIDDEN_READ and "Scan Operator" in caught.value.message
    )  # T2 names it
    assert sum(r.path.endswith("/export") for r in sim.requests) == 1


def test_launch_forbidden_names_can_execute(tenable_client, tenable_simulator):
    with pytest.raises(TenableError) as caught:
        tenable_client.launch(tenable_simulator.sim.scan_id("imported"))
    assert caught.value.kind == "forbidden" and "Can Execute" in caught.value.message
    assert caught.value.message.startswith(say.FORBIDDEN)


def test_launch_of_a_running_scan_is_a_conflict(tenable_client, tenable_simulator):
    with pytest.raises(TenableError) as caught:
        tenable_client.launch(tenable_simulator.sim.scan_id("running"))
    assert (caught.value.kind, caught.value.message, caught.value.permanent) == (
        "conflict",
        say.ALREADY_RUNNING,
        True,
    )


def test_unknown_scan_is_not_found(tenable_client, tenable_simulator):
    with pytest.raises(TenableError) as caught:
        tenable_client.describe_scan(999999)
    assert (caught.value.kind, caught.value.message) == ("not_found", say.SCAN_NOT_FOUND)
    assert len(tenable_simulator.sim.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_client_errors_are_never_retried(tenable_client, tenable_simulator, status):
    tenable_simulator.sim.set_fault("flap", status=status, times=5)
    with pytest.raises(TenableError) as caught:
        tenable_client.latest_status(tenable_simulator.sim.scan_id("completed"))
    assert caught.value.status == status and caught.value.permanent
    assert len(tenable_simulator.sim.requests) == 1


def test_keys_that_cannot_form_a_header_fail_as_auth_without_a_request(tenable_simulator):
    client = client_for(tenable_simulator.url, secret_key="line\nbreak;x")
    with pytest.raises(TenableError) as caught:
        client.test_connection()
    assert caught.value.kind == "auth" and "line" not in repr(caught.value)
    assert tenable_simulator.sim.requests == []


# -- T3, T4, T5: network ---------------------------------------------------------------------------


def test_t3_dns_failure_is_fast_and_clear(monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    client = TenableClient("a", "b", "https://cloud.tenable.invalid")
    started = time.monotonic()
    with pytest.raises(TenableError) as caught:
        client.test_connection()
    assert time.monotonic() - started < 5
    assert (caught.value.kind, caught.value.permanent) == ("dns", False)
    assert (
        caught.value.message
        == "Cannot resolve cloud.tenable.invalid: check the API URL and this server's DNS."
    )


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"scans": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_t4_untrusted_certificate_fails_closed():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = HTTPServer(("127.0.0.1", 0), _Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = TenableClient("a", "b", f"https://127.0.0.1:{server.server_address[1]}", timeout=(2, 2))
        with pytest.raises(TenableError) as caught:
            client.test_connection()
    finally:
        server.shutdown()
        server.server_close()
    assert (caught.value.kind, caught.value.permanent) == ("tls", True)
    assert caught.value.message.startswith(
        "TLS verification failed for 127.0.0.1: the certificate is not trusted."
    )


def test_t4_no_tls_verification_bypass_anywhere_in_the_repo():
    needle = "verify" + "=False"
    offenders = [
        str(path.relative_to(REPO))
        for path in REPO.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".html", ".txt", ".md", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".env"}
        and not {".venv", ".git", "node_modules"} & set(path.relative_to(REPO).parts)
        and needle in path.read_text(errors="ignore")
    ]
    assert offenders == []


def test_t5_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts; nobody ever answers
    try:
        client = TenableClient("a", "b", f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=(1.0, 1.0))
        started = time.monotonic()
        with pytest.raises(TenableError) as caught:
            client.latest_status(1)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert elapsed < 1.0 + 2
    assert (caught.value.kind, caught.value.permanent) == ("timeout", False)
    assert caught.value.message == "Tenable.io did not respond within 1 seconds."


def test_refused_connection_is_retried_then_reported(fake_time):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = client_for(f"http://127.0.0.1:{port}", fake_time)
    with pytest.raises(TenableError) as caught:
        client.latest_status(1)
    assert caught.value.kind == "connection" and not caught.value.permanent
    assert caught.value.message == f"Cannot connect to 127.0.0.1:{port}: the connection was refused."
    assert len(fake_time.sleeps) == 3


# -- T6, T7: 429 and 5xx ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 30 ", 30.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),  # in the past: clamped to the minimum
        ("-5", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("99999999", 300.0),
    ],
)
def test_t6_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_t6_parse_retry_after_http_date_in_the_future():
    now = 1445412480.0 - 120  # two minutes before Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == pytest.approx(120.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now - 86400, maximum=3600) == 3600


def test_t6_429_then_200_waits_at_least_retry_after(tenable_client, tenable_simulator, fake_time):
    tenable_simulator.sim.set_fault("rate_limit", retry_after="30", times=1)
    assert tenable_client.test_connection().scan_count == 11
    assert fake_time.sleeps == [30.0]
    assert paths(tenable_simulator.sim)[:7] == ["GET /scans"] * 6 + ["GET /session"]


def test_t6_garbage_retry_after_falls_back_to_backoff(tenable_client, tenable_simulator, fake_time):
    tenable_simulator.sim.set_fault("rate_limit", retry_after="abc", times=1)
    assert tenable_client.latest_status(tenable_simulator.sim.scan_id("completed")) == "completed"
    assert len(fake_time.sleeps) == 1 and 0.5 <= fake_time.sleeps[0] <= 0.625


def test_t6_persistent_429_stops_at_the_budget_and_reports_retry_after(
    tenable_client, tenable_simulator, fake_time
):
    tenable_simulator.sim.set_fault("rate_limit", retry_after="30")
    with pytest.raises(TenableError) as caught:
        tenable_client.test_connection()
    error = caught.value
    assert (error.kind, error.status, error.retry_after, error.permanent) == (
        "rate_limited",
        429,
        30.0,
        False,
    )
    assert error.message == "Tenable.io is rate-limiting this API key; retry after 30 seconds."
    assert fake_time.sleeps == [30.0, 30.0]  # a third wait would pass the 60 s budget
    assert len(tenable_simulator.sim.requests) == 3


def test_t7_transient_503_is_retried(tenable_client, tenable_simulator, fake_time):
    tenable_simulator.sim.set_fault("flap", status=503, times=2)
    assert tenable_client.latest_status(tenable_simulator.sim.scan_id("completed")) == "completed"
    assert len(tenable_simulator.sim.requests) == 3 and len(fake_time.sleeps) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
def test_t7_persistent_5xx_gives_up_after_bounded_retries(tenable_client, tenable_simulator, status):
    tenable_simulator.sim.set_fault("flap", status=status, times=100)
    with pytest.raises(TenableError) as caught:
        tenable_client.launch(tenable_simulator.sim.scan_id("linux"))
    assert (caught.value.kind, caught.value.status, caught.value.permanent) == ("server", status, False)
    assert caught.value.message == (
        f"Tenable.io answered with a server error (HTTP {status}); this is usually temporary — "
        "try again in a few minutes."
    )
    assert len(tenable_simulator.sim.requests) == 4  # one try + max_retries


def test_t7_500_is_not_retried(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("flap", status=500, times=5)
    with pytest.raises(TenableError) as caught:
        tenable_client.list_scans()
    assert caught.value.kind == "server" and len(tenable_simulator.sim.requests) == 1


def test_t7_retry_budget_bounds_total_waiting(tenable_simulator, fake_time):
    tenable_simulator.sim.set_fault("flap", status=503, times=100)
    client = client_for(tenable_simulator.url, fake_time, budget=1.0, max_retries=5)
    with pytest.raises(TenableError):
        client.list_scans()
    assert sum(fake_time.sleeps) <= 1.0
    assert len(tenable_simulator.sim.requests) == len(fake_time.sleeps) + 1


def test_t12_keys_revoked_mid_export_stop_at_once(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("flap", status=401, path="/status", after=1, times=100)
    with pytest.raises(TenableError) as caught, tenable_client.export_nessus(sim.scan_id("completed")):
        pass
    assert (caught.value.kind, caught.value.permanent) == ("auth", True)
    assert sum(r.path.endswith("/status") for r in sim.requests) == 2


# -- T9, T10, T11: exports -------------------------------------------------------------------------


def test_t9_stuck_export_times_out_at_the_deadline(tenable_client, tenable_simulator, fake_time):
    sim = tenable_simulator.sim
    sim.set_fault("export_stuck")
    with (
        pytest.raises(TenableError) as caught,
        tenable_client.export_nessus(sim.scan_id("completed"), deadline=120),
    ):
        pass
    assert (caught.value.kind, caught.value.permanent) == ("export_timeout", False)
    assert caught.value.message == "The Tenable.io export was not ready after 2 minutes; try again later."
    assert sum(fake_time.sleeps) == pytest.approx(120)
    assert max(fake_time.sleeps) <= 15.0
    assert sum(r.path.endswith("/status") for r in sim.requests) < 15


def test_t10_export_error(tenable_client, tenable_simulator):
    tenable_simulator.sim.set_fault("export_error")
    with (
        pytest.raises(TenableError) as caught,
        tenable_client.export_nessus(tenable_simulator.sim.scan_id("completed")),
    ):
        pass
    assert caught.value.kind == "export_failed"
    assert caught.value.message == "Tenable.io could not export this scan run (export status: error)."


@pytest.mark.parametrize("mode", ["length", "chunked"])
def test_t11_truncated_download_is_detected(tenable_client, tenable_simulator, mode):
    sim = tenable_simulator.sim
    sim.set_fault("truncated_download", mode=mode)
    with (
        pytest.raises(TenableError) as caught,
        tenable_client.export_nessus(sim.scan_id("completed")) as stream,
    ):
        list(iter_hosts(stream))
    assert (caught.value.kind, caught.value.permanent, caught.value.message) == (
        "truncated",
        False,
        say.TRUNCATED,
    )


def test_t11_close_delimited_cut_is_caught_by_the_parser(tenable_client, tenable_simulator):
    sim = tenable_simulator.sim
    sim.set_fault("truncated_download", mode="close")
    with (
        pytest.raises(NessusParseError, match="not well-formed"),
        tenable_client.export_nessus(sim.scan_id("completed")) as stream,
    ):
        list(iter_hosts(stream))


def test_gzip_download_is_decoded(tenable_simulator, fake_time):
    sim = TenableSimulator(gzip_downloads=True)
    with sim.serve() as server:
        client = client_for(server.url, fake_time)
        scan_id = sim.scan_id("windows")
        with client.export_nessus(scan_id) as stream:
            count = sum(len(h.items) for h in iter_hosts(stream))
    assert count == len(list(sim.findings(scan_id)))


def test_a_gzip_bomb_is_stopped_at_the_decoded_cap(tenable_simulator, fake_time):
    sim = tenable_simulator.sim
    sim.set_fault("gzip_bomb", size=256 << 20)  # ~256 KB on the wire, 256 MB decoded
    client = client_for(tenable_simulator.url, fake_time, max_download_bytes=1 << 20)
    tracemalloc.start()
    try:
        with (
            pytest.raises(TenableError) as caught,
            client.export_nessus(sim.scan_id("completed")) as stream,
        ):
            while stream.read(64 * 1024):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (caught.value.kind, caught.value.permanent) == ("too_large", True)
    assert caught.value.message == (
        "The export from Tenable.io is larger than the 1.0 MB limit once decompressed "
        "(TENABLE_EXPORT_MAX_BYTES); nothing was imported."
    )
    assert peak < 16 << 20


def test_the_download_cap_holds_for_read_all_and_plain_bodies(tenable_simulator, fake_time):
    sim = tenable_simulator.sim
    scan_id = sim.scan_id("completed")
    with client_for(tenable_simulator.url, fake_time).export_nessus(scan_id) as stream:
        size = len(stream.read())
    client = client_for(tenable_simulator.url, fake_time, max_download_bytes=size - 1)
    with pytest.raises(TenableError, match="larger than"), client.export_nessus(scan_id) as stream:
        stream.read()
    exact = client_for(tenable_simulator.url, fake_time, max_download_bytes=size)
    with exact.export_nessus(scan_id) as stream:
        assert len(stream.read()) == size


# -- secrets ---------------------------------------------------------------------------------------


def test_secrets_never_reach_messages_reprs_or_logs(caplog, fake_time):
    access, secret = "SENTINEL-ACCESS-7f3a", "SENTINEL-SECRET-9b1c"
    caplog.set_level(logging.DEBUG)
    sim = TenableSimulator(access_key=access, secret_key=secret)
    captured = []
    with sim.serve() as server:
        good = client_for(server.url, fake_time, access_key=access, secret_key=secret)
        good.test_connection()
        with good.export_nessus(sim.scan_id("completed")) as stream:
            list(iter_hosts(stream))
        for key in (secret, "wrong"):
            client = client_for(server.url, fake_time, access_key=access, secret_key=key)
            sim.set_fault("rate_limit", retry_after="1", times=1)
            with pytest.raises(TenableError) as caught:
                client.launch(sim.scan_id("imported"))
            captured += [caught.value, caught.value.__cause__, client]
        requests_seen = repr(sim.requests)
    texts = [caplog.text, repr(good), requests_seen] + [repr(x) + str(x) for x in captured]
    assert "Tenable.io GET /scans -> 200" in caplog.text
    for text in texts:
        assert secret not in text and access not in text


def test_tenable_error_pickles():
    error = TenableError("m", kind="rate_limited", permanent=False, status=429, retry_after=5.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.kind, copy.permanent, copy.status, copy.retry_after) == (
        "m",
        "rate_limited",
        False,
        429,
        5.0,
    )
