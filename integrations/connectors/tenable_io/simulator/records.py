"""Export records as Tenable writes them: findings (fast, from cached JSON fragments) and assets.

A finding is assembled from pre-serialised pieces (the plugin, its port, the scan, the asset) so that a
million of them cost a few seconds; the 2018 schema (`finding_schema="2018"`) leaves out `finding_id`,
`indexed`, `source` and the plugin's `vpr`, as old tenants do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .catalogue import SEVERITY_WORDS, Plugin, fast_uuid, uuid_of
from .findings import (
    NULL_NETWORK,
    STATE_NAMES,
    BadRequest,
    ScanView,
    VulnData,
    VulnQuery,
    iso,
    tag_filters,
    whole_number,
)
from .model import Scan

_ASSET_TIMES = ("created_at", "updated_at", "deleted_at", "terminated_at", "last_assessed")
_ASSET_FLAGS = ("is_deleted", "is_terminated", "is_licensed")


@dataclass(slots=True)
class PluginFragments:
    """A plugin's pieces of finding JSON, serialised once and reused for every finding."""

    middle: str  # ',"plugin":{…},"port":{…},"scan":'
    legacy_middle: str  # the same without the plugin's vpr (2018 schema)
    output: str
    templated: bool


@dataclass
class AssetQuery:
    """A parsed asset export request (v1 or v2)."""

    chunk_size: int
    version: str | None
    times: dict[str, int] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    sources: frozenset[str] | None = None
    types: frozenset[str] | None = None
    tags: dict[str, frozenset[str]] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    dedup: str = ""
    include_unlicensed: bool = True
    cidr: None = None


