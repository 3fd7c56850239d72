"""Faults injected on demand: each one is limited to a scan, an access key, a path or a method, and counted."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

FAULTS = frozenset(
    {
        "rate_limit",  # 429 + retry-after (HTML body) on every Nth matching call; retry_after="30"
        "flap",  # answer `status` (default 503) to the next `times` matching calls
        "forbidden",  # 403 on matching calls (e.g. path="/export" for "no permission to export")
        "revoked_key",  # 401 "Invalid credentials." on matching calls (keys regenerated in Tenable mid-export)
        "slow",  # sleep `seconds` before answering
        "export_stuck",  # scan export status stays "loading"
        "export_error",  # scan export status is "error"
        "truncated_download",  # mode="length" (short body), "chunked" (cut chunks) or "close" (no length)
        "malformed_xml",  # the download is broken XML
        "no_scans",  # the account has no scans: "scans": null
        "ignore_folder_filter",  # GET /scans ignores folder_id: mode="all" (every folder lists every scan)
        #   or mode="trash" (the trash lists every scan, other folders none)
        "gzip_bomb",  # the download is gzip that decodes to `size` bytes (default 1 GiB) of a valid-looking file
        # Bulk exports (/vulns/export, /assets/export, /assets/v2/export):
        "export_queued",  # status polls answer `status` (default "QUEUED") and the job makes no progress
        "export_error_partial",  # a job created by a matching POST ends in ERROR after `available` chunks
        #   (default: half of them); the others are listed in chunks_cancelled
        "export_chunks_failed",  # a job created by a matching POST finishes FINISHED with `failed` (default 1)
        #   chunks in chunks_failed and a reason
        "chunk_not_found",  # a chunk download answers 404 (as after the 24 h expiry)
        "chunk_invalid_json",  # a chunk download is mode="invalid" (not JSON) or "truncated" (cut mid-record)
    }
)


@dataclass
class Fault:
    name: str
    scan_id: int | None
    key: str | None
    path: str | None
    method: str | None
    times: int | None
    every: int
    after: int
    params: dict[str, Any]
    seen: int = 0

    def matches(self, ctx: dict[str, Any]) -> bool:
        """Whether a request (its scan, access key, path and method) is in this fault's scope."""
        return (
            (self.scan_id is None or self.scan_id == ctx["scan_id"])
            and (self.key is None or self.key == ctx["access_key"])
            and (self.path is None or self.path in ctx["path"])
            and (self.method is None or self.method.upper() == ctx["method"])
        )


class FaultInjection:
    """The fault half of the simulator: `set_fault`, `clear_faults`, and the checks handlers make."""

    _lock: threading.RLock
    _faults: list[Fault]

    def set_fault(
        self,
        name: str,
        scan_id: int | None = None,
        *,
        key: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = None,
        every: int = 1,
        after: int = 0,
        **params: Any,
    ) -> None:
        """Inject a fault (see FAULTS), limited to a scan, an access key, a path substring or a method.

        It fires on every `every`-th matching call after the first `after`, at most `times` times.
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if name == "flap" and times is None:
            times = 1
        with self._lock:
            self._faults.append(Fault(name, scan_id, key, path, method, times, max(every, 1), after, params))

    def clear_faults(self, name: str | None = None) -> None:
        """Remove every fault, or those with this name."""
        with self._lock:
            self._faults = [f for f in self._faults if name is not None and f.name != name]

    def _fault(self, name: str, ctx: dict[str, Any]) -> Fault | None:
        """The first fault of this name that fires for this request (counting it), else None."""
        with self._lock:
            for fault in self._faults:
                if fault.name != name or not fault.matches(ctx):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after or (fault.seen - fault.after) % fault.every:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    def _fault_active(self, name: str) -> bool:
        with self._lock:
            return any(f.name == name and (f.times is None or f.times > 0) for f in self._faults)
