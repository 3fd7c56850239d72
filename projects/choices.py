"""Enumerations and the badge colours that go with them."""

from __future__ import annotations

from django.db import models


class Severity(models.IntegerChoices):
    INFO = 0, "Info"
    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


SEVERITY_BADGE = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}


def shift_severity(severity: int, shift: int) -> int:
    """Severity+ / Severity-: one level up or down, clamped to Info..Critical."""
    return max(Severity.INFO, min(Severity.CRITICAL, severity + shift))


class SeverityShift(models.IntegerChoices):
    DOWN = -1, "Severity-"
    NONE = 0, "No change"
    UP = 1, "Severity+"


class ProjectRole(models.TextChoices):
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULE = "schedule", "Schedule"
    CLI = "cli", "Command line"
    API = "api", "API"
    UPLOAD = "upload", "Upload"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    LAUNCHING = "launching", "Launching"
    WAITING = "waiting", "Waiting for Tenable"
    EXPORTING = "exporting", "Exporting"
    IMPORTING = "importing", "Importing"
    # The phases of a "Vulnerability data" sync (a bulk export instead of a scan's .nessus).
    REQUESTING = "requesting", "Requesting the export"
    PREPARING = "preparing", "Tenable preparing"
    MERGING = "merging", "Merging chunks"
    CHECKING = "checking", "Checking assets"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


ACTIVE_RUN_STATUSES = [
    RunStatus.QUEUED,
    RunStatus.LAUNCHING,
    RunStatus.WAITING,
    RunStatus.EXPORTING,
    RunStatus.IMPORTING,
    RunStatus.REQUESTING,
    RunStatus.PREPARING,
    RunStatus.MERGING,
    RunStatus.CHECKING,
]
RUN_BADGE = {
    "queued": "neutral",
    "launching": "progress",
    "waiting": "progress",
    "exporting": "progress",
    "importing": "progress",
    "requesting": "progress",
    "preparing": "progress",
    "merging": "progress",
    "checking": "progress",
    "succeeded": "success",
    "failed": "danger",
    "canceled": "neutral",
}


class FindingState(models.TextChoices):
    OPEN = "open", "Open"
    FIXED = "fixed", "Fixed"
    REOPENED = "reopened", "Reopened"


# "Open" in the UI, the API and the importer: open or reopened (everything but fixed).
OPEN_FINDING_STATES = (FindingState.OPEN, FindingState.REOPENED)
SEVERITIES_DESC = (4, 3, 2, 1, 0)


class CloseReason(models.TextChoices):
    """Why a finding is fixed: a scan no longer reported it, Tenable says so, or its asset is gone."""

    NONE = "", "—"
    NOT_SEEN = "not_seen", "Not seen on a host the scan covered"
    TENABLE_FIXED = "tenable_fixed", "Fixed in Tenable.io"
    ASSET_DELETED = "asset_deleted", "Asset deleted in Tenable.io"
    ASSET_TERMINATED = "asset_terminated", "Asset terminated in Tenable.io"


class SourceKind(models.TextChoices):
    """What a scanner profile is bound to: one Tenable scan, or the bulk vulnerability data a key may view."""

    SCAN = "scan", "Scan"
    EXPORT = "export", "Vulnerability data"


# Tenable's words for a finding's severity change (`severity_modification_type`), as the finding page shows them.
SEVERITY_MODIFICATIONS = {
    "NONE": "",
    "RECASTED": "Recast in Tenable.io",
    "ACCEPTED": "Accepted in Tenable.io",
}


class Triage(models.TextChoices):
    NONE = "", "None"
    FALSE_POSITIVE = "false_positive", "False positive"
    RISK_ACCEPTED = "risk_accepted", "Risk accepted"


class ScheduleFrequency(models.TextChoices):
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    CRON = "cron", "Cron expression"


WEEKDAYS = [("1", "Mon"), ("2", "Tue"), ("3", "Wed"), ("4", "Thu"), ("5", "Fri"), ("6", "Sat"), ("0", "Sun")]
