"""The simulator's state as plain dataclasses: scans and their runs, hosts, scan exports, recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATUSES = frozenset(
    {
        "initializing",
        "pending",
        "running",
        "pausing",
        "paused",
        "resuming",
        "stopping",
        "processing",
        "publishing",
    }
)
MAX_ACTIVE_SCANS = 25
MAX_ACTIVE_EXPORTS = 10
ARCHIVE_AFTER = 35 * 86400


@dataclass(slots=True)
class Run:
    """One run (history entry) of a scan; `down` and `fixed` are test-made changes to what it found."""

    history_id: int
    uuid: str
    creation_date: int
    status: str
    launched_at: float | None = None
    duration: float = 0.0
    alt_targets: list[str] | None = None
    down: frozenset[int] = frozenset()  # host indices that did not answer this run
    fixed: frozenset[tuple[int, int]] = frozenset()  # (host index, plugin id) no longer found by this run


@dataclass
class Scan:
    """A scan definition and its runs (oldest first; the API shows newest first)."""

    id: int
    kind: str
    name: str
    schedule_uuid: str
    folder_id: int
    type: str
    policy: str
    policy_id: int
    scanner_name: str
    targets: str | None
    tag_targets: list[str] | None
    hosts: int
    findings_per_host: int
    creation_date: int
    owner: str = "secops@example.com"
    agent_groups: list[str] = field(default_factory=list)
    enabled: bool = False
    control: bool = True
    rrules: str | None = None
    starttime: str | None = None
    timezone: str | None = None
    launch_outcome: str = "completed"
    unlicensed: float = 0.0  # share of this scan's hosts that hold no license (left out of vuln exports)
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Host:
    """A scanned host; the same identity appears in the `.nessus` export and as an asset in bulk exports."""

    index: int
    ip: str
    fqdn: str | None
    netbios: str | None
    os: str
    mac: str
    uuid: str


@dataclass
class ScanExport:
    """A `.nessus` export of one run (`POST /scans/{id}/export`)."""

    scan_id: int
    run: Run
    created: float
    polls: int = 0
    done: bool = False


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the simulator received (never the keys): `auth` is valid/forbidden/invalid/missing.

    `user` names the key pair that authenticated: a role of ROLE_KEYS (basic, …, administrator), "main" for
    the constructor's pair, or None.
    """

    method: str
    path: str
    query: dict[str, str]
    has_api_keys_header: bool
    body: Any
    auth: str
    user: str | None = None


class CutStream(Exception):
    """Raised inside a download generator to drop the connection mid-body."""
