"""Bulk export jobs: `/vulns/export`, `/assets/export` and `/assets/v2/export` with status, chunks, cancel.

A job fixes its content when it is created (the assets it covers, as of that moment) and then finishes its
chunks out of order over successive status polls (`export_chunks_per_poll`, or over time with
`export_chunk_seconds`). Each chunk is built once, on its first download, or ahead of time by
`prepare_vulns_export`, which writes the chunk files to disk so benchmarks measure the client, not us.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .access import User
from .catalogue import mix, uuid_of
from .findings import BadRequest, ScanView, VulnQuery, parse_vuln_request
from .records import AssetQuery, Records, parse_asset_request
from .responses import FILE_NOT_FOUND, bad_request, gzipped, json_response, rate_limited

ACTIVE = ("QUEUED", "PROCESSING")
CHUNK_LIFETIME = 24 * 3600  # finished chunks can be downloaded for 24 h, a cancelled job's for 3 days
CANCELLED_LIFETIME = 3 * 24 * 3600
_SPILL_OVER = 8 << 20  # built chunks bigger than this are kept on disk, not in memory
_READ_BLOCK = 1 << 20


@dataclass
class Chunk:
    id: int
    assets: list[tuple[int, int]]  # (scan id, host index)
    empty: bool
    path: str | None = None
    data: bytes | None = None


@dataclass
class Plan:
    """What an export will contain: its chunks (asset groups) as of a moment."""

    chunks: dict[int, Chunk]
    views: dict[int, ScanView]
    window: dict[str, int]
    as_of: float


@dataclass
class PreparedExport:
    """A vulnerability export written to disk ahead of time; a matching `POST /vulns/export` serves it."""

    directory: str
    chunk_ids: list[int]
    findings: int
    size: int
    immediate: bool
    plan: Plan = field(repr=False)


@dataclass
class ExportJob:
    uuid: str
    kind: str  # "vulns" or "assets"
    version: str | None
    user: User
    query: VulnQuery | AssetQuery
    plan: Plan
    order: list[int]  # the order in which chunks finish
    created: float
    status: str = "QUEUED"
    polls: int = 0
    revealed: int = 0
    failed: frozenset[int] = frozenset()
    error_after: int | None = None
    cancelled: list[int] = field(default_factory=list)
    finished_at: float | None = None
    expired: bool = False
    immediate: bool = False
    reason: str = ""
    build_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class BulkExports(Records):
    """The export job routes, the ground-truth helpers (`vulns`, `assets`) and prepared exports."""

    export_queued_polls: int
    export_chunks_per_poll: int
    export_chunk_seconds: float
    max_export_jobs: int
    gzip_downloads: bool
    _jobs: dict[str, ExportJob]
    _prepared: dict[tuple[str, str, str], PreparedExport]
    _scratch: list[str]

    # -- ground truth and preparation ---------------------------------------------------------------

    def vulns(
        self,
        *,
        key: str | None = None,
        states: Iterable[str] | None = None,
        since: int | None = None,
        filters: dict[str, Any] | None = None,
        include_unlicensed: bool = False,
        at: float | None = None,
    ) -> list[dict[str, Any]]:
        """The findings a vulnerability export with these filters would hold now (or at `at`), in order."""
        filters = dict(filters or {})
        if states is not None:
            filters["state"] = list(states)
        if since is not None:
            filters["since"] = since
        query = parse_vuln_request(
            {"num_assets": 5000, "include_unlicensed": include_unlicensed, "filters": filters}
        )
        plan = self._plan_vulns(self._user_for(key), query, self.now() if at is None else at)
        return [r for c in sorted(plan.chunks) for r in json.loads(self._build(plan, query, plan.chunks[c]))]

    def assets(
        self, *, key: str | None = None, filters: dict[str, Any] | None = None, version: str | None = None
    ) -> list[dict[str, Any]]:
        """The assets an asset export (v1, or `version="v2"`) with these filters would hold now."""
        query = parse_asset_request({"chunk_size": 10000, "filters": filters or {}}, version)
        plan = self._plan_assets(self._user_for(key), query, self.now())
        return [r for c in sorted(plan.chunks) for r in json.loads(self._build(plan, query, plan.chunks[c]))]

    def prepare_vulns_export(
        self,
        *,
        key: str | None = None,
        body: dict[str, Any] | None = None,
        directory: str | None = None,
        immediate: bool = True,
    ) -> PreparedExport:
        """Write the chunks of a vulnerability export to disk now; the same POST body from the same user
        then creates a job that streams those files (all available at once if `immediate`)."""
        user = self._user_for(key)
        query = parse_vuln_request(body)
        plan = self._plan_vulns(user, query, self.now())
        findings = size = 0
        folder = ""
        for chunk in plan.chunks.values():
            if chunk.empty:
                continue
            if directory is None:
                chunk.path = self._scratch_file(f"prepared-{len(self._prepared)}-{chunk.id}.json")
            else:
                chunk.path = os.path.join(directory, f"chunk-{chunk.id}.json")
            folder = os.path.dirname(chunk.path)
            written, count = _write(chunk.path, self._pieces(plan, query, chunk))
            size, findings = size + written, findings + count
        ids = [c for c, chunk in plan.chunks.items() if not chunk.empty]
        prepared = PreparedExport(folder, ids, findings, size, immediate, plan)
        with self._lock:
            self._prepared[(user.uuid, "vulns", query.dedup)] = prepared
        return prepared

    def expire_chunks(self, export_uuid: str | None = None) -> None:
        """Make the chunks of one export (or all) 404 from now on, as after Tenable's 24 h."""
        with self._lock:
            for job in self._jobs.values():
                if export_uuid in (None, job.uuid):
                    job.expired = True

    @property
    def export_jobs_created(self) -> int:
        """How many bulk export jobs (vulnerabilities and assets) were created so far."""
        with self._lock:
            return len(self._jobs)

    def export_jobs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The status of every bulk export job (newest last), without counting as a poll."""
        with self._lock:
            return [self._status_body(j) for j in self._jobs.values() if kind in (None, j.kind)]

    def _user_for(self, key: str | None) -> User:
        user = self.user(key or self.keys[0])
        if user is None:
            raise ValueError(f"{key!r} is not one of the simulator's access keys")
        return user

    # -- plans and chunks ---------------------------------------------------------------------------

    def _plan_vulns(self, user: User, query: VulnQuery, t: float) -> Plan:
        views = self._views(t)
        window = self._window(query, t)
        assets = [
            (scan_id, i)
            for scan_id, view in views.items()
            for i in view.hosts
            if self._asset_in_scope(user, view, i, t, query)
        ]
        chunks = {}
        for n, start in enumerate(range(0, len(assets), query.num_assets), 1):
            group = assets[start : start + query.num_assets]
            found = any(next(iter(self._matching(views[s], i, query, window)), None) for s, i in group)
            chunks[n] = Chunk(n, group, empty=not found)
        return Plan(chunks, views, window, t)

    def _plan_assets(self, user: User, query: AssetQuery, t: float) -> Plan:
        views = self._views(t)
        assets = [
            (scan_id, i)
            for scan_id, view in views.items()
            for i in view.hosts
            if self._asset_in_scope(user, view, i, t, query, drop_gone=False)
            and self._asset_matches(self._asset_facts(view, i, t), query, view.scan)
        ]
        size = query.chunk_size
        chunks = {
            n: Chunk(n, assets[s : s + size], False) for n, s in enumerate(range(0, len(assets), size), 1)
        }
        return Plan(chunks, views, {}, t)

    def _pieces(self, plan: Plan, query: VulnQuery | AssetQuery, chunk: Chunk) -> Iterator[bytes]:
        """A chunk's JSON array, in pieces (one asset's findings each, for vulnerabilities)."""
        if chunk.empty:
            yield b"[]"
        elif isinstance(query, VulnQuery):
            yield from self._vuln_pieces(plan.views, chunk.assets, query, plan.window)
        else:
            records = []
            for scan_id, i in chunk.assets:
                view = plan.views[scan_id]
                records.append(
                    self._asset_record(view, i, self._asset_facts(view, i, plan.as_of), query.version)
                )
            yield json.dumps(records).encode()

    def _build(self, plan: Plan, query: VulnQuery | AssetQuery, chunk: Chunk) -> bytes:
        return b"".join(self._pieces(plan, query, chunk))

    def _chunk_body(self, job: ExportJob, chunk: Chunk) -> tuple[int, Iterator[bytes]]:
        """(length, body) of a chunk, building it once, on first use (on disk when it is big)."""
        with job.build_lock:
            if chunk.path is None and chunk.data is None:
                pieces, held, size = self._pieces(job.plan, job.query, chunk), [], 0
                for piece in pieces:
                    held.append(piece)
                    size += len(piece)
                    if size > _SPILL_OVER:
                        chunk.path = self._scratch_file(f"{job.uuid}-{chunk.id}.json")
                        _write(chunk.path, itertools.chain(held, pieces))
                        break
                else:
                    chunk.data = b"".join(held)
        if chunk.data is not None:
            return len(chunk.data), iter([chunk.data])
        return os.path.getsize(chunk.path), _read_file(chunk.path)

    def _scratch_file(self, name: str) -> str:
        """A path in the simulator's own temporary directory (removed when the simulator is collected)."""
        with self._lock:
            if not self._scratch:
                directory = tempfile.mkdtemp(prefix="tenable-sim-export-")
                self._scratch.append(directory)
                weakref.finalize(self, shutil.rmtree, directory, True)
            return os.path.join(self._scratch[0], name)

    # -- job state ----------------------------------------------------------------------------------

    def _new_job(
        self, kind: str, version: str | None, user: User, query: Any, plan: Plan, ctx: dict
    ) -> ExportJob:
        number = len(self._jobs)
        order = sorted(plan.chunks, key=lambda c: mix(self.seed, number, c, 0x0DD))
        job = ExportJob(uuid_of(self.seed, 0xE4, number), kind, version, user, query, plan, order, self.now())
        non_empty = [c for c in order if not plan.chunks[c].empty]
        broken = self._fault("export_chunks_failed", ctx)
        if broken:
            count = int(broken.params.get("failed", 1))
            job.failed = frozenset(non_empty[1 : 1 + count] if len(non_empty) > 1 else non_empty[:count])
        erroring = self._fault("export_error_partial", ctx)
        if erroring:
            job.error_after = int(erroring.params.get("available", max(1, len(order) // 2)))
        self._jobs[job.uuid] = job
        return job

    def _advance(self, job: ExportJob, ctx: dict) -> str:
        """One status poll: the job makes progress (or not, if stuck) and returns the status to report."""
        if job.status not in ACTIVE:
            return job.status
        stuck = self._fault("export_queued", ctx)
        if stuck:
            return str(stuck.params.get("status", "QUEUED"))
        job.polls += 1
        if job.polls <= self.export_queued_polls:
            return job.status
        job.status = "PROCESSING"
        total = len(job.order)
        if job.immediate or self.export_chunks_per_poll <= 0:
            job.revealed = total
        elif self.export_chunk_seconds > 0:
            job.revealed = min(total, int((self.now() - job.created) / self.export_chunk_seconds))
        else:
            job.revealed = min(total, job.revealed + self.export_chunks_per_poll)
        if job.error_after is not None and job.revealed >= job.error_after:
            job.revealed = min(job.error_after, total)
            self._finish(
                job, "ERROR", "Export failed while processing chunks; the remaining chunks were cancelled."
            )
            job.cancelled = job.order[job.revealed :]
        elif job.revealed >= total:
            reason = ""
            if job.failed:
                reason = f"{len(job.failed)} of {total} chunks failed to process. Please re-run the export."
            self._finish(job, "FINISHED", reason)
        return job.status

    def _finish(self, job: ExportJob, status: str, reason: str = "") -> None:
        job.status, job.reason, job.finished_at = status, reason, self.now()

    def _status_body(self, job: ExportJob, status: str | None = None) -> dict[str, Any]:
        revealed = job.order[: job.revealed]
        available = [c for c in revealed if not job.plan.chunks[c].empty and c not in job.failed]
        body: dict[str, Any] = {
            "uuid": job.uuid,
            "status": status or job.status,
            "chunks_available": available,
            "chunks_failed": [c for c in revealed if c in job.failed],
            "chunks_cancelled": list(job.cancelled),
            "total_chunks": len(job.order),
            "chunks_available_count": len(available),
            "empty_chunks_count": sum(1 for c in revealed if job.plan.chunks[c].empty),
            "finished_chunks": len(revealed) - len(job.failed & set(revealed)),
            "filters": job.query.filters,
            "num_assets_per_chunk": job.query.num_assets if job.kind == "vulns" else job.query.chunk_size,
            "created": int(job.created * 1000),
        }
        if job.kind == "vulns":
            body["include_unlicensed"] = job.query.include_unlicensed
        if job.reason:
            body["reason"] = job.reason
        return body

    def _downloadable(self, job: ExportJob, chunk_id: int) -> bool:
        if chunk_id not in job.order[: job.revealed] or chunk_id in job.failed or job.expired:
            return False
        lifetime = CANCELLED_LIFETIME if job.status == "CANCELLED" else CHUNK_LIFETIME
        return self.now() <= (job.finished_at or job.created) + lifetime

    def _active_jobs(self) -> list[ExportJob]:
        return [j for j in self._jobs.values() if j.status in ACTIVE]

    # -- routes -------------------------------------------------------------------------------------

    def _vulns_export(
        self, start_response: Callable, *, body: Any, user: User, ctx: dict, **_: Any
    ) -> list[bytes]:
        try:
            query = parse_vuln_request(body)
        except BadRequest as error:
            return bad_request(start_response, str(error))
        with self._lock:
            duplicate = next(
                (j for j in self._active_jobs() if j.kind == "vulns" and _same(j, user, query)), None
            )
            if duplicate is not None:
                reason = "Duplicate export not allowed. Please modify request or wait until existing export is complete."
                return json_response(
                    start_response, 409, {"active_job_id": duplicate.uuid, "failure_reason": reason}
                )
            if len(self._active_jobs()) >= self.max_export_jobs:
                return rate_limited(start_response, "60")
            prepared = self._prepared.get((user.uuid, "vulns", query.dedup))
        plan = prepared.plan if prepared else self._plan_vulns(user, query, self.now())
        with self._lock:
            job = self._new_job("vulns", None, user, query, plan, ctx)
            job.immediate = bool(prepared and prepared.immediate)
        return json_response(start_response, 200, {"export_uuid": job.uuid})

    def _assets_export(
        self,
        start_response: Callable,
        *,
        body: Any,
        user: User,
        ctx: dict,
        version: str | None = None,
        **_: Any,
    ) -> list[bytes]:
        try:
            query = parse_asset_request(body, version or None)
        except BadRequest as error:
            return bad_request(start_response, str(error))
        with self._lock:
            for old in self._active_jobs():
                if old.kind == "assets" and _same(old, user, query):
                    old.cancelled = old.order[old.revealed :]
                    self._finish(old, "CANCELLED", "Cancelled by a newer export with the same filters.")
            if len(self._active_jobs()) >= self.max_export_jobs:
                return rate_limited(start_response, "60")
        plan = self._plan_assets(user, query, self.now())
        with self._lock:
            job = self._new_job("assets", query.version, user, query, plan, ctx)
        return json_response(start_response, 200, {"export_uuid": job.uuid})

    def _job_list(self, start_response: Callable, *, kind: str, user: User, **_: Any) -> list[bytes]:
        with self._lock:
            jobs = [self._status_body(j) for j in self._jobs.values() if j.kind == kind and j.user == user]
        return json_response(start_response, 200, {"exports": jobs})

    def _own_job(self, kind: str, job: str, user: User) -> ExportJob | None:
        """The user's job of this kind (another user's job is as unknown as a wrong uuid)."""
        found = self._jobs.get(job)
        return found if found is not None and found.kind == kind and found.user == user else None

    def _job_status(
        self, start_response: Callable, *, kind: str, job: str, user: User, ctx: dict, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._own_job(kind, job, user)
            if found is None:
                return json_response(start_response, 404, FILE_NOT_FOUND)
            status = self._advance(found, ctx)
            return json_response(start_response, 200, self._status_body(found, status))

    def _job_cancel(
        self, start_response: Callable, *, kind: str, job: str, user: User, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._own_job(kind, job, user)
            if found is None:
                return json_response(start_response, 404, FILE_NOT_FOUND)
            if found.status in ACTIVE:
                found.cancelled = found.order[found.revealed :]
                self._finish(found, "CANCELLED")
            return json_response(start_response, 200, {"status": found.status})

    def _job_chunk(
        self,
        start_response: Callable,
        *,
        kind: str,
        job: str,
        chunk: str,
        user: User,
        ctx: dict,
        environ: dict,
        **_: Any,
    ) -> Iterable[bytes]:
        with self._lock:
            found = self._own_job(kind, job, user)
            if found is None or not chunk.isdigit() or not self._downloadable(found, int(chunk)):
                return json_response(start_response, 404, FILE_NOT_FOUND)
            if self._fault("chunk_not_found", ctx):
                return json_response(start_response, 404, FILE_NOT_FOUND)
            broken = self._fault("chunk_invalid_json", ctx)
        length, body = self._chunk_body(found, found.plan.chunks[int(chunk)])
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", f'attachment; filename="{kind}-{job}-{chunk}.json"'),
        ]
        if broken:
            data = _broken(b"".join(body), broken.params.get("mode", "invalid"))
            length, body = len(data), iter([data])
        elif self.gzip_downloads and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            start_response("200 OK", [*headers, ("Content-Encoding", "gzip"), ("X-Sim-Chunked", "1")])
            return gzipped(body)
        start_response("200 OK", [*headers, ("Content-Length", str(length))])
        return body


def _same(job: ExportJob, user: User, query: VulnQuery | AssetQuery) -> bool:
    return job.user.uuid == user.uuid and job.query.dedup == query.dedup


def _broken(data: bytes, mode: str) -> bytes:
    """A chunk that is not valid JSON: cut in the middle of a record, or with a broken first byte."""
    if mode == "truncated":
        return data[: max(1, len(data) // 2)]
    return b"{" + data[1:]


def _write(path: str, pieces: Iterable[bytes]) -> tuple[int, int]:
    """Write a chunk's pieces to a file; returns (bytes, findings) written."""
    size = findings = 0
    with open(path, "wb") as out:
        for piece in pieces:
            out.write(piece)
            size += len(piece)
            findings += piece.count(b'{"asset":')
    return size, findings


def _read_file(path: str) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while block := source.read(_READ_BLOCK):
            yield block
