"""The connector contracts: what every connector declares, what it does, and the one error it raises.

Two kinds share one declaration (`ConnectorSpec`): scanners (`Connector`: findings come in) and ticketing
destinations (`TicketingConnector`: tickets go out). No Django here. The UI renders a connector's declaration
(forms and masking come from `credential_fields`); the product calls only the methods of the contract and
catches only `ConnectorError`. Records of findings are `integrations.formats.records`, the same ones a file
upload produces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..formats.records import (
    FINDING_STATES,
    ExportAsset,
    ExportFinding,
    HostRecord,
    RejectedRecord,
)

# Categories in the order the Integrations tabs show them; the last one holds ticketing destinations.
CATEGORIES: list[tuple[str, str]] = [
    ("infra", "Infra"),
    ("sast", "SAST"),
    ("dast", "DAST"),
    ("sca", "SCA"),
    ("ticketing", "Ticketing"),
]
# The two kinds of connector: where findings come from, and where tickets go.
SCANNER, TICKETING = "scanner", "ticketing"


@dataclass(frozen=True)
class CredentialField:
    """One credential input: `name` is the model attribute (`access_key`, `secret_key`: encrypted; `login`: a
    visible account name such as an e-mail), `secret` makes it write-only and encrypted."""

    name: str
    label: str
    secret: bool
    help_text: str = ""


class ConnectorError(Exception):
    """A failed call to a scanner service, whichever connector made it.

    `message` is the sentence the user sees; `kind` names the failure (auth, forbidden, not_found, conflict,
    rate_limited, server, dns, tls, timeout, connection, truncated, bad_response, …; for bulk exports also
    expired — the job or chunk is gone, request a new export — and unreadable — a chunk that is not JSON;
    unsupported — this connector has no such call); `permanent` says retrying cannot help; `retry_after` is
    the service's own wait in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, status={self.status!r}, permanent={self.permanent!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )

    def __reduce__(self):
        # Keeps the error picklable (Celery ships exceptions between processes), subclass and all.
        return _rebuild, (type(self), self.message, self.kind, self.permanent, self.status, self.retry_after)


def _rebuild(cls, message, kind, permanent, status, retry_after) -> ConnectorError:
    return cls(message, kind=kind, permanent=permanent, status=status, retry_after=retry_after)


# ---------------------------------------------------------------------------------------------------
# What the calls return
# ---------------------------------------------------------------------------------------------------


# Capability keys of `ConnectionInfo.capabilities`, in the order Test Connection lists them.
CAN_LIST_SCANS = "list_scans"
CAN_READ_SCAN_RESULTS = "read_scan_results"
CAN_START_SCANS = "start_scans"
CAN_EXPORT = "bulk_exports"
CAN_SEE_AGENT_GROUPS = "agent_groups"
# Capability statuses: proven by a read call, proven absent, expected from the role but not proven, not known.
OK, MISSING, INFERRED, UNKNOWN = "ok", "missing", "inferred", "unknown"


