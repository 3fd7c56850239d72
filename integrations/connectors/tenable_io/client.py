"""The one door to Tenable.io: auth header, timeouts, bounded retries, streaming export, our own errors.

No Django here. Every request goes through `TenableClient._call`, which turns `requests`/`urllib3`
failures into `TenableError` with a sentence a security admin can act on.
"""

from __future__ import annotations

import http.client
import io
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    IncompleteRead,
    InvalidChunkLength,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from ...formats.records import FormatError
from ...formats.tenable_export import read_asset_chunk, read_vuln_chunk
from ..base import (
    AgentGroup,
    AssetChunk,
    AssetExportRequest,
    ConnectionInfo,
    ExportJob,
    ExportScope,
    ExportStatus,
    Folder,
    HistoryEntry,
    ScanDetails,
    ScanSummary,
    Schedule,
    SourceList,
    VulnChunk,
    VulnExportRequest,
)
from ..http import BoundedRetry, parse_retry_after
from . import checklist
from . import errors as say
from .errors import TenableError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://cloud.tenable.com"
# Tenable asks integrations to identify themselves in this shape.
USER_AGENT = "Integration/1.0 (VM Console; Tenable.io VM connector; Build/1.0)"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A run in any other status is still active (TENABLE_API.md › Scan statuses).
FINISHED_STATUSES = frozenset({"completed", "stopped", "empty", "imported", "aborted", "canceled"})
EXPORT_BODY = {"format": "nessus", "chapters": "vuln_by_host"}
# Decoded bytes of one export (callers pass TENABLE_EXPORT_MAX_BYTES): a gzip bomb stops here. Parsing streams,
# so the cap bounds time, not memory; real exports of a million findings are ~1.8 GB.
DEFAULT_MAX_DOWNLOAD_BYTES = 16 * 1024**3
DOWNLOAD_TOO_LARGE = (
    "The export from Tenable.io is larger than the {limit} limit once decompressed "
    "(TENABLE_EXPORT_MAX_BYTES); nothing was imported."
)
_OPTIONAL_KINDS = ("forbidden", "not_found", "bad_response")  # failures that only cost a detail
_CHECK_KINDS = (*_OPTIONAL_KINDS, "server")  # Test Connection's extra reads: a checklist line, not a failure
# Chunk downloads one client runs at once (Tenable asks for few requests in parallel per key).
MAX_CHUNK_DOWNLOADS = 4
VULN_NUM_ASSETS = (50, 5000)  # what Tenable accepts (it clamps); asset chunk_size outside 100–10000 is a 400
ASSET_CHUNK_SIZE = (100, 10000)
TAG_PAGE = 5000  # tag values per page of GET /tags/values
TAG_PAGES_MAX = 20
_KEY_CHARS = re.compile(r"[\x21-\x3a\x3c-\x7e]+")  # printable ASCII except ';' (it would split the header)


# ---------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------


