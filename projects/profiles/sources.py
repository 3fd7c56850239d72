"""What a connection's key can see (Bind to): its sources, cached briefly, in words and groups for the drawer.

Every call goes through the connector contract; a failure becomes `ScansUnavailable` with the user's sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from integrations.connectors import Connector, ConnectorError
from integrations.connectors.base import CAN_READ_SCAN_RESULTS
from integrations.models import Integration
from integrations.services import CredentialsUnavailable, open_connector

from ..choices import SourceKind
from ..models import ScannerProfile

log = logging.getLogger(__name__)

# Browsing Bind to and flicking through scans must not spend Tenable's per-key rate limit.
CACHE_SECONDS = 60
OTHER_SCANS = "Other scans"
VULNERABILITY_DATA = "Vulnerability data"
SCOPE_PREFIX = "scope:"  # Bind to's value for an export scope: "scope:all", "scope:tag:<tag value uuid>"
# Tenable's scan statuses as badge colours (see TENABLE_API.md › Scan statuses).
TENABLE_STATUS_BADGE = {
    "completed": "success",
    "imported": "success",
    "canceled": "warning",
    "stopped": "warning",
    "aborted": "danger",
    "empty": "neutral",
}


class ScansUnavailable(Exception):
    """Tenable.io could not be asked (keys, network, permission, unknown scan); `message` is for the user."""

    def __init__(self, message: str, kind: str = "credentials"):
        super().__init__(message)
        self.message = message
        self.kind = kind


def _cache_key(integration: Integration, *parts: object) -> str:
    # Saving the connection (new keys, new URL) bumps updated_at, so a changed key never reads old answers.
    stamp = int(integration.updated_at.timestamp()) if integration.updated_at else 0
    return ":".join(["tenable", str(integration.pk), str(stamp), *map(str, parts)])


def _ask(integration: Integration, call: Callable[[Connector], Any]) -> Any:
    try:
        connector = open_connector(integration, interactive=True)
    except CredentialsUnavailable as exc:
        raise ScansUnavailable(exc.message) from None
    try:
        with connector:
            return call(connector)
    except ConnectorError as exc:
        log.info("Tenable.io call for connection %s failed: %s", integration.pk, exc.kind)
        raise ScansUnavailable(exc.message, exc.kind) from None


def list_scans(integration: Integration):
    """The folders and scans this connection's key can see (a `ScanList`), cached for a minute.

    A fresh answer also updates `scan_missing` on every profile bound through this connection.
    """
    key = _cache_key(integration, "scans")
    scans = cache.get(key)
    if scans is None:
        scans = _ask(integration, lambda connector: connector.list_sources())
        cache.set(key, scans, CACHE_SECONDS)
        _remember_presence(
            integration, {scan.id for scan in visible_scans(scans)}, {scope.id for scope in scans.scopes}
        )
    return scans


def key_info(integration: Integration):
    """Who the connection's key is, its role and which assets it may view (`ConnectionInfo`), cached for a
    minute like the scan list: the Vulnerability data summary shows it."""
    key = _cache_key(integration, "key")
    info = cache.get(key)
    if info is None:
        info = _ask(integration, lambda connector: connector.test_connection())
        cache.set(key, info, CACHE_SECONDS)
    return info


def missing_scan_role(integration: Integration) -> str:
    """The connector's sentence naming the role this key lacks to read scans (e.g. a Basic key), or ""."""
    try:
        info = key_info(integration)
    except ScansUnavailable:
        return ""
    capability = info.capability(CAN_READ_SCAN_RESULTS)
    return capability.sentence if capability is not None and not capability.usable else ""


def scope_label(scope) -> str:
    """How an export scope reads in Bind to: its label, and the tag's asset count where Tenable gives it."""
    if scope.asset_count is None:
        return scope.label
    return f"{scope.label} · {scope.asset_count:,} asset{'s' if scope.asset_count != 1 else ''}"


def scope_choices(sources) -> list[tuple[str, str]]:
    """The "Vulnerability data" group of Bind to: all assets the key may view, then each visible tag."""
    return [(SCOPE_PREFIX + scope.id, scope_label(scope)) for scope in sources.scopes]


def describe_scan(integration: Integration, scan_id: int):
    """Targets, tags, agents, policy, schedule and history of one scan (`ScanDetails`), cached for a minute."""
    key = _cache_key(integration, "scan", scan_id)
    details = cache.get(key)
    if details is None:
        try:
            details = _ask(integration, lambda connector: connector.describe_source(scan_id))
        except ScansUnavailable as exc:
            if exc.kind == "not_found":
                ScannerProfile.objects.filter(integration=integration, scan_id=scan_id).update(
                    scan_missing=True
                )
            raise
        cache.set(key, details, CACHE_SECONDS)
    return details


