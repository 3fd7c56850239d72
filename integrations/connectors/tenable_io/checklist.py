"""What a Tenable.io key can do, as Test Connection's checklist: role names, asset visibility, capabilities.

Pure functions over the answers of cheap read calls (the client makes the calls): `/session` gives the role
number, `/api/v3/access-control/permissions/users/me` what the user may view, `GET /scans` the scans and the
user's permission on each, reading one scan (its latest status) proves "read scan results", the agent-group
list proves Scan Manager. What can only be proven by creating something (an export job, a scan launch) is
inferred from the role and says so. Roles and the calls they allow: TENABLE_API.md › Roles and permissions per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..base import (
    CAN_EXPORT,
    CAN_LIST_SCANS,
    CAN_READ_SCAN_RESULTS,
    CAN_SEE_AGENT_GROUPS,
    CAN_START_SCANS,
    INFERRED,
    MISSING,
    OK,
    UNKNOWN,
    Capability,
    ScanSummary,
    Visibility,
)

BASIC, SCAN_OPERATOR, STANDARD, SCAN_MANAGER, ADMINISTRATOR = 16, 24, 32, 40, 64
ROLE_NAMES = {16: "Basic", 24: "Scan Operator", 32: "Standard", 40: "Scan Manager", 64: "Administrator"}
CAN_EXECUTE = 32  # scan permission: No Access 0, Can View 16, Can Execute 32, Can Edit 64, Owner 128

NO_SCANS = (
    "Ensure at least one completed scan exists in your Tenable.io account and the API key has access to it."
)


def _inferred(proof: str) -> str:
    return f"inferred from the role; only {proof} would prove it"


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one optional read call: ok, refused (403), or failed otherwise (with Tenable's status)."""

    ok: bool
    refused: bool = False
    status: int | None = None

    @property
    def failed(self) -> str:
        return (
            f"Tenable.io answered HTTP {self.status}" if self.status else "Tenable.io did not answer usefully"
        )


def role_name(role: int | None) -> str | None:
    """Basic, Scan Operator, Standard, Scan Manager or Administrator; a custom number is named by its number."""
    if role is None:
        return None
    return ROLE_NAMES.get(role, f"role {role}")


def visibility_from(role: int | None, permissions: dict[str, Any] | None, reason: str = "") -> Visibility:
    """Which assets the user may view, from its permission configurations (None: the call was refused).

    Administrators see every asset whatever their configurations say.
    """
    if role is not None and role >= ADMINISTRATOR:
        return Visibility(Visibility.ALL)
    if permissions is None:
        return Visibility(Visibility.UNKNOWN, reason=reason)
    tags: dict[str, None] = {}
    for grant in permissions.get("permissions_granted") or []:
        if not isinstance(grant, dict):
            continue
        actions = {str(a).replace("_", "").lower() for a in grant.get("actions") or []}
        if "canview" not in actions:
            continue
        for target in grant.get("objects") or []:
            if not isinstance(target, dict):
                continue
            kind = str(target.get("type") or "").replace("_", "").lower()
            if kind == "allassets":
                return Visibility(Visibility.ALL)
            label = _tag_label(target.get("name")) or str(target.get("uuid") or "")
            if label:
                tags.setdefault(label)
    return Visibility(Visibility.TAGS, tags=tuple(tags))


def _tag_label(name: Any) -> str | None:
    """ "Location:Dallas" → "Location: Dallas" (the label Bind to uses for tags)."""
    if not isinstance(name, str) or not name.strip():
        return None
    category, sep, value = name.partition(":")
    return f"{category.strip()}: {value.strip()}" if sep else name.strip()


def capabilities(
    *,
    role: int | None,
    scans: list[ScanSummary],
    visibility: Visibility,
    probed_scan: ScanSummary | None,
    scan_read: Probe | None,
    agent_groups: Probe,
) -> tuple[Capability, ...]:
    """The checklist, in display order. `scan_read` is None when no scan was visible to read."""
    return (
        _list_scans(len(scans)),
        _read_results(role, probed_scan, scan_read),
        _start_scans(role, scans),
        _exports(role, visibility),
        _agent_groups(role, agent_groups),
    )


def _list_scans(count: int) -> Capability:
    label = "List scans"
    if count == 0:
        return Capability(CAN_LIST_SCANS, label, OK, f"Can list scans, but none is visible. {NO_SCANS}")
    return Capability(
        CAN_LIST_SCANS, label, OK, f"Can list scans: {count} scan{'s' if count != 1 else ''} visible."
    )


