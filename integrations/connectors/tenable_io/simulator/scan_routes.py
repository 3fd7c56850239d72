"""The scan endpoints: list, details, latest status, launch, stop, `.nessus` export, editor, agent groups."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .access import User
from .catalogue import uuid_of
from .data import FOLDERS
from .documents import NessusDocuments
from .faults import FaultInjection
from .model import ACTIVE_STATUSES, MAX_ACTIVE_EXPORTS, MAX_ACTIVE_SCANS, Run, Scan, ScanExport
from .responses import FILE_NOT_FOUND, gzip_bomb, gzipped, json_response, rate_limited

_SCAN_NOT_FOUND = {"error": "Scan not found"}
_TEMPLATE = "731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65"


class ScanRoutes(NessusDocuments, FaultInjection):
    """Handlers for `/scans…`, `/folders`, `/editor/scan/{id}`, `/scanners…` and `/filters/scans/reports`."""

    export_seconds: float
    export_loading_polls: int
    gzip_downloads: bool
    _exports: dict[str, ScanExport]
    _summary_cache: dict[tuple[int, int], tuple[list, list]]

    def _lookup(self, ref: str) -> Scan | None:
        if self._fault_active("no_scans"):
            return None
        if ref.isdigit():
            return self._scans.get(int(ref))
        return next((s for s in self._scans.values() if s.schedule_uuid == ref), None)

    def _list_scans(
        self, start_response: Callable, *, query: dict, ctx: dict, user: User, **_: Any
    ) -> list[bytes]:
        with self._lock:
            if self._fault("no_scans", ctx):
                return json_response(
                    start_response, 200, {"folders": FOLDERS, "scans": None, "timestamp": int(self.now())}
                )
            scans = list(self._scans.values())
            ignored = self._fault("ignore_folder_filter", ctx) if "folder_id" in query else None
            if ignored is not None and ignored.params.get("mode", "all") == "trash":
                trash = next(str(f["id"]) for f in FOLDERS if f["type"] == "trash")
                scans = scans if query["folder_id"] == trash else []
            elif "folder_id" in query and ignored is None:
                scans = [s for s in scans if str(s.folder_id) == query["folder_id"]]
            if query.get("last_modification_date", "").isdigit():
                since = int(query["last_modification_date"])
                scans = [s for s in scans if s.runs and self._modified(s.runs[-1]) > since]
            items = [self._list_item(s, user) for s in scans]
        return json_response(
            start_response, 200, {"folders": FOLDERS, "scans": items, "timestamp": int(self.now())}
        )

    def _list_item(self, scan: Scan, user: User) -> dict[str, Any]:
        latest = scan.runs[-1] if scan.runs else None
        return {
            "id": scan.id,
            "uuid": latest.uuid if latest else None,
            "schedule_uuid": scan.schedule_uuid,
            "name": scan.name,
            "status": self._status(scan, latest) if latest else "empty",
            "type": scan.type if latest else None,
            "owner": scan.owner,
            "enabled": scan.enabled,
            "control": scan.control,
            "read": True,
            "shared": False,
            "permissions": user.scan_permissions,
            "user_permissions": user.scan_permissions,
            "creation_date": scan.creation_date if latest else 0,
            "last_modification_date": self._modified(latest) if latest else 0,
            "rrules": scan.rrules,
            "starttime": scan.starttime,
            "timezone": scan.timezone,
            "policy_id": scan.policy_id,
            "template_uuid": _TEMPLATE,
            "wizard_uuid": _TEMPLATE,
        }

    def _folders(self, start_response: Callable, **_: Any) -> list[bytes]:
        return json_response(start_response, 200, {"folders": FOLDERS})

    def _scan_details(self, start_response: Callable, *, scan: str, query: dict, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            ref = query.get("history_id") or query.get("history_uuid")
            run = (self._run(found, ref) if ref else found.runs[-1]) if found.runs else None
            if ref and run is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            info = self._info(found, run)
            hosts: list = []
            vulns: list = []
            if run:
                if found.control:
                    info["hostcount"] = len(self._hosts_in(found, run))  # imported scans have no hostcount
                if not self._archived(run):
                    hosts, vulns = self._summaries(found, run)
            history = [self._history_item(found, r) for r in reversed(found.runs)]
        body = {
            "info": info,
            "hosts": hosts,
            "vulnerabilities": vulns,
            "history": history,
            "comphosts": [],
            "compliance": [],
            "notes": [],
            "filters": [],
            "remediations": {
                "remediations": [],
                "num_hosts": len(hosts),
                "num_cves": 0,
                "num_impacted_hosts": 0,
            },
        }
        return json_response(start_response, 200, body)

    def _info(self, scan: Scan, run: Run | None) -> dict[str, Any]:
        return {
            "name": scan.name,
            "owner": scan.owner,
            "status": self._status(scan, run) if run else "empty",
            "uuid": run.uuid if run else None,
            "object_id": scan.id,
            "schedule_uuid": scan.schedule_uuid,
            "folder_id": scan.folder_id,
            "policy": scan.policy,
            "scanner_name": scan.scanner_name,
            "targets": ",".join(run.alt_targets) if run and run.alt_targets else scan.targets,
            "tag_targets": scan.tag_targets,
            "scan_type": scan.type if scan.runs else None,
            "scan_start": run.creation_date if run else None,
            "scan_end": self._modified(run) if run else None,
            "timestamp": int(self.now()),
            "control": scan.control,
            "edit_allowed": False,
            "user_permissions": 128,
            "is_archived": bool(run and self._archived(run)),
            "haskb": True,
            "alt_targets_used": bool(run and run.alt_targets),
        }

    def _history_item(self, scan: Scan, run: Run) -> dict[str, Any]:
        return {
            "history_id": run.history_id,
            "uuid": run.uuid,
            "status": self._status(scan, run),
            "type": scan.type,
            "scheduler": 1 if scan.rrules else 0,
            "creation_date": run.creation_date,
            "last_modification_date": self._modified(run),
            "owner_id": 2_309_095,
            "alt_targets_used": bool(run.alt_targets),
            "is_archived": self._archived(run),
        }

    def _summaries(self, scan: Scan, run: Run) -> tuple[list, list]:
        """The details' `hosts` and `vulnerabilities` lists (cached once the run is finished)."""
        key = (scan.id, run.history_id)
        status = self._status(scan, run)
        if key in self._summary_cache and status not in ACTIVE_STATUSES:
            return self._summary_cache[key]
        k = scan.runs.index(run)
        hosts, plugin_counts = [], {}
        for i in self._hosts_in(scan, run):
            counts = [0] * 5
            for index in self._found(scan, k, i):
                counts[self._plugin_at(index).severity] += 1
                plugin_counts[index] = plugin_counts.get(index, 0) + 1
            hosts.append(self._host_summary(scan, i, counts))
        vulns = []
        for n, (index, count) in enumerate(sorted(plugin_counts.items())):
            p = self._plugin_at(index)
            vulns.append(
                {
                    "plugin_id": p.id,
                    "plugin_name": p.name,
                    "plugin_family": p.family,
                    "severity": p.severity,
                    "severity_index": n,
                    "count": count,
                    "vuln_index": n,
                }
            )
        if status not in ACTIVE_STATUSES:
            self._summary_cache[key] = (hosts, vulns)
        return hosts, vulns

    def _host_summary(self, scan: Scan, i: int, counts: list[int]) -> dict[str, Any]:
        host = self._host(scan, i)
        return {
            "host_id": i + 1,
            "asset_id": i + 1,
            "uuid": host.uuid,
            "hostname": host.ip,
            "critical": counts[4],
            "high": counts[3],
            "medium": counts[2],
            "low": counts[1],
            "info": counts[0],
            "severity": sum(counts),
            "score": counts[4] * 10000 + counts[3] * 1000 + counts[2] * 100 + counts[1] * 10 + counts[0],
            "progress": "100-100/200-200",
            "scanprogresscurrent": 100,
            "scanprogresstotal": 100,
        }

    def _latest_status(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            status = self._status(found, found.runs[-1]) if found.runs else "empty"
        return json_response(start_response, 200, {"status": status})

    def _launch(self, start_response: Callable, *, scan: str, body: Any, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            if not found.control:
                return json_response(
                    start_response, 403, {"error": "You are not authorized to perform this request"}
                )
            if found.runs and self._status(found, found.runs[-1]) in ACTIVE_STATUSES:
                # (inferred) Tenable does not document this answer; 409 is what clients must handle.
                return json_response(
                    start_response,
                    409,
                    {"statusCode": 409, "error": "Conflict", "message": "Scan is already running"},
                )
            active = sum(
                1 for s in self._scans.values() if s.runs and self._status(s, s.runs[-1]) in ACTIVE_STATUSES
            )
            if active >= MAX_ACTIVE_SCANS:
                return rate_limited(start_response, "60")
            alt = body.get("alt_targets") if isinstance(body, dict) else None
            run = Run(
                history_id=self._new_history_id(),
                uuid=uuid_of(self.seed, found.id, len(found.runs), 0x70),
                creation_date=int(self.now()),
                status="pending",
                launched_at=self.now(),
                duration=self.launch_seconds,
                alt_targets=list(alt) if alt else None,
            )
            found.runs.append(run)
        return json_response(start_response, 200, {"scan_uuid": run.uuid})

    def _stop(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            run = found.runs[-1] if found.runs else None
            if run is None or self._status(found, run) not in ACTIVE_STATUSES:
                return json_response(
                    start_response,
                    409,
                    {"statusCode": 409, "error": "Conflict", "message": "Scan is not active"},
                )
            run.launched_at, run.status = None, "canceled"
        return json_response(start_response, 200, {})

    def _export(
        self, start_response: Callable, *, scan: str, query: dict, body: Any, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            fmt = body.get("format") if isinstance(body, dict) else None
            if fmt != "nessus":
                return json_response(
                    start_response, 400, {"error": f"Invalid 'format' field: {fmt!r} (only nessus here)"}
                )
            ref = query.get("history_id") or query.get("history_uuid")
            run = (self._run(found, ref) if ref else found.runs[-1]) if found.runs else None
            if run is None:
                return json_response(start_response, 404, _SCAN_NOT_FOUND)
            loading = sum(1 for e in self._exports.values() if not e.done)
            if loading >= MAX_ACTIVE_EXPORTS:
                return rate_limited(start_response, "30")
            file_id = f"SSE-{run.uuid}-nessus"
            self._exports[file_id] = ScanExport(found.id, run, self.now())
        return json_response(
            start_response, 200, {"file": file_id, "temp_token": uuid_of(self.seed, found.id, 0xE7)}
        )

    def _export_status(
        self, start_response: Callable, *, scan: str, file: str, ctx: dict, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            export = self._exports.get(file)
            if found is None or export is None or export.scan_id != found.id:
                return json_response(start_response, 404, FILE_NOT_FOUND)
            if self._fault("export_error", ctx):
                export.done = True
                return json_response(start_response, 200, {"status": "error"})
            export.polls += 1
            waiting = (
                export.polls <= self.export_loading_polls or self.now() < export.created + self.export_seconds
            )
            if waiting or self._fault("export_stuck", ctx):
                return json_response(start_response, 200, {"status": "loading"})
            export.done = True
        return json_response(start_response, 200, {"status": "ready"})

    def _download(
        self, start_response: Callable, *, scan: str, file: str, ctx: dict, environ: dict, **_: Any
    ) -> Iterable[bytes]:
        with self._lock:
            found = self._lookup(scan)
            export = self._exports.get(file)
            if found is None or export is None or export.scan_id != found.id:
                return json_response(start_response, 404, FILE_NOT_FOUND)
            export.done = True
            truncated = self._fault("truncated_download", ctx)
            malformed = self._fault("malformed_xml", ctx)
            bomb = self._fault("gzip_bomb", ctx)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", found.name).strip("_") or "scan"
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", f'attachment; filename="{safe}_{export.run.history_id}.nessus"'),
            ("Cache-Control", "no-store"),
        ]
        mode = truncated.params.get("mode", "chunked") if truncated else None
        body = self._document(found, export.run, cut=mode, malformed=bool(malformed))
        if bomb:
            headers += [("Content-Encoding", "gzip"), ("X-Sim-Chunked", "1")]
            start_response("200 OK", headers)
            return gzipped(gzip_bomb(int(bomb.params.get("size", 1 << 30))), level=9)
        if mode == "length":
            headers.append(("Content-Length", str(10**9)))  # promises far more than will come
        elif mode != "close":
            headers.append(("X-Sim-Chunked", "1"))  # the server frames it as Transfer-Encoding: chunked
        if self.gzip_downloads and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "") and mode is None:
            headers.append(("Content-Encoding", "gzip"))
            body = gzipped(body)
        start_response("200 OK", headers)
        return body

    def _editor(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
        if found is None:
            return json_response(start_response, 404, _SCAN_NOT_FOUND)
        inputs = [
            {"type": "entry", "name": "Name", "id": "name", "default": found.name, "required": True},
            {"type": "textarea", "name": "Description", "id": "description", "default": ""},
            {"type": "select", "name": "Folder", "id": "folder_id", "default": found.folder_id},
        ]
        if found.type == "agent":
            inputs.append(
                {
                    "type": "multiselect",
                    "name": "Agent Groups",
                    "id": "agent_group_id",
                    "default": found.agent_groups,
                }
            )
        else:
            inputs.append(
                {"type": "textarea", "name": "Targets", "id": "text_targets", "default": found.targets or ""}
            )
        body = {
            "uuid": _TEMPLATE,
            "name": "basic" if found.type != "agent" else "agent_basic",
            "title": found.policy,
            "owner": found.owner,
            "settings": {"basic": {"title": "Basic", "inputs": inputs}, "discovery": {"title": "Discovery"}},
        }
        return json_response(start_response, 200, body)

    def _agent_groups(self, start_response: Callable, **_: Any) -> list[bytes]:
        groups = [
            {**g, "owner": "secops@example.com", "shared": 1, "user_permissions": 128}
            for g in self.agent_groups
        ]
        return json_response(start_response, 200, {"groups": groups})

    def _scanners(self, start_response: Callable, **_: Any) -> list[bytes]:
        scanner = {
            "id": 1,
            "uuid": "00000000-0000-0000-0000-00000000000000000000000000001",
            "name": "US Cloud Scanner",
            "type": "managed",
            "status": "on",
            "pool": True,
            "owner": "system",
            "engine_version": "10.7.1",
            "platform": "LINUX",
            "user_permissions": 64,
        }
        return json_response(start_response, 200, {"scanners": [scanner]})

    def _filters(self, start_response: Callable, **_: Any) -> list[bytes]:
        return json_response(start_response, 200, {"filters": []})
