"""Faults injected on demand: each one is limited to an account (e-mail), a path or a method, and counted."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

FAULTS = frozenset(
    {
        "unauthorized",  # 401 on matching calls (the token was revoked mid-run)
        "forbidden",  # 403 on matching calls (a permission removed, e.g. path="/transitions")
        "not_found",  # 404 on matching calls
        "rate_limit",  # 429 with Retry-After `retry_after` (default "1"; None sends no header)
        "flap",  # answer `status` (default 503) to the next `times` (default 1) matching calls
        "slow",  # sleep `seconds` (default 1) before answering
        "lost_response",  # do the work, then mode="drop" (close the connection, no answer; default)
        #   or mode="stall" (wait `seconds`, default 2, before answering): the client never hears back
        "stale_search",  # searches miss issues created after the fault was set (eventual consistency)
        "garbage",  # 200 with an HTML page (a proxy's login page) instead of JSON
        "redirect",  # 302 to `location` (default https://id.atlassian.example/login)
    }
)


@dataclass
class Fault:
    name: str
    key: str | None
    path: str | None
    method: str | None
    times: int | None
    every: int
    after: int
    params: dict[str, Any]
    seen: int = 0

    def matches(self, ctx: dict[str, Any]) -> bool:
        """Whether a request (its account, path and method) is in this fault's scope."""
        return (
            (self.key is None or self.key == ctx["email"])
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
        *,
        key: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = None,
        every: int = 1,
        after: int = 0,
        **params: Any,
    ) -> None:
        """Inject a fault (see FAULTS), limited to an account's e-mail (`key`), a path substring or a method.

        It fires on every `every`-th matching call after the first `after`, at most `times` times.
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if name == "flap" and times is None:
            times = 1
        with self._lock:
            if name == "stale_search":
                params.setdefault("since", self._issue_counter())
            self._faults.append(Fault(name, key, path, method, times, max(every, 1), after, params))

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

    def _issue_counter(self) -> int:
        raise NotImplementedError
