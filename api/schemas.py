"""Request and response shapes of `/api/v1/` (Pydantic, via django-ninja); the OpenAPI schema is built from these."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import Field


class Error(Schema):
    detail: str = Field(description="What went wrong, in words a person can act on.")


class RunConflict(Error):
    run_id: int = Field(description="The run that is already in progress for this profile.")


class SeverityCounts(Schema):
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0


class ProjectOut(Schema):
    id: int
    name: str
    description: str
    url: str


class ProjectDetailOut(ProjectOut):
    can_start_runs: bool = Field(description="Whether the caller may start runs in this project.")
    open_findings: SeverityCounts = Field(
        description="Open findings by effective severity: open or reopened, not triaged (an expired risk "
        "acceptance counts as not triaged). The same rule as the UI's open list and `kdt --threshold-*`."
    )


class BindTo(Schema):
    kind: Literal["scan", "export"] = Field(
        description="`scan`: one Tenable.io scan; `export`: “Vulnerability data”, synced through bulk exports."
    )
    scan_id: int | None = Field(description="The bound scan's id (null for vulnerability data).")
    scan_name: str = Field(description="The scan's name, or the vulnerability data's label, as last seen.")
    scope: str | None = Field(
        description="Vulnerability data: `all`, or `tag:<tag value uuid>` (null for a scan)."
    )


class ProfileOut(Schema):
    id: int
    project_id: int
    name: str
    tool: str = Field(description="Scanner type, e.g. `tenableiovm` (see /scanners).")
    bind_to: BindTo
    meta_data: str
    scan_tag: str
    start_scan: bool
    severity_shift: int = Field(description="-1 for Severity-, 1 for Severity+, 0 for neither.")
    scheduler_enabled: bool
    active_run_id: int | None


class RunRequest(Schema):
    trigger: Literal["api", "cli"] = Field(
        "api", description="Shown on the run: `cli` for `kdt`, else `api`."
    )


class RunCounts(Schema):
    total: int
    new: int
    fixed: int
    reopened: int
    unchanged: int
    hosts: int
    by_severity: SeverityCounts = Field(description="Findings seen in this run, by effective severity.")


class RunOut(Schema):
    id: int
    project: ProjectOut
    profile_id: int | None
    profile_name: str
    meta_data: str
    tool: str
    trigger: str
    status: Literal[
        "queued", "launching", "waiting", "exporting", "importing", "requesting", "preparing", "merging",
        "checking", "succeeded", "failed", "canceled",
    ]  # fmt: skip
    phase: str = Field(description="The status as the UI shows it, e.g. “Waiting for Tenable”.")
    finished: bool
    message: str
    error: str
    progress_done: int
    progress_total: int | None
    progress_percent: int | None
    progress_unit: str = Field(
        description="What the progress counts: `hosts` (scans, uploads) or `chunks` (vulnerability data)."
    )
    counts: RunCounts
    up_to_date: bool
    tenable_scan_id: int | None
    tenable_status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str


class FindingOut(Schema):
    id: int
    plugin_id: int
    plugin_name: str
    family: str
    severity: int = Field(description="Effective severity 0-4 (after Severity+/-).")
    severity_label: str
    tenable_severity: int
    host: str
    ip: str
    port: int
    protocol: str
    state: str
    triage: str = Field(description="'', false_positive, risk_accepted or expired.")
    first_seen: datetime
    last_seen: datetime
    url: str


class FindingPage(Schema):
    count: int | None = Field(description="Matching findings; null when more than `count_cap`.")
    count_cap: int
    page: int
    page_size: int
    has_next: bool
    next: str | None
    results: list[FindingOut]


class ScannerOut(Schema):
    slug: str
    label: str
    category: str


class TokenOut(Schema):
    """Who the token belongs to: lets `kdt` check its configuration."""

    username: str
    role: str
    token_name: str | None
    token_expires: date | None