@dataclass(frozen=True, slots=True)
class Capability:
    """One line of Test Connection's checklist: what the key can do, and how we know.

    `status` is ok (a read call proved it), missing (a call was refused, or the role cannot), inferred
    (the role allows it; proving it would mean creating something) or unknown (it could not be checked).
    `sentence` says it in one sentence, naming the missing role or permission; `optional` capabilities
    (agent groups, starting scans) only limit a feature, they never make the connection unusable.
    """

    key: str
    label: str
    status: str
    sentence: str
    optional: bool = False

    @property
    def usable(self) -> bool:
        """Whether the product should offer the feature (only a proven absence hides it)."""
        return self.status != MISSING


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which assets the key's user may view: all of them, the assets of some tags, or unknown (with why)."""

    kind: str  # "all", "tags" or "unknown"
    tags: tuple[str, ...] = ()  # "Category: Value" labels, when kind is "tags"
    reason: str = ""  # why it is unknown

    ALL: ClassVar[str] = "all"
    TAGS: ClassVar[str] = "tags"
    UNKNOWN: ClassVar[str] = "unknown"

    def describe(self) -> str:
        """The panel's words: "All Assets", the tags, or "could not be read"."""
        if self.kind == self.ALL:
            return "All Assets"
        if self.kind == self.TAGS:
            return ", ".join(self.tags) if self.tags else "No assets (no permission grants Can View)"
        return f"could not be read{f' ({self.reason})' if self.reason else ''}"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Who the keys belong to, how many scans they see, and (where the connector knows) their role and rights.

    `role` is the service's role number and `role_name` its name (e.g. 16, "Basic"); `visibility` which assets
    the key may view; `capabilities` the checklist, in display order. A connector that knows none of it
    leaves the defaults.
    """

    username: str | None
    container: str | None
    scan_count: int
    role: int | None = None
    role_name: str | None = None
    visibility: Visibility | None = None
    capabilities: tuple[Capability, ...] = ()

    def capability(self, key: str) -> Capability | None:
        """The checklist line with this key (CAN_LIST_SCANS, …), or None when the connector does not report it."""
        return next((c for c in self.capabilities if c.key == key), None)


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder of sources (`type` is main, trash or custom)."""

    id: int
    name: str
    type: str | None


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """One bindable scan as listed; `uuid` is the latest run's uuid (None when never run)."""

    id: int
    schedule_uuid: str | None
    uuid: str | None
    name: str
    status: str
    type: str | None
    folder_id: int | None
    owner: str | None
    enabled: bool
    control: bool
    last_modification_date: int | None
    rrules: str | None
    starttime: str | None
    timezone: str | None
    policy_id: int | None
    user_permissions: int | None = None  # the key's permission on this scan (16 Can View, 32 Can Execute, …)


@dataclass(frozen=True, slots=True)
class ExportScope:
    """A bindable source of the second kind, "Vulnerability data": everything the key may view, or one tag.

    `id` is stable and is what a profile stores: "all", or "tag:<tag value uuid>". `tag` is (category, value)
    for the export's tag filter; `asset_count` is None when the service does not say.
    """

    id: str
    label: str
    tag: tuple[str, str] | None = None
    asset_count: int | None = None

    ALL_ID: ClassVar[str] = "all"
    ALL_LABEL: ClassVar[str] = "All assets this key can view"


