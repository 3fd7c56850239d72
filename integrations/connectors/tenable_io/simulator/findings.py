"""The vulnerability universe behind the bulk exports, derived from the simulated scans' runs.

An asset is a simulated host (same uuid, ip, fqdn and netbios name as in the `.nessus` export). A finding is
(asset, plugin), and its state follows the runs that covered the host, as of a moment t: found → OPEN;
absent from a later complete run that covered the host → FIXED (`last_fixed`); found again → REOPENED
(`resurfaced_date`). Partial runs (aborted, canceled) only see findings, never fix them; a host that was
down changes nothing; running scans count once they finish. Deleted or terminated assets leave the
vulnerability exports from that moment (the asset export is where an integration learns of them).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .access import User
from .catalogue import SEVERITY_WORDS, Plugin, mix
from .data import ScanData
from .model import Run, Scan

OPEN, REOPENED, FIXED = 0, 1, 2
STATE_NAMES = ("OPEN", "REOPENED", "FIXED")
DEFAULT_WINDOW = 30 * 86400  # no time filter → only what was found or fixed in the last 30 days
NULL_NETWORK = "00000000-0000-0000-0000-000000000000"
_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}
_TIME_FILTERS = ("since", "first_found", "last_found", "last_fixed", "indexed_at")


class BadRequest(Exception):
    """A request body Tenable would refuse with 400; the message says what to change."""


@dataclass(slots=True)
class ScanView:
    """A scan as of a moment: its counted runs as (index, run, complete, hosts covered)."""

    scan: Scan
    runs: list[tuple[int, Run, bool, frozenset[int]]]
    hosts: list[int]


@dataclass
class VulnQuery:
    """A parsed `POST /vulns/export` body: what to include, and the key that makes two requests duplicates."""

    states: frozenset[int]
    severities: frozenset[int] | None = None
    times: dict[str, int] = field(default_factory=dict)
    plugin_ids: frozenset[int] | None = None
    families: frozenset[str] | None = None
    tags: dict[str, frozenset[str]] = field(default_factory=dict)
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    include_unlicensed: bool = False
    include_output: bool = True
    num_assets: int = 50
    filters: dict[str, Any] = field(default_factory=dict)
    dedup: str = ""


@lru_cache(maxsize=1 << 16)
def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def whole_number(value: Any, name: str) -> int:
    """A filter's whole number (epoch seconds, plugin id), or a 400 saying what was wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).isdigit():
        raise BadRequest(
            f"'{name}' must be a whole number (times are seconds since the epoch), not {value!r}."
        )
    return int(value)


def _words(value: Any, name: str, allowed: Iterable[str], upper: bool) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = [str(v).upper() if upper else str(v).lower() for v in items]
    bad = [v for v in out if v not in allowed]
    if bad:
        raise BadRequest(f"Invalid '{name}' value {bad[0]!r}; allowed: {', '.join(allowed)}.")
    return out


