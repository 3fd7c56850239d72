"""What a connection's key may do: the checklist Test Connection found, stored as JSON, and least-privilege advice.

The connector reports a `ConnectionInfo` (who, role, visibility, capabilities); it is stored on the connection
(`Integration.last_test_details`) so the rest of the product can ask what the key can do without calling the
service. Advice compares it with what the connection's profiles need, which `projects` says (integrations never
imports it): `needs` maps a capability key to the profiles that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .connectors.base import (
    CAN_EXPORT,
    CAN_READ_SCAN_RESULTS,
    CAN_START_SCANS,
    MISSING,
    Capability,
    ConnectionInfo,
    Visibility,
)

# What profiles can need, mapped to the profiles needing it (labels such as "“Weekly” (Payments)").
Needs = Mapping[str, Sequence[str]]

# Tenable.io's roles (TENABLE_API.md › Roles and permissions per call): the least role each need takes, and the
# key that is enough for it, in the words of the seeds.
ROLE_ORDER = (16, 24, 32, 40, 64)  # Basic, Scan Operator, Standard, Scan Manager, Administrator
LEAST_KEY = {
    CAN_EXPORT: (16, "a Basic key with Can View"),
    CAN_READ_SCAN_RESULTS: (24, "a Scan Operator key with Can View on the bound scans"),
    CAN_START_SCANS: (24, "a Scan Operator key with Can Execute on the bound scans"),
}
# How a profile that needs each capability is described when it would fail.
NEEDED_FOR = {
    CAN_EXPORT: "imports vulnerability data through exports",
    CAN_READ_SCAN_RESULTS: "is bound to a scan",
    CAN_START_SCANS: "has Start Scan on",
}


def to_details(info: ConnectionInfo) -> dict[str, Any]:
    """The JSON stored on the connection after a successful test (`Integration.last_test_details`)."""
    visibility = info.visibility
    return {
        "username": info.username,
        "container": info.container,
        "scan_count": info.scan_count,
        "role": info.role,
        "role_name": info.role_name,
        "visibility": (
            {"kind": visibility.kind, "tags": list(visibility.tags), "reason": visibility.reason}
            if visibility
            else None
        ),
        "capabilities": [
            {
                "key": c.key,
                "label": c.label,
                "status": c.status,
                "sentence": c.sentence,
                "optional": c.optional,
            }
            for c in info.capabilities
        ],
    }


def from_details(details: Mapping[str, Any] | None) -> ConnectionInfo | None:
    """The `ConnectionInfo` a successful test stored, or None (never tested, failed, or stored before issue 15
    without a scan count)."""
    if not isinstance(details, Mapping) or "scan_count" not in details:
        return None
    seen = details.get("visibility")
    visibility = None
    if isinstance(seen, Mapping):
        visibility = Visibility(
            str(seen.get("kind") or Visibility.UNKNOWN),
            tuple(str(t) for t in seen.get("tags") or ()),
            str(seen.get("reason") or ""),
        )
    capabilities = tuple(
        Capability(
            key=str(c.get("key", "")),
            label=str(c.get("label", "")),
            status=str(c.get("status", "")),
            sentence=str(c.get("sentence", "")),
            optional=bool(c.get("optional", False)),
        )
        for c in details.get("capabilities") or ()
        if isinstance(c, Mapping)
    )
    return ConnectionInfo(
        username=details.get("username"),
        container=details.get("container"),
        scan_count=int(details.get("scan_count") or 0),
        role=details.get("role"),
        role_name=details.get("role_name"),
        visibility=visibility,
        capabilities=capabilities,
    )


@dataclass(frozen=True, slots=True)
class Advice:
    """One sentence of least-privilege advice: `more` (the key may do more than needed) or `less` (a profile
    needs what the key cannot do, and will fail)."""

    kind: str
    sentence: str
    key: str = ""  # the capability a `less` advice is about

    @property
    def tone(self) -> str:
        return "warning" if self.kind == "less" else "info"


def _profiles(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    return f"Profile {shown}" if len(labels) == 1 else f"Profiles {shown}{more}"


def advice(info: ConnectionInfo | None, needs: Needs) -> list[Advice]:
    """Least-privilege advice for a key (`info`, from its last successful test) given what profiles need.

    Less: every need whose capability is missing, naming the profiles and the key's sentence (they will fail).
    More: a known role above the least one the needs take ("Administrator: a Basic key with Can View is enough
    for the export profiles in use"). Nothing when the key or the needs are unknown.
    """
    needs = {key: list(labels) for key, labels in needs.items() if labels}
    if info is None or not needs:
        return []
    found: list[Advice] = []
    for key in (CAN_READ_SCAN_RESULTS, CAN_START_SCANS, CAN_EXPORT):
        capability = info.capability(key)
        if key in needs and capability is not None and capability.status == MISSING:
            labels = needs[key]
            verb = "needs" if len(labels) == 1 else "need"
            found.append(
                Advice(
                    "less",
                    f"{_profiles(labels)} {verb} what this key cannot do and will fail: {capability.sentence}",
                    key,
                )
            )
    if found or info.role not in ROLE_ORDER:
        return found
    least = None
    for key in (CAN_EXPORT, CAN_READ_SCAN_RESULTS, CAN_START_SCANS):  # ascending: the last one needed decides
        if key in needs:
            least = LEAST_KEY[key]
    if least is not None and info.role > least[0]:
        enough = least[1]
        if set(needs) == {CAN_EXPORT}:
            which = "the export profiles"
        elif CAN_EXPORT not in needs:
            which = "the scan profiles"
        else:
            which = "the profiles"
        found.append(Advice("more", f"{info.role_name}: {enough} is enough for {which} in use."))
    return found


def profile_warning(info: ConnectionInfo | None, needs: Sequence[str]) -> str:
    """For one profile: the sentence of the first capability it needs that the key is known to lack, or ""."""
    if info is None:
        return ""
    for key in needs:
        capability = info.capability(key)
        if capability is not None and capability.status == MISSING:
            return capability.sentence
    return ""