@dataclass(frozen=True, slots=True)
class SourceList:
    """What a connection can bind to: scans in folders, and export scopes ("Vulnerability data").

    Connectors without bulk exports leave `scopes` empty.
    """

    folders: list[Folder]
    scans: list[ScanSummary]
    scopes: list[ExportScope] = field(default_factory=list)

    def visible(self) -> list[ScanSummary]:
        """Scans outside the trash folder: what Bind to lists and Test Connection counts (one rule for both).

        A scan in the trash is a deleted scan to our users; a scan of unknown folder is shown.
        """
        trash = {folder.id for folder in self.folders if folder.type == "trash"}
        return [scan for scan in self.scans if scan.folder_id not in trash]


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """An agent group targeted by an agent scan."""

    name: str
    agents_count: int | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A scan's schedule as the service stores it (an iCalendar RRULE plus start time and zone)."""

    enabled: bool
    rrules: str | None
    starttime: str | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One run of a scan; archived runs still export."""

    history_id: int
    uuid: str
    status: str
    creation_date: int | None
    last_modification_date: int | None
    is_archived: bool


@dataclass(frozen=True, slots=True)
class ScanDetails:
    """What the Bind to drawer shows about a source, plus its run history (newest first)."""

    id: int
    name: str
    status: str
    policy: str | None
    scanner: str | None
    targets: list[str]
    tags: list[str]
    agent_groups: list[AgentGroup]
    schedule: Schedule | None
    host_count: int | None
    scan_type: str | None
    history: list[HistoryEntry]
    schedule_uuid: str | None
    last_run_uuid: str | None
    folder_id: int | None = None
    # False when the scan targets agent groups this key may not read (they need Scan Manager): the drawer
    # says "agent groups not visible with this key" instead of showing none.
    agent_groups_visible: bool = True


# ---------------------------------------------------------------------------------------------------
# Bulk exports (the second way in: everything the key may view, incrementally)
# ---------------------------------------------------------------------------------------------------

SEVERITY_WORDS = ("info", "low", "medium", "high", "critical")
EXPORT_ACTIVE = ("QUEUED", "PROCESSING")  # the other statuses are final: FINISHED, CANCELLED, ERROR


@dataclass(frozen=True, slots=True)
class VulnExportRequest:
    """What a vulnerability export asks for.

    `since` (epoch seconds; 0 is the start of time) is required: without a time filter Tenable returns only
    the last 30 days. It brings OPEN/REOPENED findings last found since then and FIXED ones fixed since then.
    `states` defaults to all three (fixed findings must come back to close ours); `severities` are words
    (info … critical; empty = all); `tag` is (category, value); `num_assets` per chunk is clamped to 50–5000.
    """

    since: int
    states: tuple[str, ...] = FINDING_STATES
    severities: tuple[str, ...] = ()
    tag: tuple[str, str] | None = None
    include_unlicensed: bool = False
    num_assets: int = 500

    def __post_init__(self) -> None:
        if isinstance(self.since, bool) or not isinstance(self.since, int) or self.since < 0:
            raise ValueError(f"since must be epoch seconds (0 = the start of time), not {self.since!r}")
        if not self.states or set(self.states) - set(FINDING_STATES):
            raise ValueError(f"states must be some of {FINDING_STATES}, not {self.states!r}")
        if set(self.severities) - set(SEVERITY_WORDS):
            raise ValueError(f"severities must be some of {SEVERITY_WORDS}, not {self.severities!r}")


@dataclass(frozen=True, slots=True)
class AssetExportRequest:
    """What an asset export asks for: assets updated, deleted or terminated since `since` (epoch seconds)."""

    since: int
    chunk_size: int = 1000  # assets per chunk, clamped to 100–10000

    def __post_init__(self) -> None:
        if isinstance(self.since, bool) or not isinstance(self.since, int) or self.since < 0:
            raise ValueError(f"since must be epoch seconds (0 = the start of time), not {self.since!r}")


@dataclass(frozen=True, slots=True)
class ExportJob:
    """An export job the service runs: its uuid, and whether we adopted a job already running (a 409).

    `kind` is "vulns" or "assets"; `version` says which asset export API answered ("v2", or "v1" when v2 was
    refused); the product stores `uuid` on its run so a redelivered task can adopt the job again.
    """

    uuid: str
    kind: str
    adopted: bool = False
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """One status poll of an export job. Chunks finish out of order; download each as soon as it is listed.

    `status` is QUEUED, PROCESSING, FINISHED, CANCELLED or ERROR. A FINISHED job may still have failed chunks:
    only `complete` means every chunk can be read. `created` is when the service created the job.
    """

    uuid: str
    status: str
    chunks_available: tuple[int, ...] = ()
    chunks_failed: tuple[int, ...] = ()
    chunks_cancelled: tuple[int, ...] = ()
    total_chunks: int | None = None
    finished_chunks: int | None = None
    empty_chunks: int | None = None
    created: datetime | None = None
    reason: str | None = None

    @property
    def active(self) -> bool:
        """Still QUEUED or PROCESSING: poll again (with backoff, under a deadline)."""
        return self.status in EXPORT_ACTIVE

    @property
    def complete(self) -> bool:
        """FINISHED with no failed or cancelled chunk: once every listed chunk is merged, the cursor may move."""
        return self.status == "FINISHED" and not self.chunks_failed and not self.chunks_cancelled

    def problem(self) -> str | None:
        """Why this job cannot give a complete result, in one sentence; None while active or when complete."""
        reason = f": {self.reason.rstrip('.')}" if self.reason else ""
        if self.status in ("ERROR", "CANCELLED"):
            ready, cancelled = len(self.chunks_available), len(self.chunks_cancelled)
            return (
                f"The export job ended {self.status}{reason} ({ready} chunk{'s' if ready != 1 else ''} ready, "
                f"{cancelled} cancelled); the export is incomplete."
            )
        if self.status == "FINISHED" and (self.chunks_failed or self.chunks_cancelled):
            failed = ", ".join(str(c) for c in (*self.chunks_failed, *self.chunks_cancelled))
            return f"The export job finished, but chunk(s) {failed} failed{reason}; the export is incomplete."
        if not self.active and self.status != "FINISHED":
            return (
                f"The export job has an unexpected status {self.status!r}{reason}; the export is incomplete."
            )
        return None


@dataclass(slots=True)
class VulnChunk:
    """One downloaded vulnerability chunk, decoded: its findings (`ExportFinding`, each with its host) and
    the records set aside because they did not fit the schema (never dropped silently).

    Treat the records as read-only: findings of one plugin share their lists (cves, cwes, see_also).
    """

    job_uuid: str
    chunk_id: int
    findings: list[ExportFinding]
    rejected: list[RejectedRecord] = field(default_factory=list)
    size: int = 0  # bytes downloaded (decoded)

    def hosts(self) -> list[HostRecord]:
        """The chunk's distinct hosts, in order of first appearance."""
        return list({id(f.host): f.host for f in self.findings}.values())