class TenableClient:
    """Calls the Tenable.io API with one pair of API keys. Raises `TenableError` on every failure."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        budget: float = 60.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        retry_after_max: float = 300.0,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        max_chunk_downloads: int = MAX_CHUNK_DOWNLOADS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = (api_url or DEFAULT_API_URL).strip().rstrip("/")
        parts = urlsplit(self.api_url)
        self.host = parts.hostname or self.api_url
        self._netloc = f"{self.host}:{parts.port}" if parts.port else self.host
        self._url_ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        self.timeout = timeout
        self._retry_after_max = retry_after_max
        self._max_download_bytes = max_download_bytes
        self._sleep = sleep
        self._clock = clock
        access_key, secret_key = (access_key or "").strip(), (secret_key or "").strip()
        # Keys that cannot form a valid header fail like wrong keys, without echoing them anywhere.
        self._keys_ok = bool(_KEY_CHARS.fullmatch(access_key) and _KEY_CHARS.fullmatch(secret_key))
        self._session = requests.Session()
        self._session.headers.update(
            {
                "X-ApiKeys": f"accessKey={access_key};secretKey={secret_key}" if self._keys_ok else "",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            }
        )
        retry = BoundedRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            backoff_factor=backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
            retry_after_max=retry_after_max,
            budget=budget,
            sleep=sleep,
            clock=clock,
        )
        # One pooled connection per concurrent chunk download (plus one for polling): a Session is shared
        # by those threads, and a pool smaller than them would open and drop a connection per request.
        self._downloads = threading.BoundedSemaphore(max(1, max_chunk_downloads))
        self._asset_export_v2: bool | None = None  # None until a v2 asset export was tried
        adapter = HTTPAdapter(
            max_retries=retry, pool_connections=1, pool_maxsize=max(2, max_chunk_downloads + 1)
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"TenableClient(api_url={self.api_url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def __enter__(self) -> TenableClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionInfo:
        """Prove the keys (`GET /scans`), say who they belong to and what they can do, with cheap reads only.

        The count is `list_scans().visible()`, so it always matches what Bind to lists. Then `/session` (user,
        container, role), the user's permission configurations (what it may view; skipped for
        Administrators, who see all), one scan's latest status (can it read results?) and the agent-group list
        (Scan Manager). Only the scan list must succeed: a refused extra call is a line of the checklist.
        """
        scans = self.list_scans().visible()
        session = self._optional("GET", "/session")
        session = session if isinstance(session, dict) else {}
        role = _int_or_none(session.get("permissions"))
        if role is not None and role >= checklist.ADMINISTRATOR:
            visibility = checklist.visibility_from(role, None)
        else:
            permissions = self._optional(
                "GET", "/api/v3/access-control/permissions/users/me", what="permissions"
            )
            reason = (
                f"Tenable.io refused the permissions call (HTTP {permissions.status})"
                if isinstance(permissions, checklist.Probe) and permissions.status
                else "Tenable.io did not list the permissions"
            )
            visibility = checklist.visibility_from(
                role, permissions if isinstance(permissions, dict) else None, reason
            )
        probed = _probe_target(scans)
        scan_read = None
        if probed is not None:
            # Same rights as the scan details (Scan Operator + Can View on the scan), a few bytes instead of
            # a document that lists every host of a big scan.
            scan_read = self._probe("GET", f"/scans/{_ref(probed.id)}/latest-status")
        agent_groups = self._probe("GET", "/scanners/null/agent-groups", what="agent-groups")
        return ConnectionInfo(
            username=_str_or_none(session.get("username")),
            container=_str_or_none(session.get("container_name")),
            scan_count=len(scans),
            role=role,
            role_name=checklist.role_name(role),
            visibility=visibility,
            capabilities=checklist.capabilities(
                role=role,
                scans=scans,
                visibility=visibility,
                probed_scan=probed,
                scan_read=scan_read,
                agent_groups=agent_groups,
            ),
        )

    def _optional(self, method: str, path: str, *, what: str = "scan") -> dict | checklist.Probe:
        """A read whose refusal costs only a detail: its JSON, or a failed `Probe` saying how it failed.

        Keys that stopped working, rate limits and network failures still raise: they fail the whole test.
        """
        try:
            return self._json(method, path, what=what)
        except TenableError as exc:
            if exc.kind not in _CHECK_KINDS:
                raise
            return checklist.Probe(ok=False, refused=exc.kind == "forbidden", status=exc.status)

    def _probe(self, method: str, path: str, *, what: str = "scan") -> checklist.Probe:
        answer = self._optional(method, path, what=what)
        return answer if isinstance(answer, checklist.Probe) else checklist.Probe(ok=True, status=200)

    def list_scans(self) -> SourceList:
        """All scans and folders the keys can see, each scan with its folder where Tenable says so plausibly."""
        data = self._json("GET", "/scans")
        folders = [
            Folder(id=int(f["id"]), name=str(f.get("name") or ""), type=_str_or_none(f.get("type")))
            for f in data.get("folders") or []
            if isinstance(f, dict) and _int_or_none(f.get("id")) is not None
        ]
        items = [item for item in data.get("scans") or [] if isinstance(item, dict)]
        membership: dict[int, int] = {}
        if items and not all("folder_id" in item for item in items):
            listed = {n for item in items if (n := _int_or_none(item.get("id"))) is not None}
            membership = self._folder_membership(folders, listed)
        scans = [_scan_summary(item, membership) for item in items]
        return SourceList(folders=folders, scans=scans)

    def _folder_membership(self, folders: list[Folder], listed: set[int]) -> dict[int, int]:
        """Each scan's folder, asked folder by folder (list items carry no folder_id).

        Fails open: when the answers cannot be right (a scan in two folders, the trash holding every scan,
        a folder that cannot be read) no scan gets a folder, so none is hidden as deleted.
        """
        membership: dict[int, int] = {}
        try:
            for folder in folders:
                for item in self._json("GET", "/scans", params={"folder_id": folder.id}).get("scans") or []:
                    scan_id = _int_or_none(item.get("id")) if isinstance(item, dict) else None
                    if scan_id is None:
                        continue
                    if scan_id in membership:
                        log.warning(
                            "Tenable.io listed scan %s in two folders; folder filter ignored", scan_id
                        )
                        return {}
                    membership[scan_id] = folder.id
        except TenableError as exc:
            log.warning("Tenable.io folder listing failed (%s); showing scans without folders", exc.kind)
            return {}
        trash = {folder.id for folder in folders if folder.type == "trash"}
        if trash and listed and all(membership.get(scan_id) in trash for scan_id in listed):
            log.warning("Tenable.io put every scan in the trash; not believed")
            return {}
        return membership

    def describe_scan(self, scan_id: int | str) -> ScanDetails:
        """Targets, tags, agent groups, policy, scanner, schedule and history of one scan."""
        data = self._json("GET", f"/scans/{_ref(scan_id)}", what="scan-read")
        info = data.get("info") if isinstance(data.get("info"), dict) else {}
        # The documented home of the schedule is the GET /scans list item; `info` carrying it is (inferred).
        summary = {} if "rrules" in info else (self._find_summary(scan_id, info) or {})
        source = info if "rrules" in info else summary
        rrules = _str_or_none(source.get("rrules"))
        schedule = None
        if rrules:
            schedule = Schedule(
                enabled=bool(source.get("enabled")),
                rrules=rrules,
                starttime=_str_or_none(source.get("starttime")),
                timezone=_str_or_none(source.get("timezone")),
            )
        scan_type = _str_or_none(info.get("scan_type")) or _str_or_none(summary.get("type"))
        numeric_id = _int_or_none(info.get("object_id")) or _int_or_none(summary.get("id"))
        if numeric_id is None:
            numeric_id = _int_or_none(scan_id) or 0
        agent_groups, groups_visible = self._agent_groups(scan_id) if scan_type == "agent" else ([], True)
        return ScanDetails(
            id=numeric_id,
            name=str(info.get("name") or summary.get("name") or ""),
            status=str(info.get("status") or summary.get("status") or "empty"),
            policy=_str_or_none(info.get("policy")),
            scanner=_str_or_none(info.get("scanner_name")),
            targets=[t.strip() for t in str(info.get("targets") or "").split(",") if t.strip()],
            tags=[self._tag_name(str(u)) for u in info.get("tag_targets") or []],
            agent_groups=agent_groups,
            schedule=schedule,
            host_count=_int_or_none(info.get("hostcount")),
            scan_type=scan_type,
            history=_history(data),
            schedule_uuid=_str_or_none(info.get("schedule_uuid")),
            last_run_uuid=_str_or_none(info.get("uuid")),
            folder_id=_int_or_none(info.get("folder_id")),
            agent_groups_visible=groups_visible,
        )

    def scan_history(self, scan_id: int | str) -> list[HistoryEntry]:
        """The scan's runs, newest first (one call)."""
        return _history(self._json("GET", f"/scans/{_ref(scan_id)}", what="scan-read"))

    def latest_status(self, scan_id: int | str) -> str:
        """Status of the scan's latest run (`GET /scans/{id}/latest-status`, the cheap poll)."""
        status = self._json("GET", f"/scans/{_ref(scan_id)}/latest-status", what="scan-read").get("status")
        if not isinstance(status, str):
            raise _bad_response(200)
        return status

    def launch(self, scan_id: int | str, alt_targets: list[str] | None = None) -> str:
        """Start the scan; returns the new run's uuid."""
        body: dict[str, Any] = {"alt_targets": list(alt_targets)} if alt_targets else {}
        uuid = self._json("POST", f"/scans/{_ref(scan_id)}/launch", json_body=body, what="launch").get(
            "scan_uuid"
        )
        if not uuid:
            raise _bad_response(200)
        return str(uuid)

    @contextmanager
    def export_nessus(
        self,
        scan_id: int | str,
        history_id: int | None = None,
        *,
        deadline: float = 1800,
        poll_initial: float = 1.0,
        poll_max: float = 15.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Iterator[IO[bytes]]:
        """Export a run as `.nessus` and yield the download as a binary stream (never held in memory).

        Polls the export status with exponential backoff until ready, failing after `deadline` seconds.
        A connection cut while reading raises `TenableError(kind="truncated")`.
        """
        sleep = sleep or self._sleep
        clock = clock or self._clock
        ref = _ref(scan_id)
        params = {"history_id": int(history_id)} if history_id is not None else None
        file_id = self._json(
            "POST", f"/scans/{ref}/export", params=params, json_body=EXPORT_BODY, what="scan-read"
        ).get("file")
        if file_id in (None, ""):
            raise _bad_response(200)
        file_ref = _ref(file_id)
        started, delay = clock(), poll_initial
        while True:
            status = str(
                self._json("GET", f"/scans/{ref}/export/{file_ref}/status", what="file").get("status")
            )
            if status.lower() == "ready":
                break
            if status.lower() in ("error", "cancelled", "canceled"):
                raise TenableError(
                    say.EXPORT_FAILED.format(status=status), kind="export_failed", permanent=False
                )
            remaining = deadline - (clock() - started)
            if remaining <= 0:
                raise TenableError(
                    say.EXPORT_TIMEOUT.format(minutes=f"{deadline / 60:.3g}"),
                    kind="export_timeout",
                    permanent=False,
                )
            sleep(min(delay, remaining))
            delay = min(delay * 2, poll_max)
        response = self._call("GET", f"/scans/{ref}/export/{file_ref}/download", what="file", stream=True)
        stream = _Download(response, self.timeout[1], self._max_download_bytes)
        try:
            yield stream
        finally:
            stream.close()

    # -- bulk exports ---------------------------------------------------------------------------------

    def list_export_scopes(self) -> list[ExportScope]:
        """ "Vulnerability data" sources: all assets the key may view, then each tag value it may see.

        `GET /tags/values` lists only what the user may view; a refused listing leaves the implicit scope.
        Tenable does not give asset counts there (`asset_count` is read if a deployment sends it — inferred).
        """
        scopes = [ExportScope(ExportScope.ALL_ID, ExportScope.ALL_LABEL)]
        try:
            values = self._tag_values()
        except TenableError as exc:
            if exc.kind not in _OPTIONAL_KINDS:
                raise
            log.warning("Tenable.io tag values could not be listed (%s); offering all assets only", exc.kind)
            return scopes
        tags = {}
        for value in values:
            category, name, uuid = value.get("category_name"), value.get("value"), value.get("uuid")
            if isinstance(category, str) and isinstance(name, str) and uuid and category and name:
                tags[str(uuid)] = ExportScope(
                    f"tag:{uuid}",
                    f"{category}: {name}",
                    tag=(category, name),
                    asset_count=_int_or_none(value.get("asset_count")),
                )
        return scopes + sorted(tags.values(), key=lambda scope: scope.label.lower())

    def _tag_values(self) -> list[dict]:
        values: list[dict] = []
        for _ in range(TAG_PAGES_MAX):
            page = self._json(
                "GET", "/tags/values", params={"offset": len(values), "limit": TAG_PAGE}, what="tag"
            )
            items = [v for v in page.get("values") or [] if isinstance(v, dict)]
            values += items
            total = _int_or_none((page.get("pagination") or {}).get("total"))
            if len(items) < TAG_PAGE or (total is not None and len(values) >= total):
                break
        return values

    def start_vuln_export(self, request: VulnExportRequest) -> ExportJob:
        """`POST /vulns/export` with the request's filters; a 409 naming the running job adopts it."""
        filters: dict[str, Any] = {"since": request.since, "state": list(request.states)}
        if request.severities:
            filters["severity"] = list(request.severities)
        if request.tag is not None:
            category, value = request.tag
            filters[f"tag.{category}"] = [value]
        body = {
            "num_assets": min(max(request.num_assets, VULN_NUM_ASSETS[0]), VULN_NUM_ASSETS[1]),
            "include_unlicensed": request.include_unlicensed,
            "filters": filters,
        }
        response = self._call("POST", "/vulns/export", json_body=body, what="export-request", accept=(409,))
        data = _json_of(response)
        if response.status_code == 409:
            running = data.get("active_job_id")
            if not running:
                raise TenableError(say.EXPORT_DUPLICATE, kind="conflict", permanent=False, status=409)
            log.info("Tenable.io vulnerability export: adopting the running job %s", running)
            return ExportJob(uuid=str(running), kind="vulns", adopted=True)
        return ExportJob(uuid=_export_uuid(data), kind="vulns")

    def vuln_export_status(self, job_uuid: str) -> ExportStatus:
        """`GET /vulns/export/{uuid}/status`, one poll."""
        return self._export_status("vulns", job_uuid)

    def vuln_export_chunk(self, job_uuid: str, chunk_id: int) -> VulnChunk:
        """Download one chunk (at most `max_chunk_downloads` at once per client) and decode it."""
        data = self._chunk("vulns", job_uuid, chunk_id)
        try:
            records = read_vuln_chunk(data)
        except FormatError as exc:
            raise _unreadable(job_uuid, chunk_id, exc) from None
        return VulnChunk(job_uuid, int(chunk_id), records.findings, records.rejected, len(data))

    def cancel_vuln_export(self, job_uuid: str) -> str:
        """`POST /vulns/export/{uuid}/cancel`; returns the job's status after it (CANCELLED, or its final one)."""
        return self._cancel("vulns", job_uuid)

    def start_asset_export(self, request: AssetExportRequest) -> ExportJob:
        """`POST /assets/v2/export` with `since` (assets updated, deleted or terminated since then); where v2 is
        refused (400, 404, 405), `POST /assets/export` with `updated_at` (inferred to move on deletion too)."""
        size = min(max(request.chunk_size, ASSET_CHUNK_SIZE[0]), ASSET_CHUNK_SIZE[1])
        if self._asset_export_v2 is not False:
            body = {"chunk_size": size, "filters": {"since": request.since}}
            try:
                data = self._json("POST", "/assets/v2/export", json_body=body, what="export-request")
            except TenableError as exc:
                if exc.status not in (400, 404, 405):
                    raise
                log.info("Tenable.io refused the v2 asset export (HTTP %s); using v1", exc.status)
                self._asset_export_v2 = False
            else:
                self._asset_export_v2 = True
                return ExportJob(uuid=_export_uuid(data), kind="assets", version="v2")
        body = {"chunk_size": size, "filters": {"updated_at": request.since}}
        data = self._json("POST", "/assets/export", json_body=body, what="export-request")
        return ExportJob(uuid=_export_uuid(data), kind="assets", version="v1")

    def asset_export_status(self, job_uuid: str) -> ExportStatus:
        """`GET /assets/export/{uuid}/status` (v1 and v2 jobs alike), one poll."""
        return self._export_status("assets", job_uuid)

    def asset_export_chunk(self, job_uuid: str, chunk_id: int) -> AssetChunk:
        """Download one asset chunk and decode it."""
        data = self._chunk("assets", job_uuid, chunk_id)
        try:
            records = read_asset_chunk(data)
        except FormatError as exc:
            raise _unreadable(job_uuid, chunk_id, exc) from None
        return AssetChunk(job_uuid, int(chunk_id), records.assets, records.rejected, len(data))

    def cancel_asset_export(self, job_uuid: str) -> str:
        """`POST /assets/export/{uuid}/cancel`; returns the job's status after it."""
        return self._cancel("assets", job_uuid)

    def _export_status(self, kind: str, job_uuid: str) -> ExportStatus:
        try:
            data = self._json("GET", f"/{kind}/export/{_ref(job_uuid)}/status", what="export")
        except TenableError as exc:
            raise _gone(exc, job_uuid) from None
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise _bad_response(200)
        created = _int_or_none(data.get("created"))
        return ExportStatus(
            uuid=str(data.get("uuid") or job_uuid),
            status=status.upper(),
            chunks_available=_chunk_ids(data.get("chunks_available")),
            chunks_failed=_chunk_ids(data.get("chunks_failed")),
            chunks_cancelled=_chunk_ids(data.get("chunks_cancelled")),
            total_chunks=_int_or_none(data.get("total_chunks")),
            finished_chunks=_int_or_none(data.get("finished_chunks")),
            empty_chunks=_int_or_none(data.get("empty_chunks_count")),
            created=datetime.fromtimestamp(created / 1000, UTC) if created else None,
            reason=_str_or_none(data.get("reason")),
        )

    def _chunk(self, kind: str, job_uuid: str, chunk_id: int) -> bytes:
        """One chunk's bytes, read whole (a chunk is one JSON array) under the decoded-size cap."""
        path = f"/{kind}/export/{_ref(job_uuid)}/chunks/{int(chunk_id)}"
        with self._downloads:
            try:
                response = self._call("GET", path, what="export", stream=True)
            except TenableError as exc:
                if exc.kind == "expired":
                    raise TenableError(
                        say.CHUNK_EXPIRED.format(chunk=chunk_id, job=job_uuid),
                        kind="expired",
                        permanent=True,
                        status=exc.status,
                    ) from None
                raise
            with closing(_Download(response, self.timeout[1], self._max_download_bytes)) as stream:
                return stream.read()

    def _cancel(self, kind: str, job_uuid: str) -> str:
        try:
            data = self._json("POST", f"/{kind}/export/{_ref(job_uuid)}/cancel", what="export")
        except TenableError as exc:
            raise _gone(exc, job_uuid) from None
        status = data.get("status")
        if not isinstance(status, str):
            raise _bad_response(200)
        return status.upper()

    # -- the door -----------------------------------------------------------------------------------

    def _find_summary(self, scan_id: int | str, info: dict) -> dict | None:
        wanted = {str(scan_id), str(info.get("object_id")), str(info.get("schedule_uuid"))} - {"None"}
        for item in self._json("GET", "/scans").get("scans") or []:
            if isinstance(item, dict) and {str(item.get("id")), str(item.get("schedule_uuid"))} & wanted:
                return item
        return None

    def _tag_name(self, value_uuid: str) -> str:
        try:
            tag = self._json("GET", f"/tags/values/{_ref(value_uuid)}", what="tag")
        except TenableError as exc:
            if exc.kind not in _OPTIONAL_KINDS:
                raise
            return value_uuid
        category, value = tag.get("category_name"), tag.get("value")
        return f"{category}: {value}" if category and value else value_uuid

    def _agent_groups(self, scan_id: int | str) -> tuple[list[AgentGroup], bool]:
        """The agent scan's groups, and whether this key may see them (the editor document needs Standard, the
        group list Scan Manager): refused is "not visible with this key", never a failure nor a silent []."""
        try:
            uuids = _agent_group_ids(self._json("GET", f"/editor/scan/{_ref(scan_id)}"))
        except TenableError as exc:
            if exc.kind not in _OPTIONAL_KINDS:
                raise
            return [], False
        if not uuids:
            return [], True
        visible = True
        try:
            groups = self._json("GET", "/scanners/null/agent-groups", what="agent-groups").get("groups") or []
        except TenableError as exc:
            if exc.kind not in _OPTIONAL_KINDS:
                raise
            groups, visible = [], False
        by_uuid = {str(g.get("uuid")): g for g in groups if isinstance(g, dict)}
        return [
            AgentGroup(name=str(g.get("name") or uuid), agents_count=_int_or_none(g.get("agents_count")))
            if (g := by_uuid.get(uuid))
            else AgentGroup(name=uuid, agents_count=None)
            for uuid in uuids
        ], visible

    def _json(self, method: str, path: str, *, what: str = "scan", **kwargs: Any) -> dict:
        return _json_of(self._call(method, path, what=what, **kwargs))

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str = "scan",
        params: dict | None = None,
        json_body: Any = None,
        stream: bool = False,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        """Send one request (auth, timeout, bounded retries); a status of 300 or more raises `TenableError`
        unless it is in `accept` (a 409 naming a running export job, for instance)."""
        if not self._url_ok:
            raise TenableError(
                f"The API URL {self.api_url!r} is not a valid http(s) URL.", kind="connection", permanent=True
            )
        if not self._keys_ok:
            raise TenableError(say.AUTH, kind="auth", permanent=True)
        try:
            response = self._session.request(
                method,
                self.api_url + path,
                params=params,
                json=json_body,
                timeout=self.timeout,
                stream=stream,
                allow_redirects=False,  # never carry the keys to another host
            )
        except requests.RequestException as exc:
            raise self._network_error(exc) from exc
        log.debug("Tenable.io %s %s -> %s", method, path, response.status_code)
        if response.status_code >= 300 and response.status_code not in accept:
            response.close()
            raise _status_error(response, what, self._retry_after_max)
        return response

    def _network_error(self, exc: BaseException) -> TenableError:
        chain = list(_causes(exc))

        def found(*types: type) -> bool:
            return any(isinstance(e, types) for e in chain)

        if found(NameResolutionError, socket.gaierror):
            return TenableError(say.DNS.format(host=self.host), kind="dns", permanent=False)
        if found(ssl.SSLError, ssl.CertificateError, Urllib3SSLError, requests.exceptions.SSLError):
            log.warning("Tenable.io TLS verification failed for %s", self.host)
            return TenableError(say.TLS.format(host=self.host), kind="tls", permanent=True)
        connect_timeout = isinstance(exc, requests.ConnectTimeout) or any(
            isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError) for e in chain
        )
        if connect_timeout or found(ReadTimeoutError, requests.Timeout, TimeoutError):
            seconds = self.timeout[0] if connect_timeout else self.timeout[1]
            return TenableError(say.TIMEOUT.format(seconds=_num(seconds)), kind="timeout", permanent=False)
        if found(ConnectionRefusedError):
            reason = "the connection was refused"
        elif found(ConnectionResetError, ProtocolError, http.client.RemoteDisconnected):
            reason = "the connection was reset"
        else:
            reason = "the network connection failed"
        return TenableError(
            say.CONNECTION.format(host=self._netloc, reason=reason), kind="connection", permanent=False
        )


