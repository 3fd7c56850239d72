"""The connector contract: what every scanner connector declares, what it does, and the one error it raises.

No Django here. The UI renders a connector's declaration (forms and masking come from `credential_fields`);
the product calls only the methods of `Connector` and catches only `ConnectorError`. Records of findings
are `integrations.formats.records`, the same ones a file upload produces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from ..formats.records import HostRecord

# Categories in the order the Integrations › Scanners tabs show them.
CATEGORIES: list[tuple[str, str]] = [("infra", "Infra"), ("sast", "SAST"), ("dast", "DAST"), ("sca", "SCA")]


@dataclass(frozen=True)
class CredentialField:
    """One credential input: `name` is the model attribute, `secret` makes it write-only and encrypted."""

    name: str
    label: str
    secret: bool
    help_text: str = ""


class ConnectorError(Exception):
    """A failed call to a scanner service, whichever connector made it.

    `message` is the sentence the user sees; `kind` names the failure (auth, forbidden, not_found, conflict,
    rate_limited, server, dns, tls, timeout, connection, truncated, bad_response, …); `permanent` says
    retrying cannot help; `retry_after` is the service's own wait in seconds, when it gave one.
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


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Who the keys belong to and how many scans they can see (issue 15 adds the key's role and rights)."""

    username: str | None
    container: str | None
    scan_count: int


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


@dataclass(frozen=True, slots=True)
class SourceList:
    """What a connection can bind to, in folders. Today every source is a scan; another kind of source
    (e.g. vulnerability data by asset or tag) is a further list beside `scans`."""

    folders: list[Folder]
    scans: list[ScanSummary]

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


# ---------------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------------


class Connector(ABC):
    """A scanner service. Subclasses declare their identity and credentials and implement every call.

    A connector is built with its declared credentials as keyword arguments (one per `credential_fields`
    name), `api_url`, and options it may ignore (`timeout`, `budget`, `max_retries`, `max_download_bytes`).
    Every failure is a `ConnectorError`; a source that cannot be read as findings is a
    `formats.records.FormatError`. Close it (or use it in a `with` block) to release its connections.
    """

    do_not_call_in_templates = True  # templates read the class's declarations; they must not instantiate it
    slug: ClassVar[str]
    label: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    token_instructions: ClassVar[str] = ""  # a link to the vendor's page on creating keys
    token_help: ClassVar[str] = ""  # where in the vendor's console the keys are made, in words
    default_api_url: ClassVar[str] = ""
    api_url_help: ClassVar[str] = ""
    api_domain: ClassVar[str] = ""  # keys only go to https hosts in this domain (and the operator's list)
    no_scans_resolution: ClassVar[str] = ""  # what to do when the key sees no scan

    @abstractmethod
    def test_connection(self) -> ConnectionInfo:
        """Prove the keys and the permission to read scans; say who they belong to."""

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

    def close(self) -> None:  # noqa: B027  (a connector without connections has nothing to release)
        """Release pooled connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @classmethod
    def credential_names(cls) -> list[str]:
        return [declared.name for declared in cls.credential_fields]