@dataclass(slots=True)
class AssetChunk:
    """One downloaded asset chunk, decoded: its assets, and the records set aside."""

    job_uuid: str
    chunk_id: int
    assets: list[ExportAsset]
    rejected: list[RejectedRecord] = field(default_factory=list)
    size: int = 0

    def gone(self) -> list[ExportAsset]:
        """The assets deleted or terminated (their findings no longer apply)."""
        return [a for a in self.assets if a.gone is not None]


def unsupported(connector: Connector, what: str) -> ConnectorError:
    """The error a connector without bulk exports raises (permanent: the product should not offer them)."""
    return ConnectorError(
        f"{connector.label} does not support {what}.", kind="unsupported", permanent=True, status=None
    )


# ---------------------------------------------------------------------------------------------------
# What every connector declares
# ---------------------------------------------------------------------------------------------------


class ConnectorSpec(ABC):
    """The declaration every connector makes, scanner or ticketing: the UI renders it, the settings form and
    the masking are built from it, and `integrations.services` applies the address rule with it.

    A connector is built with its declared credentials as keyword arguments (one per `credential_fields`
    name), `api_url`, and options it may ignore (`timeout`, `budget`, `max_retries`, `max_download_bytes`).
    Close it (or use it in a `with` block) to release its connections.
    """

    do_not_call_in_templates = True  # templates read the class's declarations; they must not instantiate it
    kind: ClassVar[str]  # SCANNER or TICKETING
    slug: ClassVar[str]
    label: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    tagline: ClassVar[str] = ""  # the card's subtitle, e.g. "Ticketing · issue tracking"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    token_instructions: ClassVar[str] = ""  # a link to the vendor's page on creating keys
    token_help: ClassVar[str] = ""  # where in the vendor's console the keys are made, in words
    default_api_url: ClassVar[str] = ""
    api_url_label: ClassVar[str] = "API URL"
    api_url_help: ClassVar[str] = ""
    api_domain: ClassVar[str] = ""  # keys only go to https hosts in this domain (and the operator's list)
    hosts_setting: ClassVar[str] = "TENABLE_API_HOSTS"  # the setting an operator lists other allowed hosts in
    not_allowed: ClassVar[str] = (
        ""  # the sentence for an address outside the rule ("" = the product's default)
    )
    no_scans_resolution: ClassVar[str] = ""  # scanners: what to do when the key sees no scan

    def close(self) -> None:  # noqa: B027  (a connector without connections has nothing to release)
        """Release pooled connections."""

    def __enter__(self) -> ConnectorSpec:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @classmethod
    def credential_names(cls) -> list[str]:
        return [declared.name for declared in cls.credential_fields]

    @classmethod
    def secret_labels(cls) -> str:
        """The secret credentials in words, "User Key and Secret Key" or "API token", for sentences."""
        return " and ".join(declared.label for declared in cls.credential_fields if declared.secret)