class _Download(io.RawIOBase):
    """The export body as a readable stream; a cut connection becomes `TenableError(kind="truncated")`.

    At most `max_bytes` decoded bytes are handed out (urllib3 decodes gzip a bounded step per read).
    """

    def __init__(self, response: requests.Response, read_timeout: float, max_bytes: int) -> None:
        self._response = response
        self._raw = response.raw
        self._raw.decode_content = True
        self._read_timeout = read_timeout
        self._status = response.status_code
        self._max_bytes = max_bytes
        self._decoded = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(io.DEFAULT_BUFFER_SIZE * 8), b""))
        # One byte past the cap is enough to know the body is over it.
        data = self._read(min(size, self._max_bytes - self._decoded + 1))
        self._decoded += len(data)
        if self._decoded > self._max_bytes:
            raise TenableError(
                DOWNLOAD_TOO_LARGE.format(limit=f"{self._max_bytes / 1024 / 1024:.1f} MB"),
                kind="too_large",
                permanent=True,
            )
        return data

    def _read(self, size: int) -> bytes:
        try:
            return self._raw.read(size, decode_content=True)
        except (ReadTimeoutError, requests.Timeout, TimeoutError) as exc:
            raise TenableError(
                say.TIMEOUT.format(seconds=_num(self._read_timeout)), kind="timeout", permanent=False
            ) from exc
        except DecodeError as exc:
            raise _bad_response(self._status) from exc
        except (
            ProtocolError,
            IncompleteRead,
            InvalidChunkLength,
            http.client.IncompleteRead,
            requests.exceptions.ChunkedEncodingError,
            OSError,
        ) as exc:
            raise TenableError(say.TRUNCATED, kind="truncated", permanent=False) from exc

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def _status_error(response: requests.Response, what: str, retry_after_max: float) -> TenableError:
    status = response.status_code
    if status == 401:
        return TenableError(say.AUTH, kind="auth", permanent=True, status=status)
    exports = what in ("export", "export-request")
    if status == 403:
        if exports:
            return TenableError(say.FORBIDDEN_EXPORT, kind="forbidden", permanent=True, status=status)
        if what == "launch":
            message = say.FORBIDDEN + say.FORBIDDEN_LAUNCH
        elif what in ("scan-read", "file"):
            message = say.FORBIDDEN_READ
        else:
            message = say.FORBIDDEN_LIST
        return TenableError(message, kind="forbidden", permanent=True, status=status)
    if status == 404 and what == "export":  # a job or chunk it no longer has (callers name which)
        return TenableError(say.EXPORT_EXPIRED, kind="expired", permanent=True, status=status)
    if status == 404:
        if what == "export-request":
            message = say.EXPORT_UNAVAILABLE.format(what="bulk", status=status)
        else:
            message = say.FILE_NOT_FOUND if what == "file" else say.SCAN_NOT_FOUND
        return TenableError(message, kind="not_found", permanent=True, status=status)
    if status == 409:
        message = say.ALREADY_RUNNING if what == "launch" else say.CONFLICT
        return TenableError(message, kind="conflict", permanent=True, status=status)
    if status == 429:
        seconds = parse_retry_after(response.headers.get("Retry-After"), maximum=retry_after_max)
        hinted, plain = (
            (say.EXPORT_LIMIT, say.EXPORT_LIMIT_NO_HINT)
            if what == "export-request"
            else (say.RATE_LIMITED, say.RATE_LIMITED_NO_HINT)
        )
        message = hinted.format(seconds=_num(math.ceil(seconds))) if seconds is not None else plain
        return TenableError(message, kind="rate_limited", permanent=False, status=status, retry_after=seconds)
    if 500 <= status <= 599:
        return TenableError(say.SERVER.format(status=status), kind="server", permanent=False, status=status)
    return TenableError(
        say.BAD_RESPONSE.format(status=status), kind="bad_response", permanent=True, status=status
    )