def parse_asset_request(body: Any, version: str | None) -> AssetQuery:
    """Validate an asset export request: chunk_size 100..10000 (else 400), v1 or v2 filters."""
    body = body if body is not None else {}
    if not isinstance(body, dict) or not isinstance(body.get("filters", {}), dict):
        raise BadRequest("The request body must be a JSON object with 'chunk_size' and optional 'filters'.")
    size = body.get("chunk_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 100 <= size <= 10000:
        raise BadRequest(f"'chunk_size' must be a whole number between 100 and 10000, not {size!r}.")
    filters = dict(body.get("filters") or {})
    names = (*_ASSET_TIMES, "since") if version == "v2" else _ASSET_TIMES
    query = AssetQuery(
        size, version, times={n: whole_number(filters[n], n) for n in names if filters.get(n) is not None}
    )
    query.flags = {n: bool(filters[n]) for n in _ASSET_FLAGS if filters.get(n) is not None}
    if filters.get("sources"):
        query.sources = frozenset(str(s).upper() for s in filters["sources"])
    if version == "v2" and filters.get("types"):
        query.types = frozenset(str(s).lower() for s in filters["types"])
    query.tags = tag_filters(filters) if version is None else {}
    query.filters = filters
    query.dedup = json.dumps([version, size, filters], sort_keys=True)
    return query


class Records(VulnData):
    """Serialises findings and assets for export chunks."""

    def _plugin_fragments(self, index: int) -> PluginFragments:
        frag = self._fragments.get(index)
        if frag is None:
            p = self._plugin_at(index)
            body = _plugin_json(p)
            legacy = {k: v for k, v in body.items() if k != "vpr"}
            port = {"port": p.port, "protocol": p.protocol.upper(), "service": p.service}
            port_json = json.dumps(port)
            frag = PluginFragments(
                f',"plugin":{json.dumps(body)},"port":{port_json},"scan":',
                f',"plugin":{json.dumps(legacy)},"port":{port_json},"scan":',
                json.dumps(p.raw_output),
                "{" in p.raw_output,
            )
            self._fragments[index] = frag
        return frag

    def _scan_fragment(self, scan: Scan, k: int) -> str:
        frag = self._scan_fragments.get((scan.id, k))
        if frag is None:
            run = scan.runs[k]
            body = {
                "completed_at": iso(self._modified(run)),
                "schedule_uuid": scan.schedule_uuid,
                "started_at": iso(run.creation_date),
                "uuid": run.uuid,
            }
            frag = self._scan_fragments[(scan.id, k)] = json.dumps(body)
        return frag

    def _asset_fragment(self, scan: Scan, i: int) -> tuple[str, dict[str, str]]:
        """The finding's `asset` object, and the JSON-escaped values its plugin output mentions."""
        host = self._host(scan, i)
        asset = {
            "device_type": "general-purpose",
            "fqdn": host.fqdn,
            "hostname": host.fqdn or host.ip,
            "ipv4": host.ip,
            "mac_address": host.mac,
            "netbios_name": host.netbios,
            "network_id": NULL_NETWORK,
            "operating_system": [host.os],
            "tracked": True,
            "uuid": host.uuid,
            "agent_uuid": uuid_of(self.seed, scan.id, i, 0xA6E) if scan.type == "agent" else None,
        }
        values = {"ip": host.ip, "fqdn": host.fqdn or host.ip, "os": host.os}
        escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}
        return json.dumps({k: v for k, v in asset.items() if v is not None}), escaped

    def _vuln_pieces(
        self, views: dict[int, ScanView], assets: Iterable[tuple[int, int]], query: VulnQuery, window: dict
    ) -> Iterator[bytes]:
        """A chunk, the JSON array of the matching findings of these assets, in pieces of one asset each."""
        legacy = self.finding_schema == "2018"
        yield b"["
        sep = ""
        for scan_id, i in assets:
            view = views[scan_id]
            matching = list(self._matching(view, i, query, window))
            if not matching:
                continue
            asset_json, values = self._asset_fragment(view.scan, i)
            source = "NESSUS_AGENT" if view.scan.type == "agent" else "NESSUS"
            head = '{"asset":' + asset_json
            parts = []
            for index, h, p, fh, severity, modification in matching:
                frag = self._plugin_fragments(index)
                out = ""
                if query.include_output:
                    out = ',"output":' + (frag.output.format_map(values) if frag.templated else frag.output)
                dates = f'"first_found":"{iso(h[0])}","last_found":"{iso(h[1])}"'
                if h[2] is not None:
                    dates += f',"last_fixed":"{iso(h[2])}"'
                if h[3] is not None:
                    dates += f',"resurfaced_date":"{iso(h[3])}"'
                tail = "}" if legacy else (
                    f',"indexed":{max(h[1], h[2] or 0) + 300},"source":"{source}","finding_id":"{fast_uuid(fh)}"}}'
                )  # fmt: skip
                parts.append(
                    f"{out}{frag.legacy_middle if legacy else frag.middle}{self._scan_fragment(view.scan, h[5])},"
                    f"{_severity_part(severity, p.severity, modification)}{dates},"
                    f'"state":"{STATE_NAMES[h[4]]}"{tail}'
                )
            yield (sep + head + ("," + head).join(parts)).encode()
            sep = ","
        yield b"]"

    # -- assets -------------------------------------------------------------------------------------

    def _asset_facts(self, view: ScanView, i: int, t: float) -> dict[str, Any]:
        """Timestamps (epoch seconds) of an asset as of t: seen, created, updated, deleted, terminated."""
        seen = [run.creation_date + 60 + 3 * i for _, run, _, covered in view.runs if i in covered]
        gone = self._gone(self._host(view.scan, i).uuid, t)
        return {
            "first_seen": seen[0],
            "last_seen": seen[-1],
            "created_at": seen[0] + 1,
            "updated_at": max([seen[-1] + 1, *gone.values()]),
            "deleted_at": gone.get("deleted_at"),
            "terminated_at": gone.get("terminated_at"),
            "last_assessed": seen[-1],
            "licensed": self._licensed(view.scan, i),
        }

    def _asset_matches(self, facts: dict[str, Any], query: AssetQuery, scan: Scan) -> bool:
        for name, since in query.times.items():
            value = facts["updated_at" if name == "since" else name]
            if value is None or value < since:
                return False
        flags = {
            "is_deleted": facts["deleted_at"] is not None,
            "is_terminated": facts["terminated_at"] is not None,
            "is_licensed": facts["licensed"],
        }
        if any(flags[name] != wanted for name, wanted in query.flags.items()):
            return False
        if query.sources is not None and _source(scan) not in query.sources:
            return False
        return query.types is None or "host" in query.types

    def _asset_record(self, view: ScanView, i: int, facts: dict[str, Any], version: str | None) -> dict:
        scan, host = view.scan, self._host(view.scan, i)
        when = {k: iso(v) if v is not None else None for k, v in facts.items() if k != "licensed"}
        credentialed = scan.type == "agent" or "Credentialed" in scan.policy
        record: dict[str, Any] = {
            "id": host.uuid,
            "has_agent": scan.type == "agent",
            "has_plugin_results": True,
            "created_at": when["created_at"],
            "terminated_at": when["terminated_at"],
            "terminated_by": "aws-connector@example.com" if facts["terminated_at"] else None,
            "updated_at": when["updated_at"],
            "deleted_at": when["deleted_at"],
            "deleted_by": "admin@example.com" if facts["deleted_at"] else None,
            "first_seen": when["first_seen"],
            "last_seen": when["last_seen"],
            "first_scan_time": when["first_seen"],
            "last_scan_time": when["last_seen"],
            "last_authenticated_scan_date": when["last_seen"] if credentialed else None,
            "last_licensed_scan_date": when["last_seen"] if facts["licensed"] else None,
            "agent_uuid": uuid_of(self.seed, scan.id, i, 0xA6E) if scan.type == "agent" else None,
            "bios_uuid": uuid_of(self.seed, scan.id, i, 0xB105),
            "network_id": NULL_NETWORK,
            "aws_ec2_instance_id": None,
            "azure_vm_id": None,
            "servicenow_sysid": None,
            "agent_names": [host.fqdn or host.ip] if scan.type == "agent" else [],
            **self._asset_names(scan, i),
            "sources": [
                {"name": _source(scan), "first_seen": when["first_seen"], "last_seen": when["last_seen"]}
            ],
            "tags": self._asset_tag_list(scan, i, facts["created_at"]),
            "network_interfaces": [],
        }
        if version == "v2":
            record["types"] = ["host"]
        return record

    def _asset_names(self, scan: Scan, i: int) -> dict[str, list[str]]:
        host = self._host(scan, i)
        return {
            "ipv4s": [host.ip],
            "ipv6s": [],
            "fqdns": [host.fqdn] if host.fqdn else [],
            "mac_addresses": [host.mac],
            "netbios_names": [host.netbios] if host.netbios else [],
            "operating_systems": [host.os],
            "system_types": ["general-purpose"],
            "hostnames": [host.fqdn] if host.fqdn else [],
            "ssh_fingerprints": [],
        }

    def _asset_tag_list(self, scan: Scan, i: int, added: int) -> list[dict[str, str]]:
        return [
            {
                "tag_uuid": u,
                "tag_key": self.tag_values[u]["category_name"],
                "tag_value": self.tag_values[u]["value"],
                "added_by": "secops@example.com",
                "added_at": iso(added),
            }
            for u in self._asset_tags(scan, i)
        ]