# ---------------------------------------------------------------------------------------------------
# The scanner contract
# ---------------------------------------------------------------------------------------------------


class Connector(ConnectorSpec):
    """A scanner service. Subclasses declare their identity and credentials and implement every call.

    Every failure is a `ConnectorError`; a source that cannot be read as findings is a
    `formats.records.FormatError`.
    """

    kind = SCANNER

    @abstractmethod
    def test_connection(self) -> ConnectionInfo:
        """Prove the keys and the permission to list scans; say who they belong to and, where the connector can
        tell, their role, what they may view and what they can do (`ConnectionInfo.capabilities`)."""

    @abstractmethod
    def list_sources(self) -> SourceList:
        """Everything the keys can bind a scanner profile to, for Bind to (one call, cacheable)."""

    @abstractmethod
    def describe_source(self, source_id: int | str) -> ScanDetails:
        """Targets, tags, agents, policy, scanner, schedule, history and host count of one source."""

    @abstractmethod
    def launch(self, source_id: int | str) -> str:
        """Start the source's scan in the service; returns the new run's uuid."""

    @abstractmethod
    def latest_status(self, source_id: int | str) -> str:
        """Status of the source's latest run (a cheap call, polled while a launched scan runs)."""

    @abstractmethod
    def open_findings(
        self, source_id: int | str, history_id: int | None = None, *, deadline: float = 1800
    ) -> AbstractContextManager[Iterator[HostRecord]]:
        """The findings of one run as a stream of hosts, never held in memory at once.

        Use as `with connector.open_findings(...) as hosts:`; leaving the block releases the download.
        `deadline` bounds, in seconds, how long the service may take to prepare them.
        """

    # -- bulk exports (optional: the defaults say this connector has none) ----------------------------

    def start_vuln_export(self, request: VulnExportRequest) -> ExportJob:
        """Ask the service for a vulnerability export; a job with the same filters already running is adopted
        (`ExportJob.adopted`), never an error."""
        raise unsupported(self, "bulk vulnerability exports")

    def vuln_export_status(self, job_uuid: str) -> ExportStatus:
        """One status poll of a vulnerability export (the caller polls with backoff under its deadline).

        A job the service no longer knows raises kind "expired" (request a new export)."""
        raise unsupported(self, "bulk vulnerability exports")

    def vuln_export_chunk(self, job_uuid: str, chunk_id: int) -> VulnChunk:
        """Download and decode one listed chunk (safe from a few threads at once on one connector).

        Kind "expired": the chunk is gone (404 after 24 h) — request a new export. Kind "unreadable": the chunk
        is not valid JSON (cut short or garbled) — retry a bounded number of times, then fail. Never an empty
        chunk in place of a bad one."""
        raise unsupported(self, "bulk vulnerability exports")

    def cancel_vuln_export(self, job_uuid: str) -> str:
        """Stop a vulnerability export (on giving up at the deadline); returns the job's status after it."""
        raise unsupported(self, "bulk vulnerability exports")

    def start_asset_export(self, request: AssetExportRequest) -> ExportJob:
        """Ask for the assets updated, deleted or terminated since `request.since` (to close what is gone)."""
        raise unsupported(self, "bulk asset exports")

    def asset_export_status(self, job_uuid: str) -> ExportStatus:
        """One status poll of an asset export."""
        raise unsupported(self, "bulk asset exports")

    def asset_export_chunk(self, job_uuid: str, chunk_id: int) -> AssetChunk:
        """Download and decode one listed asset chunk (errors as for `vuln_export_chunk`)."""
        raise unsupported(self, "bulk asset exports")

    def cancel_asset_export(self, job_uuid: str) -> str:
        """Stop an asset export; returns the job's status after it."""
        raise unsupported(self, "bulk asset exports")

    def __enter__(self) -> Connector:
        return self