def _json_of(response: requests.Response) -> dict:
    """The response's JSON object (read whole, then the connection is released)."""
    try:
        data = response.json()
    except ValueError:
        raise _bad_response(response.status_code) from None
    finally:
        response.close()
    if not isinstance(data, dict):
        raise _bad_response(response.status_code)
    return data


def _export_uuid(data: dict) -> str:
    uuid = data.get("export_uuid")
    if not isinstance(uuid, str) or not uuid:
        raise _bad_response(200)
    return uuid


def _chunk_ids(value: Any) -> tuple[int, ...]:
    return (
        tuple(n for v in value or () if (n := _int_or_none(v)) is not None) if isinstance(value, list) else ()
    )


def _gone(exc: TenableError, job_uuid: str) -> TenableError:
    """A 404 on an export job's status or cancel: the job is gone (expired); any other error as it was."""
    if exc.kind != "expired":
        return exc
    return TenableError(
        say.EXPORT_GONE.format(job=job_uuid), kind="expired", permanent=True, status=exc.status
    )


def _unreadable(job_uuid: str, chunk_id: int, exc: FormatError) -> TenableError:
    log.warning("Tenable.io export %s chunk %s is unreadable: %s", job_uuid, chunk_id, exc.message)
    return TenableError(
        say.CHUNK_UNREADABLE.format(chunk=chunk_id, job=job_uuid, detail=exc.message),
        kind="unreadable",
        permanent=False,
    )