def _remember_presence(integration: Integration, present: set[int], scopes: set[str]) -> None:
    """Flag the profiles whose scan (or export tag) this key no longer sees, and clear the flag of the others."""
    bound = ScannerProfile.objects.filter(integration=integration, source_kind=SourceKind.SCAN)
    bound.exclude(scan_id__in=present).filter(scan_missing=False).update(scan_missing=True)
    bound.filter(scan_id__in=present, scan_missing=True).update(scan_missing=False)
    if scopes:  # a connector without export scopes says nothing about them
        tagged = ScannerProfile.objects.filter(integration=integration, source_kind=SourceKind.EXPORT)
        tagged.exclude(export_scope__in=scopes).filter(scan_missing=False).update(scan_missing=True)
        tagged.filter(export_scope__in=scopes, scan_missing=True).update(scan_missing=False)


def visible_scans(scans) -> list:
    """Scans outside the trash folder (`ScanList.visible`, the rule Test Connection counts with too)."""
    return scans.visible()


def epoch(value: int | None) -> datetime | None:
    """An aware datetime from Tenable's epoch seconds (0 and None mean "never")."""
    return datetime.fromtimestamp(value, UTC) if value else None


def scan_label(scan) -> str:
    """How a scan reads in Bind to: name, status and when it last ran."""
    status = (scan.status or "empty").replace("_", " ")
    if status == "empty" or not scan.last_modification_date:
        when = "never run"
    else:
        when = "last run " + timezone.localtime(epoch(scan.last_modification_date)).strftime(
            "%b %-d, %Y %H:%M"
        )
    agent = " · agent scan" if scan.type == "agent" else ""
    return f"{scan.name} — {status.capitalize()} · {when}{agent}"


def bind_to_choices(scans) -> list[tuple[str, list[tuple[int, str]]]]:
    """Bind to options grouped by folder: the main folder first, then custom folders, then the rest."""
    folders = {folder.id: folder for folder in scans.folders}
    groups: dict[str, list[tuple[int, str]]] = {}
    rank: dict[str, tuple[int, str]] = {}
    for scan in sorted(visible_scans(scans), key=lambda s: s.name.lower()):
        folder = folders.get(scan.folder_id)
        name = folder.name if folder else OTHER_SCANS
        groups.setdefault(name, []).append((scan.id, scan_label(scan)))
        order = 0 if folder and folder.type == "main" else (2 if folder is None else 1)
        rank[name] = (order, name.lower())
    return [(name, groups[name]) for name in sorted(groups, key=rank.__getitem__)]


_RRULE_DAYS = {"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}
_RRULE_UNITS = {"HOURLY": "hour", "DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


def describe_tenable_schedule(schedule) -> str:
    """A Tenable schedule (iCalendar RRULE + start time + zone) in words, e.g. "Weekly on Mon at 01:00 (US/Central)"."""
    if schedule is None or not schedule.rrules:
        return "Not scheduled in Tenable.io (started by hand or through the API)"
    rule = dict(part.split("=", 1) for part in schedule.rrules.split(";") if "=" in part)
    freq = rule.get("FREQ", "").upper()
    try:
        interval = max(1, int(rule.get("INTERVAL") or 1))
    except ValueError:
        interval = 1
    start = None
    if schedule.starttime:
        try:
            start = datetime.strptime(schedule.starttime[:15], "%Y%m%dT%H%M%S")
        except ValueError:
            start = None
    if freq == "ONETIME":
        text = "Once" + (f" on {start:%b %-d, %Y}" if start else "")
    elif freq in _RRULE_UNITS:
        unit = _RRULE_UNITS[freq]
        text = (
            f"Every {interval} {unit}s"
            if interval > 1
            else {"day": "Daily"}.get(unit, f"{unit.capitalize()}ly")
        )
        days = [_RRULE_DAYS.get(day[-2:].upper(), day) for day in rule.get("BYDAY", "").split(",") if day]
        if days and freq in ("WEEKLY", "MONTHLY"):
            text += " on " + ", ".join(days)
        elif rule.get("BYMONTHDAY") and freq == "MONTHLY":
            text += f" on day {rule['BYMONTHDAY']}"
    else:
        text = schedule.rrules
    if start and freq != "HOURLY":
        text += f" at {start:%H:%M}"
    if schedule.timezone:
        text += f" ({schedule.timezone})"
    if not schedule.enabled:
        text += " — disabled in Tenable.io"
    return text