# ---------------------------------------------------------------------------------------------------
# The ticketing contract (tickets go out: Jira Cloud, …)
# ---------------------------------------------------------------------------------------------------


class TicketingError(ConnectorError):
    """A failed call to a ticketing service. Besides `ConnectorError`'s fields, `outcome_unknown` says a write
    (create, transition, comment) was sent and its answer lost: the service may have applied it, so look
    before writing again (for a create: `find` by the stable key, after a short wait: search lags).

    Kinds as for scanners, plus "workflow" (no transition leads to the status asked for; per ticket).
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.outcome_unknown = outcome_unknown

    def __reduce__(self):
        return _rebuild_ticketing, (
            self.message,
            self.kind,
            self.permanent,
            self.status,
            self.retry_after,
            self.outcome_unknown,
        )


def _rebuild_ticketing(message, kind, permanent, status, retry_after, outcome_unknown) -> TicketingError:
    return TicketingError(
        message,
        kind=kind,
        permanent=permanent,
        status=status,
        retry_after=retry_after,
        outcome_unknown=outcome_unknown,
    )


@dataclass(frozen=True, slots=True)
class Link:
    """A link in a ticket's text; only http(s) URLs become links, anything else stays text."""

    label: str
    url: str


Inline = str | Link


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a ticket's text in neutral terms; the connector writes it in the service's format, always
    as text (nothing in it is ever read as markup)."""

    kind: str  # one of the constants below
    parts: tuple[Inline, ...] = ()  # heading, paragraph: inline parts; prose, code: one string
    items: tuple[Inline, ...] = ()  # bullets

    HEADING: ClassVar[str] = "heading"
    PARAGRAPH: ClassVar[str] = "paragraph"
    PROSE: ClassVar[str] = (
        "prose"  # Tenable's plain text: blank lines part paragraphs, "- " lines are bullets
    )
    BULLETS: ClassVar[str] = "bullets"
    CODE: ClassVar[str] = "code"


@dataclass
class TicketDocument:
    """A ticket's description or a comment, built block by block: `TicketDocument().heading("Hosts")…`."""

    blocks: list[Block] = field(default_factory=list)

    def heading(self, value: str) -> TicketDocument:
        if value.strip():
            self.blocks.append(Block(Block.HEADING, (value,)))
        return self

    def paragraph(self, *parts: Inline) -> TicketDocument:
        parts = tuple(p for p in parts if p)
        if parts:
            self.blocks.append(Block(Block.PARAGRAPH, parts))
        return self

    def prose(self, value: str) -> TicketDocument:
        if value and value.strip():
            self.blocks.append(Block(Block.PROSE, (value,)))
        return self

    def bullets(self, items: Sequence[Inline]) -> TicketDocument:
        items = tuple(i for i in items if i)
        if items:
            self.blocks.append(Block(Block.BULLETS, items=items))
        return self

    def code(self, value: str) -> TicketDocument:
        if value and value.strip():
            self.blocks.append(Block(Block.CODE, (value,)))
        return self

    @classmethod
    def text(cls, value: str) -> TicketDocument:
        """A document of plain sentences (comments)."""
        return cls().prose(value)