def _bad_response(status: int) -> TenableError:
    return TenableError(
        say.BAD_RESPONSE.format(status=status), kind="bad_response", permanent=False, status=status
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes, contexts, urllib3 reasons and wrapped args, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested = [e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())]
        todo.extend(n for n in nested if isinstance(n, BaseException))


def _probe_target(scans: list[ScanSummary]) -> ScanSummary | None:
    """The scan whose details prove "read scan results": one that has run, else any visible scan."""
    return next((s for s in scans if s.uuid and s.status != "empty"), scans[0] if scans else None)


def _agent_group_ids(editor: dict) -> list[str]:
    """Agent group uuids from an editor document (`settings.basic.inputs[]`, id `agent_group_id`)."""
    basic = (editor.get("settings") or {}).get("basic") or {}
    inputs = list(basic.get("inputs") or [])
    for group in basic.get("groups") or []:  # (inferred) some templates nest inputs in groups
        if isinstance(group, dict):
            inputs.extend(group.get("inputs") or [])
    for field in inputs:
        if isinstance(field, dict) and field.get("id") == "agent_group_id":
            value = field.get("default", field.get("value"))  # (inferred) the selection is in "default"
            if isinstance(value, str):
                value = [value]
            return [str(v) for v in value or [] if v]
    return []