def tag_filters(filters: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The `tag.<category>: [values]` filters as {category (lower case): values (lower case)}."""
    out = {}
    for name, values in filters.items():
        if name.startswith("tag."):
            items = values if isinstance(values, list) else [values]
            out[name[4:].lower()] = frozenset(str(v).lower() for v in items)
    return out


def parse_vuln_request(body: Any) -> VulnQuery:
    """Validate and normalise a vulnerability export request as Tenable does (400 on what it refuses)."""
    body = body if body is not None else {}
    if not isinstance(body, dict) or not isinstance(body.get("filters", {}), dict):
        raise BadRequest("The request body must be a JSON object with an optional 'filters' object.")
    filters = dict(body.get("filters") or {})
    try:
        num_assets = int(body.get("num_assets", 50))
    except (TypeError, ValueError):
        raise BadRequest("'num_assets' must be a number between 50 and 5000.")
    given_times = {n: whole_number(filters[n], n) for n in _TIME_FILTERS if filters.get(n) is not None}
    if "since" in given_times and {"first_found", "last_found", "last_fixed"} & set(given_times):
        raise BadRequest("'since' cannot be combined with 'first_found', 'last_found' or 'last_fixed'.")
    if {"first_found", "last_found", "last_fixed"} & set(given_times) and not filters.get("state"):
        raise BadRequest("'first_found', 'last_found' and 'last_fixed' require the 'state' filter.")
    states = _words(filters.get("state") or ["OPEN", "REOPENED"], "state", STATE_NAMES, upper=True)
    query = VulnQuery(states=frozenset(STATE_NAMES.index(s) for s in states), times=given_times)
    if filters.get("severity"):
        query.severities = frozenset(
            SEVERITY_WORDS.index(w) for w in _words(filters["severity"], "severity", SEVERITY_WORDS, False)
        )
    if filters.get("plugin_id"):
        ids = filters["plugin_id"] if isinstance(filters["plugin_id"], list) else [filters["plugin_id"]]
        query.plugin_ids = frozenset(whole_number(v, "plugin_id") for v in ids)
    if filters.get("plugin_family"):
        query.families = frozenset(str(f).lower() for f in filters["plugin_family"])
    if filters.get("cidr_range"):
        try:
            query.cidr = ipaddress.ip_network(str(filters["cidr_range"]), strict=False)
        except ValueError:
            raise BadRequest(f"'cidr_range' {filters['cidr_range']!r} is not a network such as 10.0.0.0/8.")
    query.tags = tag_filters(filters)
    query.include_unlicensed = bool(body.get("include_unlicensed", False))
    query.include_output = body.get("include_plugin_output") is not False
    query.num_assets = min(5000, max(50, num_assets))
    query.filters = {**filters, "state": states}
    query.dedup = json.dumps(
        [query.num_assets, query.include_unlicensed, query.include_output, query.filters], sort_keys=True
    )
    return query


class VulnData(ScanData):
    """Assets and findings as of a moment, the ground truth helpers, and fast finding JSON."""

    finding_schema: str
    _asset_events: dict[str, dict[str, float]]
    _fragments: dict[int, Any]
    _scan_fragments: dict[tuple[int, int], str]

    def delete_asset(self, asset_uuid: str, at: float | None = None) -> None:
        """Delete an asset (now, or at `at`): it leaves vulnerability exports; asset exports show deleted_at."""
        with self._lock:
            self._asset_events.setdefault(asset_uuid, {})["deleted_at"] = self.now() if at is None else at

    def terminate_asset(self, asset_uuid: str, at: float | None = None) -> None:
        """Terminate an asset (a cloud instance gone): like deletion, but shown as terminated_at."""
        with self._lock:
            self._asset_events.setdefault(asset_uuid, {})["terminated_at"] = self.now() if at is None else at

    # -- the universe as of t -----------------------------------------------------------------------

    def _scan_view(self, scan: Scan, t: float) -> ScanView | None:
        runs = []
        for k, run in enumerate(scan.runs):
            if run.creation_date > t:
                continue
            status = self._status(scan, run, t)
            if status in ("completed", "imported", "aborted", "canceled", "stopped"):
                complete = status in ("completed", "imported")
                runs.append((k, run, complete, frozenset(self._hosts_in(scan, run, t))))
        if not runs:
            return None
        hosts = sorted(set().union(*(covered for *_, covered in runs)))
        return ScanView(scan, runs, hosts)

    def _views(self, t: float) -> dict[int, ScanView]:
        with self._lock:
            scans = list(self._scans.values())
        views = {}
        for scan in scans:
            view = self._scan_view(scan, t)
            if view is not None:
                views[scan.id] = view
        return views

    def _gone(self, uuid: str, t: float) -> dict[str, float]:
        """The deletion/termination times of an asset that happened by t."""
        events = self._asset_events.get(uuid)
        return {k: v for k, v in events.items() if v <= t} if events else {}

    def _host_history(self, view: ScanView, i: int) -> dict[int, list]:
        """Per catalogue index: [first_found, last_found, last_fixed, resurfaced, state, run index]."""
        scan = view.scan
        history: dict[int, list] = {}
        for k, run, complete, covered in view.runs:
            if i not in covered:
                continue
            ts = run.creation_date + 60 + 3 * i
            found = self._found(scan, k, i)
            for index in found:
                h = history.get(index)
                if h is None:
                    history[index] = [ts, ts, None, None, OPEN, k]
                    continue
                if h[4] == FIXED:
                    h[3], h[4] = ts, REOPENED
                h[1], h[5] = ts, k
            if complete and len(history) > len(found):
                present = set(found)
                for index, h in history.items():
                    if index not in present and h[4] != FIXED:
                        h[2], h[4], h[5] = ts, FIXED, k
        return history

    def _asset_in_scope(
        self, user: User, view: ScanView, i: int, t: float, query: Any, *, drop_gone: bool = True
    ) -> bool:
        """Visible to the user, licensed or included, tags and CIDR match, not gone by t (if `drop_gone`)."""
        scan = view.scan
        if not self._licensed(scan, i) and not query.include_unlicensed:
            return False
        tags = self._asset_tags(scan, i) if user.view_tags is not None or query.tags else ()
        if user.view_tags is not None and not user.may_view(tags):
            return False
        if query.tags and not self._tags_match(tags, query.tags):
            return False
        if query.cidr is not None and ipaddress.ip_address(self._host(scan, i).ip) not in query.cidr:
            return False
        return not (drop_gone and self._gone(self._host(scan, i).uuid, t))

    def _tags_match(self, tag_uuids: Iterable[str], wanted: dict[str, frozenset[str]]) -> bool:
        have: dict[str, set[str]] = {}
        for u in tag_uuids:
            tag = self.tag_values[u]
            have.setdefault(tag["category_name"].lower(), set()).add(tag["value"].lower())
        return all(have.get(category, set()) & values for category, values in wanted.items())

    # -- which findings match -----------------------------------------------------------------------

    def _window(self, query: VulnQuery, t: float) -> dict[str, int]:
        return query.times or {"since": int(t - DEFAULT_WINDOW)}

    def _severity(self, asset_hash: int, p: Plugin) -> tuple[int, int, str]:
        """(finding hash, severity after recasting, modification type) of an asset's plugin finding."""
        fh = mix(asset_hash, p.id, p.port, _PROTOCOLS.get(p.protocol, 0))
        if p.severity and fh % 97 == 0:
            return fh, p.severity - 1, "RECASTED"
        if p.severity and fh % 97 == 1:
            return fh, p.severity, "ACCEPTED"
        return fh, p.severity, "NONE"

    def _finding_matches(self, h: list, p: Plugin, severity: int, query: VulnQuery, window: dict) -> bool:
        if h[4] not in query.states:
            return False
        if query.severities is not None and severity not in query.severities:
            return False
        if query.plugin_ids is not None and p.id not in query.plugin_ids:
            return False
        if query.families is not None and p.family.lower() not in query.families:
            return False
        since = window.get("since")
        if since is not None and (h[2] if h[4] == FIXED else h[1]) < since:
            return False
        first, last, fixed = window.get("first_found"), window.get("last_found"), window.get("last_fixed")
        if (first is not None and h[0] < first) or (last is not None and h[1] < last):
            return False
        if fixed is not None and (h[2] is None or h[2] < fixed):
            return False
        indexed = window.get("indexed_at")
        return indexed is None or max(h[1], h[2] or 0) + 300 >= indexed

    def _asset_hash(self, scan: Scan, i: int) -> int:
        return mix(self.seed, scan.id, i, 0xF1D)

    def _last_covered(self, view: ScanView, i: int) -> int:
        """When the latest counted run reached host i (no finding of it is newer)."""
        return next(
            (run.creation_date + 60 + 3 * i for _, run, _, hosts in reversed(view.runs) if i in hosts), 0
        )

    def _matching(self, view: ScanView, i: int, query: VulnQuery, window: dict) -> Iterable[tuple]:
        """(index, history, plugin, finding hash, severity, modification) of the host's matching findings."""
        cutoff = max(window.get(n) or 0 for n in ("since", "last_found", "last_fixed"))
        if cutoff and self._last_covered(view, i) < cutoff:
            return  # nothing on this host was found or fixed that recently: skip its history
        asset_hash = self._asset_hash(view.scan, i)
        for index, h in self._host_history(view, i).items():
            p = self._plugin_at(index)
            fh, severity, modification = self._severity(asset_hash, p)
            if self._finding_matches(h, p, severity, query, window):
                yield index, h, p, fh, severity, modification