@dataclass(frozen=True, slots=True)
class TicketContent:
    """What a ticket says. `labels` start with the stable key (re-added on every update, so a label removed
    by hand comes back); `priority` is the service's priority name, None to leave the field alone."""

    summary: str
    description: TicketDocument
    labels: tuple[str, ...]
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class TicketType:
    """A kind of ticket the account may create in a project (Task, Bug, …)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class TicketProject:
    """A project of the ticketing service and the ticket types this account may create in it."""

    key: str
    name: str
    types: tuple[TicketType, ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket as the service holds it; `done` when its status is a finished one (Jira's Done category)."""

    id: str
    key: str
    status: str
    done: bool
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    """What the account may do in one project: the permissions it lacks (the service's names), or why the
    project could not be checked (`error`)."""

    key: str
    name: str = ""
    missing: tuple[str, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.error


@dataclass(frozen=True, slots=True)
class TicketingInfo:
    """Test Connection of a ticketing connection: who the account is, and its access to the projects asked."""

    username: str
    email: str | None
    projects: tuple[ProjectAccess, ...] = ()


class TicketingConnector(ConnectorSpec):
    """A ticketing service tickets are pushed to. Every failure is a `TicketingError` (a `ConnectorError`).

    The product keeps the link between its finding (or vulnerability) and the ticket, and stores a stable
    key on the ticket (`stable_key`) so a lost link is found again by `find`, never replaced by a duplicate.
    """

    kind = TICKETING
    category = "ticketing"

    @abstractmethod
    def test_connection(self, project_keys: Sequence[str] = ()) -> TicketingInfo:
        """Prove the credentials and name the account; for each project key, the permissions it lacks there."""

    @abstractmethod
    def project(self, key: str) -> TicketProject:
        """A project and the ticket types this account may create in it (not found: kind "not_found")."""

    @abstractmethod
    def missing_permissions(self, project_key: str) -> list[str]:
        """The service's names of the permissions the ticket lifecycle needs that the account lacks there."""

    @abstractmethod
    def find(self, project_key: str, stable_key: str) -> list[Ticket]:
        """The project's tickets carrying `stable_key`, oldest first (search lags a little behind writes)."""

    @abstractmethod
    def tickets(self, keys: Sequence[str]) -> dict[str, Ticket]:
        """The current state of these tickets by key; a ticket deleted (or no longer visible) is absent."""

    @abstractmethod
    def create(self, project_key: str, type_id: str, content: TicketContent) -> Ticket:
        """Create a ticket. Never repeated on a lost answer (`TicketingError.outcome_unknown`)."""

    @abstractmethod
    def update(self, key: str, content: TicketContent) -> None:
        """Set the ticket's summary, description and priority, and add its labels (the stable key included)."""

    @abstractmethod
    def close_ticket(self, key: str, *, status: str, comment: TicketDocument) -> Ticket:
        """Move the ticket to `status` (else the first finished status the workflow offers), then comment.

        A ticket already finished is left as it is, without the comment."""

    @abstractmethod
    def reopen_ticket(self, key: str, *, status: str, comment: TicketDocument) -> Ticket:
        """Move a finished ticket back to `status` (else the first to-do status offered), then comment.

        A ticket that is not finished is left as it is, without the comment."""

    @abstractmethod
    def comment(self, key: str, document: TicketDocument) -> None:
        """Add a comment."""

    @classmethod
    @abstractmethod
    def stable_key(cls, *identity: object) -> str:
        """The key (a label) that ties a ticket to our identity: deterministic, short, valid in the service."""

    @classmethod
    @abstractmethod
    def ticket_url(cls, api_url: str, key: str) -> str:
        """Where a person opens the ticket."""

    @classmethod
    @abstractmethod
    def preview_html(cls, document: TicketDocument) -> str:
        """The document as escaped HTML, exactly as it will be sent (for the description preview)."""

    def __enter__(self) -> TicketingConnector:
        return self