def _scan_summary(item: dict, membership: dict[int, int]) -> ScanSummary:
    scan_id = _int_or_none(item.get("id")) or 0
    folder_id = _int_or_none(item["folder_id"]) if "folder_id" in item else membership.get(scan_id)
    return ScanSummary(
        id=scan_id,
        schedule_uuid=_str_or_none(item.get("schedule_uuid")),
        uuid=_str_or_none(item.get("uuid")),
        name=str(item.get("name") or ""),
        status=str(item.get("status") or "empty"),
        type=_str_or_none(item.get("type")),
        folder_id=folder_id,
        owner=_str_or_none(item.get("owner")),
        enabled=bool(item.get("enabled")),
        control=bool(item.get("control", True)),
        last_modification_date=_int_or_none(item.get("last_modification_date")) or None,
        rrules=_str_or_none(item.get("rrules")),
        starttime=_str_or_none(item.get("starttime")),
        timezone=_str_or_none(item.get("timezone")),
        policy_id=_int_or_none(item.get("policy_id")),
        user_permissions=_int_or_none(item.get("user_permissions")),
    )


def _history(data: dict) -> list[HistoryEntry]:
    entries = [
        HistoryEntry(
            history_id=_int_or_none(h.get("history_id")) or 0,
            uuid=str(h.get("uuid") or ""),
            status=str(h.get("status") or ""),
            creation_date=_int_or_none(h.get("creation_date")) or None,
            last_modification_date=_int_or_none(h.get("last_modification_date")) or None,
            is_archived=bool(h.get("is_archived")),
        )
        for h in data.get("history") or []
        if isinstance(h, dict)
    ]
    # Tenable sends newest first; sort anyway so callers can rely on it.
    entries.sort(key=lambda h: (h.creation_date or 0, h.history_id), reverse=True)
    return entries


def _ref(value: int | str) -> str:
    return quote(str(value).strip(), safe="")


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _num(value: float) -> str:
    return f"{value:g}"
