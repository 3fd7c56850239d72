"""Enumerations of the tickets app, with the badge colours that go with them."""

from __future__ import annotations

from django.db import models


class Grouping(models.TextChoices):
    PLUGIN = "plugin", "One ticket per vulnerability, listing the affected hosts"
    FINDING = "finding", "One ticket per finding (host and port)"


class HandClosed(models.TextChoices):
    """What a sync does with a ticket someone closed in Jira while Tenable still reports its finding."""

    REOPEN = "reopen", "Reopen it, with a comment saying Tenable still reports it"
    COMMENT = "comment", "Leave it closed and add a comment, once"


class LinkState(models.TextChoices):
    """Our side of a ticket link: being created, open (its findings need attention), closed by us, or gone."""

    CREATING = "creating", "Being created"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    GONE = "gone", "Deleted in Jira"


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SyncTrigger(models.TextChoices):
    RUN = "run", "Run"
    MANUAL = "manual", "Create Jira ticket"
    SYNC_NOW = "sync_now", "Sync now"


SYNC_BADGE = {"pending": "progress", "running": "progress", "done": "success", "failed": "danger"}
# Jira's priority names, by effective severity (Critical … Info), as a fresh mapping proposes them.
DEFAULT_PRIORITIES = {"4": "Highest", "3": "High", "2": "Medium", "1": "Low", "0": "Lowest"}
# The description a fresh mapping proposes (see content.py for the placeholders and the two line rules).
DEFAULT_DESCRIPTION = """{synopsis}

## Affected hosts
{hosts}

## Description
{description}

## Solution
{solution}

## See also
{see_also}

Tenable plugin {plugin_id} ({plugin_family}) · {severity} · CVSS v3 {cvss3} · {cves}
Review it in Tenable Console: {console_url}
"""
