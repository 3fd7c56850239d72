"""What every source of findings hands the importer: hosts, each with its findings, normalised and capped.

A reader of a file format or a connector streaming a run yields `HostRecord`s one at a time; the importer
never sees bytes or a vendor's format. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# Field caps, so a hostile or huge source can never overflow a database column (RELIABILITY.md P6).
# Text beyond a cap is cut and ends with TRUNCATED_MARKER; names and identifiers are cut silently.
TRUNCATED_MARKER = "\n[truncated]"
PLUGIN_OUTPUT_MAX = 1_000_000  # plugin_output
TEXT_MAX = 100_000  # synopsis, description, solution
PLUGIN_NAME_MAX = 500  # plugin_name, os, mac (may list several, one per line)
NAME_MAX = 255  # host name/ip/fqdn/netbios/uuid, plugin_family, service, protocol, vectors, cve/cwe
URL_MAX = 2_000  # each see_also entry
LIST_MAX = 1_000  # entries in cves, cwes, see_also


class FormatError(ValueError):
    """A source that cannot be read as findings; `message` is for the user, `line`/`column` say where."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(slots=True)
class FindingRecord:
    """One finding: a plugin's result on a port of a host, normalised and capped."""

    plugin_id: int
    plugin_name: str
    plugin_family: str
    severity: int
    port: int
    protocol: str
    service: str
    synopsis: str | None
    description: str | None
    solution: str | None
    plugin_output: str | None
    risk_factor: str
    cvss_base_score: float | None
    cvss_vector: str | None
    cvss3_base_score: float | None
    cvss3_vector: str | None
    cves: list[str] = field(default_factory=list)
    cwes: list[str] = field(default_factory=list)
    see_also: list[str] = field(default_factory=list)
    vpr_score: float | None = None
    epss_score: float | None = None
    publication_date: date | None = None
    patch_date: date | None = None
    exploit_available: bool | None = None


@dataclass(slots=True)
class HostRecord:
    """One scanned host with its properties and all of its findings."""

    name: str
    ip: str | None
    fqdn: str | None
    netbios: str | None
    os: str | None
    mac: str | None
    host_uuid: str | None
    start: datetime | None
    end: datetime | None
    items: list[FindingRecord] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Bulk exports (Tenable's vulnerability and asset export chunks): the records one chunk yields
# ---------------------------------------------------------------------------------------------------

FINDING_STATES = ("OPEN", "REOPENED", "FIXED")
SEVERITY_MODIFICATIONS = ("NONE", "RECASTED", "ACCEPTED")


@dataclass(slots=True, kw_only=True)
class ExportFinding(FindingRecord):
    """One finding of a vulnerability export: the `FindingRecord` fields plus its host and Tenable's own view.

    `severity` (inherited) is Tenable's current severity 0–4 (after a recast); `severity_default` the plugin's;
    `severity_modification` is NONE, RECASTED or ACCEPTED. `state` is OPEN, REOPENED or FIXED. Findings of one
    asset in a chunk share one `host` object (its `items` stay empty). Dates are aware (UTC) datetimes.
    The 2018 schema has no `finding_id`, `indexed` or `source`: `key` is the identity either way.
    """

    host: HostRecord
    finding_id: str | None
    state: str
    severity_default: int
    severity_modification: str
    first_found: datetime | None
    last_found: datetime | None
    last_fixed: datetime | None
    resurfaced: datetime | None
    indexed: datetime | None = None
    source: str | None = None
    scan_uuid: str | None = None

    @property
    def key(self) -> str:
        """Tenable's `finding_id`, else asset uuid + plugin id + port + protocol (how Tenable defines a finding)."""
        if self.finding_id:
            return self.finding_id
        asset = self.host.host_uuid or self.host.ip or self.host.fqdn or self.host.name
        return f"{asset}:{self.plugin_id}:{self.port}:{self.protocol}"


@dataclass(slots=True)
class ExportAsset:
    """One asset of an asset export: its uuid, names and lifecycle (deleted or terminated assets are gone)."""

    uuid: str
    hostnames: list[str]
    fqdns: list[str]
    ipv4s: list[str]
    ipv6s: list[str]
    netbios_names: list[str]
    mac_addresses: list[str]
    operating_systems: list[str]
    created_at: datetime | None
    updated_at: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None
    deleted_at: datetime | None
    terminated_at: datetime | None

    @property
    def gone(self) -> datetime | None:
        """When the asset was deleted or terminated (the earlier), or None while it exists."""
        times = [t for t in (self.deleted_at, self.terminated_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record of a readable chunk that could not be used (schema drift): where it was and why."""

    index: int
    reason: str