def _read_results(role: int | None, scan: ScanSummary | None, probe: Probe | None) -> Capability:
    label = "Read and import scan results"
    key = CAN_READ_SCAN_RESULTS
    needs = "the Scan Operator role (or higher) and Can View on the scan"
    if probe is not None and scan is not None:
        if probe.ok:
            return Capability(key, label, OK, f"Can read and import scan results (checked on “{scan.name}”).")
        if probe.refused:
            if role is not None and role < SCAN_OPERATOR:
                why = f"this user has the {role_name(role)} role, which can list scans but not read them"
            elif role is not None:
                why = f"this user lacks Can View on “{scan.name}”"
            else:
                why = f"Tenable.io refused to read “{scan.name}”"
            return Capability(
                key, label, MISSING, f"Cannot read or import scan results: {why}; it needs {needs}."
            )
        return Capability(key, label, UNKNOWN, f"Could not check reading scan results: {probe.failed}.")
    if role is None:
        return Capability(
            key, label, UNKNOWN, "Not checked: no scan is visible and the role could not be read."
        )
    if role < SCAN_OPERATOR:
        return Capability(
            key,
            label,
            MISSING,
            f"Cannot read or import scan results: the {role_name(role)} role cannot; it needs {needs}.",
        )
    return Capability(
        key,
        label,
        INFERRED,
        "Should read and import scan results with Can View on the scan (inferred from the role; no scan is visible to check).",
    )


def _start_scans(role: int | None, scans: list[ScanSummary]) -> Capability:
    label = "Start scans"
    key = CAN_START_SCANS
    needs = "Start Scan needs the Scan Operator role (or higher) and Can Execute on the scan"
    if role is None:
        return Capability(
            key, label, UNKNOWN, f"Not checked: the role could not be read. {needs}.", optional=True
        )
    if role < SCAN_OPERATOR:
        return Capability(
            key,
            label,
            MISSING,
            f"Cannot start scans: this user has the {role_name(role)} role; {needs}.",
            optional=True,
        )
    known = [s for s in scans if s.user_permissions is not None]
    if not known:
        return Capability(
            key,
            label,
            INFERRED,
            f"Should start scans it may execute ({_inferred('launching a scan')}).",
            optional=True,
        )
    runnable = [s for s in known if s.user_permissions >= CAN_EXECUTE and s.control]  # type: ignore[operator]
    if not runnable:
        return Capability(
            key,
            label,
            MISSING,
            f"Cannot start scans: no visible scan grants this user Can Execute; {needs}.",
            optional=True,
        )
    count = f"{len(runnable)} scan{'s' if len(runnable) != 1 else ''}"
    return Capability(
        key,
        label,
        INFERRED,
        f"Can start the {count} it may execute ({_inferred('launching a scan')}).",
        optional=True,
    )


def _exports(role: int | None, visibility: Visibility) -> Capability:
    label = "Bulk vulnerability and asset exports"
    key = CAN_EXPORT
    if visibility.kind == Visibility.TAGS and not visibility.tags:
        return Capability(
            key,
            label,
            MISSING,
            "Exports would be empty: no permission configuration grants this user Can View on any assets. "
            "Ensure the API key belongs to a user with access to vulnerability management data.",
        )
    if visibility.kind == Visibility.ALL:
        scope = "for every asset"
    elif visibility.kind == Visibility.TAGS:
        scope = f"for the assets tagged {', '.join(visibility.tags)}"
    else:
        scope = "for the assets it may view (which ones could not be read)"
    return Capability(
        key,
        label,
        INFERRED,
        f"Can export vulnerability and asset data {scope}: any role with Can View on assets may "
        f"({_inferred('an export job')}).",
    )


def _agent_groups(role: int | None, probe: Probe) -> Capability:
    label = "Agent-group details for the drawer preview"
    key = CAN_SEE_AGENT_GROUPS
    if probe.ok:
        return Capability(key, label, OK, "Can read agent groups for the Bind to preview.", optional=True)
    if probe.refused:
        who = f", and this user has the {role_name(role)} role" if role is not None else ""
        return Capability(
            key,
            label,
            MISSING,
            f"Agent groups not visible with this key: they need the Scan Manager role or higher{who}; "
            "the preview says so instead of failing.",
            optional=True,
        )
    return Capability(key, label, UNKNOWN, f"Could not check agent groups: {probe.failed}.", optional=True)