@lru_cache(maxsize=256)
def _severity_part(severity: int, default: int, modification: str) -> str:
    return (
        f'"severity":"{SEVERITY_WORDS[severity]}","severity_id":{severity},"severity_default_id":{default},'
        f'"severity_modification_type":"{modification}",'
    )


def _source(scan: Scan) -> str:
    return "NESSUS_AGENT" if scan.type == "agent" else "NESSUS_SCAN"


def _plugin_json(p: Plugin) -> dict[str, Any]:
    """The finding's `plugin` object from the plugin's `.nessus` children (empty attributes omitted)."""
    values: dict[str, list[str]] = {}
    for tag, text in p.children:
        values.setdefault(tag, []).append(text)

    def one(tag: str) -> str | None:
        return values.get(tag, [None])[0]

    def date(tag: str) -> str | None:
        raw = one(tag)
        return f"{raw.replace('/', '-')}T00:00:00Z" if raw else None

    body: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "family": p.family,
        "synopsis": one("synopsis"),
        "description": one("description"),
        "solution": one("solution"),
        "see_also": one("see_also").split("\n") if one("see_also") else None,
        "risk_factor": one("risk_factor"),
        "type": one("plugin_type"),
        "version": one("script_version"),
        "publication_date": date("plugin_publication_date"),
        "modification_date": date("plugin_modification_date"),
        "patch_publication_date": date("patch_publication_date"),
        "has_patch": bool(one("patch_publication_date")) or None,
        "exploit_available": {"true": True, "false": False}.get(one("exploit_available") or ""),
        "cve": values.get("cve"),
        "cvss3_base_score": float(one("cvss3_base_score")) if one("cvss3_base_score") else None,
        "cvss3_vector": {"raw": one("cvss3_vector")} if one("cvss3_vector") else None,
        "cvss_base_score": float(one("cvss_base_score")) if one("cvss_base_score") else None,
        "cvss_vector": {"raw": one("cvss_vector")} if one("cvss_vector") else None,
        "vpr": {"score": float(one("vpr_score"))} if one("vpr_score") else None,
        "epss_score": float(one("epss_score")) if one("epss_score") else None,
        "xrefs": [{"type": "CWE", "id": c} for c in values.get("cwe", [])] or None,
    }
    return {k: v for k, v in body.items() if v is not None}
