"""The simulator as one WSGI callable: parse the request, authenticate, apply faults, route, record."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from .access import BASIC, ROLE_KEYS, SCAN_MANAGER, SCAN_OPERATOR, STANDARD, Access
from .catalogue import uuid_of
from .data import AGENT_GROUPS, ROSTER, ROSTER_UNLICENSED, TAGS
from .exports import BulkExports
from .model import MAX_ACTIVE_EXPORTS, RecordedRequest
from .responses import DENIED, error_body, json_response, rate_limited
from .scan_routes import ScanRoutes
from .server import SimulatorServer

_ANY = 0  # any authenticated key
_SCAN = r"^/scans/(?P<scan>[^/]+)"
_JOB = r"^/(?P<kind>vulns|assets)/(?:v2/)?export/(?P<job>[^/]+)"


class TenableSimulator(BulkExports, ScanRoutes, Access):
    """A fake Tenable.io as a WSGI callable; deterministic from `seed`, stateful, with injectable faults.

    Key pairs: `access_key`/`secret_key` (an Administrator, full access), the forbidden pair (403 on every
    call), and one pair per role in `role_keys` (default `ROLE_KEYS`); each call checks the role it needs.

    Hooks for tests: `add_scan`, `big_scan`, `add_run`, `set_launch_outcome`, `delete_asset`,
    `terminate_asset`, `advance`, `expire_chunks`, `set_fault`/`clear_faults`. Ground truth: `findings`
    (a run's items), `vulns` and `assets` (what an export would hold), `export_document` (a run's `.nessus`).
    Counters: `requests`, `peak_requests`, `peak_chunk_downloads`, `export_jobs_created`, `export_jobs`.
    Benchmarks: `prepare_vulns_export` writes an export's chunks to disk ahead of time.
    """

    def __init__(
        self,
        *,
        access_key: str = "sim-access",
        secret_key: str = "sim-secret",  # noqa: S107 - the simulator's published demo key
        forbidden_access_key: str = "sim-forbidden-access",
        forbidden_secret_key: str = "sim-forbidden-secret",  # noqa: S107
        role_keys: dict[str, tuple[str, str]] | None = None,
        seed: int = 1,
        scans: int = 12,
        hosts_per_scan: int = 20,
        findings_per_host: int = 15,
        launch_seconds: float = 6.0,
        churn: float = 0.05,
        clock: Callable[[], float] = time.time,
        export_seconds: float = 0.0,
        export_loading_polls: int = 1,
        export_queued_polls: int = 0,
        export_chunks_per_poll: int = 4,
        export_chunk_seconds: float = 0.0,
        max_export_jobs: int = MAX_ACTIVE_EXPORTS,
        finding_schema: str = "current",
        hosts_down: int = 1,
        gzip_downloads: bool = False,
        faults: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.keys = (access_key, secret_key)
        self.forbidden_keys = (forbidden_access_key, forbidden_secret_key)
        self.seed = seed
        self.hosts_per_scan, self.findings_per_host = hosts_per_scan, findings_per_host
        self.launch_seconds, self.churn, self.hosts_down = launch_seconds, churn, hosts_down
        self.clock = clock
        self.export_seconds, self.export_loading_polls = export_seconds, export_loading_polls
        self.export_queued_polls, self.export_chunks_per_poll = export_queued_polls, export_chunks_per_poll
        self.export_chunk_seconds, self.max_export_jobs = export_chunk_seconds, max_export_jobs
        self.finding_schema = finding_schema
        self.gzip_downloads = gzip_downloads
        self._init_state()
        self.tag_values = {
            uuid_of(seed, 0x7A6, i): {"category_name": c, "value": v} for i, (c, v) in enumerate(TAGS)
        }
        self.agent_groups = [
            {"id": 102_009 + i, "uuid": uuid_of(seed, 0xA6, i), "name": name, "agents_count": count}
            for i, (name, count) in enumerate(AGENT_GROUPS)
        ]
        self._users = self._make_users(ROLE_KEYS if role_keys is None else role_keys)
        rng = random.Random(seed)
        for n in range(scans):
            extra = ("segment", f"Network segment {n + 1}", 2, "ps", 2, "completed", "Basic Network Scan")
            self._add(*(ROSTER[n] if n < len(ROSTER) else extra), rng).unlicensed = ROSTER_UNLICENSED
        for name, params in (faults or {}).items():
            self.set_fault(name, **params)

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults = []
        self._exports = {}
        self._catalogue = []
        self._summary_cache = {}
        self._scans = {}
        self._next_history_id = 15_184_619
        self._offset = 0.0
        self._born = int(self.clock())
        self._asset_events = {}
        self._fragments = {}
        self._scan_fragments = {}
        self._jobs = {}
        self._prepared = {}
        self._scratch = []
        self._inflight: dict[tuple[str, bool], int] = {}
        self._peaks: dict[tuple[str, bool], int] = {}

    # -- recorded requests and concurrency ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def peak_requests(self, access_key: str) -> int:
        """The most requests this access key ever had in flight at once."""
        with self._lock:
            return self._peaks.get((access_key, False), 0)

    def peak_chunk_downloads(self, access_key: str) -> int:
        """The most export chunk downloads this access key ever had in flight at once."""
        with self._lock:
            return self._peaks.get((access_key, True), 0)

    def _track(self, access_key: str | None, chunk: bool, delta: int) -> None:
        if access_key is None:
            return
        with self._lock:
            for slot in {(access_key, False), (access_key, chunk)}:
                self._inflight[slot] = self._inflight.get(slot, 0) + delta
                self._peaks[slot] = max(self._peaks.get(slot, 0), self._inflight[slot])

    # -- serving ------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Serve on a background thread; returns the running server (`.url`, `.port`, `.stop()`)."""
        return SimulatorServer(self, host, port)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = "/" + environ.get("PATH_INFO", "").strip("/")  # wsgiref has already unquoted it
        query_all = parse_qs(environ.get("QUERY_STRING", ""))
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) if method == "POST" else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        header = environ.get("HTTP_X_APIKEYS")
        auth, access_key, user = self._auth(header)
        query = {k: v[-1] for k, v in query_all.items()}
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method, path, query, header is not None, body, auth, user.role if user else None
                )
            )
        match = re.match(r"^/scans/([^/]+)", path)
        scan = self._lookup(match.group(1)) if match else None
        ctx = {"method": method, "path": path, "access_key": access_key, "scan_id": scan.id if scan else None}
        chunk = "/chunks/" in path
        self._track(access_key, chunk, +1)
        try:
            result = self._answer(start_response, ctx, auth, user, query=query, query_all=query_all, body=body,
                                  environ=environ)  # fmt: skip
        except BaseException:
            self._track(access_key, chunk, -1)
            raise
        return _Tracked(result, lambda: self._track(access_key, chunk, -1))

    def _answer(
        self, start_response: Callable, ctx: dict, auth: str, user: Any, **request: Any
    ) -> Iterable[bytes]:
        """Faults first (slow, auth, revoked, 429, flap), then the route, if the caller's role allows it."""
        slow = self._fault("slow", ctx)
        if slow:
            time.sleep(float(slow.params.get("seconds", 1.0)))
        denied = DENIED.get(auth) or (DENIED["forbidden"] if self._fault("forbidden", ctx) else None)
        if denied:
            return json_response(start_response, denied["statusCode"], denied)
        if self._fault("revoked_key", ctx):
            return json_response(start_response, 401, DENIED["invalid"])
        limited = self._fault("rate_limit", ctx)
        if limited:
            return rate_limited(start_response, limited.params.get("retry_after", "1"))
        flap = self._fault("flap", ctx)
        if flap:
            status = int(flap.params.get("status", 503))
            return json_response(start_response, status, error_body(status))
        for route_method, pattern, handler, role, extra in self._routes:
            found = re.match(pattern, ctx["path"])
            if found and route_method == ctx["method"]:
                if user.permissions < role:
                    return json_response(start_response, 403, DENIED["forbidden"])
                return handler(
                    self, start_response, ctx=ctx, user=user, **request, **extra, **found.groupdict()
                )
        return json_response(
            start_response, 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
        )

    # (method, path pattern, handler, role needed, extra keyword arguments) — roles per TENABLE_API.md.
    _routes: list[tuple[str, str, Callable[..., Iterable[bytes]], int, dict[str, Any]]] = [
        ("GET", r"^/scans$", ScanRoutes._list_scans, BASIC, {}),
        ("GET", r"^/folders$", ScanRoutes._folders, BASIC, {}),
        ("GET", r"^/session$", Access._session, _ANY, {}),
        ("GET", r"^/api/v3/access-control/permissions/users/me$", Access._my_permissions, BASIC, {}),
        ("GET", _SCAN + r"$", ScanRoutes._scan_details, SCAN_OPERATOR, {}),
        ("GET", _SCAN + r"/latest-status$", ScanRoutes._latest_status, SCAN_OPERATOR, {}),
        ("POST", _SCAN + r"/launch$", ScanRoutes._launch, SCAN_OPERATOR, {}),
        ("POST", _SCAN + r"/stop$", ScanRoutes._stop, SCAN_OPERATOR, {}),
        ("POST", _SCAN + r"/export$", ScanRoutes._export, SCAN_OPERATOR, {}),
        ("GET", _SCAN + r"/export/(?P<file>[^/]+)/status$", ScanRoutes._export_status, SCAN_OPERATOR, {}),
        ("GET", _SCAN + r"/export/(?P<file>[^/]+)/download$", ScanRoutes._download, SCAN_OPERATOR, {}),
        ("GET", r"^/tags/values$", Access._tag_values, BASIC, {}),
        ("GET", r"^/tags/values/(?P<value>[^/]+)$", Access._tag_value, BASIC, {}),
        ("GET", r"^/editor/scan/(?P<scan>[^/]+)$", ScanRoutes._editor, STANDARD, {}),
        ("GET", r"^/scanners$", ScanRoutes._scanners, SCAN_MANAGER, {}),
        ("GET", r"^/scanners/[^/]+/agent-groups$", ScanRoutes._agent_groups, SCAN_MANAGER, {}),
        ("GET", r"^/filters/scans/reports$", ScanRoutes._filters, BASIC, {}),
        ("POST", r"^/vulns/export$", BulkExports._vulns_export, BASIC, {}),
        ("POST", r"^/assets/export$", BulkExports._assets_export, BASIC, {}),
        ("POST", r"^/assets/v2/export$", BulkExports._assets_export, BASIC, {"version": "v2"}),
        ("GET", r"^/(?P<kind>vulns|assets)/export/status$", BulkExports._job_list, BASIC, {}),
        ("GET", _JOB + r"/status$", BulkExports._job_status, BASIC, {}),
        ("GET", _JOB + r"/chunks/(?P<chunk>[^/]+)$", BulkExports._job_chunk, BASIC, {}),
        ("POST", _JOB + r"/cancel$", BulkExports._job_cancel, BASIC, {}),
    ]


class _Tracked:
    """A response body that tells the simulator when the server is done with it (for peak concurrency)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body, self._done, self._closed = body, done, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._done()
