"""Reader for Tenable VM's bulk export chunks (`/vulns/export` and `/assets/export` JSON arrays). No Django.

One chunk is decoded at once with msgspec into typed structs that name only the fields we use (the rest is
skipped without being built), then normalised into `ExportFinding`s / `ExportAsset`s capped like `.nessus`
items. The asset, plugin, port and scan objects repeat on every finding: each distinct one is decoded and
normalised once per chunk (findings of one asset share one `HostRecord`), and Tenable's words (states,
severities, modification types) decode as Literals, which keeps both the time and the memory per finding
small (about 170,000 findings per CPU-second here; `bench/export_decode_bench.py`).

A chunk that is not JSON, or not a JSON array, raises `FormatError` (never an empty list in its place). A
record of a readable chunk that does not fit the schema (a wrong type, an unknown state word) is set aside as
a `RejectedRecord` with the reason, and the others are kept.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import msgspec

from .nessus import _RISK, _RISK_BY_SEVERITY, _cwe, _date, _name, _text
from .records import (
    LIST_MAX,
    NAME_MAX,
    PLUGIN_NAME_MAX,
    PLUGIN_OUTPUT_MAX,
    TRUNCATED_MARKER,
    URL_MAX,
    ExportAsset,
    ExportFinding,
    FormatError,
    HostRecord,
    RejectedRecord,
)

SEVERITY_WORDS = ("info", "low", "medium", "high", "critical")
_SEVERITY_BY_WORD = {word: n for n, word in enumerate(SEVERITY_WORDS)}
# Tenable's UI words for the same states (inferred aliases; the export API documents only the first three).
_STATES = {"OPEN": "OPEN", "REOPENED": "REOPENED", "FIXED": "FIXED", "NEW": "OPEN", "ACTIVE": "OPEN",
           "RESURFACED": "REOPENED", "open": "OPEN", "reopened": "REOPENED", "fixed": "FIXED"}  # fmt: skip
_MODIFICATION = {None: "NONE", "NONE": "NONE", "RECASTED": "RECASTED", "ACCEPTED": "ACCEPTED", "none": "NONE",
                 "recasted": "RECASTED", "accepted": "ACCEPTED"}  # fmt: skip

# -- the schema: only what we read; every attribute may be missing (Tenable omits empty ones) or null --------

Text = str | None
Texts = list[str] | str | None  # a list in today's schema; a single string tolerated
Number = float | str | None


class _Vector(msgspec.Struct, gc=False):
    raw: Text = None


class _Score(msgspec.Struct, gc=False):
    score: Number = None


class _Xref(msgspec.Struct, gc=False):
    type: Text = None
    id: str | int | None = None


class _Plugin(msgspec.Struct, gc=False):
    id: int | str = 0
    name: Text = None
    family: Text = None
    synopsis: Text = None
    description: Text = None
    solution: Text = None
    risk_factor: Text = None
    see_also: Texts = None
    cve: Texts = None
    cvss_base_score: Number = None
    cvss_vector: _Vector | str | None = None
    cvss3_base_score: Number = None
    cvss3_vector: _Vector | str | None = None
    vpr: _Score | None = None
    epss_score: Number = None
    xrefs: list[_Xref] | None = None
    publication_date: Text = None
    patch_publication_date: Text = None
    exploit_available: bool | None = None


class _Asset(msgspec.Struct, gc=False):
    uuid: Text = None
    ipv4: Texts = None
    ipv6: Texts = None
    fqdn: Texts = None
    hostname: Texts = None
    netbios_name: Texts = None
    mac_address: Texts = None
    operating_system: Texts = None


class _Port(msgspec.Struct, gc=False):
    port: int | str | None = 0
    protocol: Text = None
    service: Text = None


class _Scan(msgspec.Struct, gc=False):
    uuid: Text = None


# The words Tenable uses, as Literals: msgspec hands back these very strings (no copy per finding).
_State = Literal["OPEN", "REOPENED", "FIXED", "NEW", "ACTIVE", "RESURFACED", "open", "reopened", "fixed"]
_Word = Literal["info", "low", "medium", "high", "critical", "Info", "Low", "Medium", "High", "Critical",
                "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]  # fmt: skip
_Modification = Literal["NONE", "RECASTED", "ACCEPTED", "none", "recasted", "accepted"]
_NO_OBJECT = msgspec.Raw(b"{}")
_UNSEEN = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Finding(msgspec.Struct, gc=False):
    asset: msgspec.Raw = _NO_OBJECT
    plugin: msgspec.Raw = _NO_OBJECT
    port: msgspec.Raw = _NO_OBJECT
    scan: msgspec.Raw = _NO_OBJECT
    output: Text = None
    finding_id: Text = None
    state: _State | None = None
    severity: _Word | None = None
    severity_id: int | None = None
    severity_default_id: int | None = None
    severity_modification_type: _Modification | None = None
    first_found: datetime | None = None
    last_found: datetime | None = None
    last_fixed: datetime | None = None
    resurfaced_date: datetime | None = None
    indexed: int | datetime | None = None
    source: Text = None


class _AssetRecord(msgspec.Struct, gc=False):
    id: Text = None
    uuid: Text = None  # (inferred) some v2 shapes name it uuid
    hostnames: Texts = None
    fqdns: Texts = None
    ipv4s: Texts = None
    ipv6s: Texts = None
    netbios_names: Texts = None
    mac_addresses: Texts = None
    operating_systems: Texts = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    deleted_at: datetime | None = None
    terminated_at: datetime | None = None


_FINDINGS = msgspec.json.Decoder(list[_Finding])
_FINDING = msgspec.json.Decoder(_Finding)
_ASSETS = msgspec.json.Decoder(list[_AssetRecord])
_ASSET_RECORD = msgspec.json.Decoder(_AssetRecord)
_PLUGIN = msgspec.json.Decoder(_Plugin)
_HOST = msgspec.json.Decoder(_Asset)
_PORT = msgspec.json.Decoder(_Port | None)
_SCAN = msgspec.json.Decoder(_Scan | None)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(slots=True)
class VulnChunkRecords:
    """What one vulnerability chunk held: its findings, and the records set aside (with reasons)."""

    findings: list[ExportFinding]
    rejected: list[RejectedRecord] = field(default_factory=list)


@dataclass(slots=True)
class AssetChunkRecords:
    """What one asset chunk held: its assets, and the records set aside (with reasons)."""

    assets: list[ExportAsset]
    rejected: list[RejectedRecord] = field(default_factory=list)


# -- reading -----------------------------------------------------------------------------------------------


def read_vuln_chunk(data: bytes) -> VulnChunkRecords:
    """Decode and normalise one vulnerability export chunk (a JSON array of findings).

    Raises `FormatError` when the bytes are not a JSON array (invalid, truncated or empty).
    """
    with _collector_paused():
        structs, rejected = _decode(data, _FINDINGS, _FINDING)
        chunk = _VulnChunk()
        findings = []
        append = findings.append
        for index, struct in enumerate(structs):
            try:
                append(chunk.finding(struct))
            except (
                msgspec.ValidationError,
                ValueError,
            ) as exc:  # an asset or plugin object of the wrong shape
                rejected.append(RejectedRecord(_index(structs, index), str(exc)))
    rejected.sort(key=lambda r: r.index)
    return VulnChunkRecords(findings, rejected)


def read_asset_chunk(data: bytes) -> AssetChunkRecords:
    """Decode and normalise one asset export chunk (a JSON array of assets, v1 or v2).

    Raises `FormatError` when the bytes are not a JSON array; an asset without an id is set aside.
    """
    structs, rejected = _decode(data, _ASSETS, _ASSET_RECORD)
    assets = []
    for index, record in enumerate(structs):
        uuid = _name(record.id or record.uuid, NAME_MAX)
        if uuid is None:
            rejected.append(RejectedRecord(_index(structs, index), "The asset has no id."))
            continue
        assets.append(
            ExportAsset(
                uuid=uuid,
                hostnames=_names(record.hostnames),
                fqdns=_names(record.fqdns),
                ipv4s=_names(record.ipv4s),
                ipv6s=_names(record.ipv6s),
                netbios_names=_names(record.netbios_names),
                mac_addresses=_names(record.mac_addresses),
                operating_systems=_names(record.operating_systems, PLUGIN_NAME_MAX),
                created_at=_aware(record.created_at),
                updated_at=_aware(record.updated_at),
                first_seen=_aware(record.first_seen),
                last_seen=_aware(record.last_seen),
                deleted_at=_aware(record.deleted_at),
                terminated_at=_aware(record.terminated_at),
            )
        )
    rejected.sort(key=lambda r: r.index)
    return AssetChunkRecords(assets, rejected)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one chunk's records are built.

    The records hold no cycles, yet building tens of thousands of them triggers full collections that cost a
    quarter of the time. Restored afterwards only if it was on (so concurrent readers leave it on).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Kept(list):
    """The records that fit, with their positions in the chunk (only built when some did not)."""

    positions: list[int]


def _index(structs: list, n: int) -> int:
    return structs.positions[n] if isinstance(structs, _Kept) else n


def _decode(data: bytes, whole: msgspec.json.Decoder, one: msgspec.json.Decoder) -> tuple[list, list]:
    """(structs, [RejectedRecord]): the whole array at once, or record by record when some record does not fit."""
    try:
        return whole.decode(data), []
    except msgspec.ValidationError:
        pass  # valid JSON, but some record has the wrong shape: find which, keep the others
    except msgspec.DecodeError as exc:
        raise FormatError(_unreadable(data, exc)) from None
    try:
        raws = _RAW_LIST.decode(data)  # checks the syntax of the whole chunk
    except msgspec.ValidationError:  # (a subclass of DecodeError) not an array: is it JSON at all?
        try:
            msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise FormatError(_unreadable(data, exc)) from None
        raise FormatError("The chunk is JSON but not an array of records.") from None
    except msgspec.DecodeError as exc:
        raise FormatError(_unreadable(data, exc)) from None
    kept, rejected = _Kept(), []
    kept.positions = []
    for index, raw in enumerate(raws):
        try:
            kept.append(one.decode(raw))
        except msgspec.ValidationError as exc:
            rejected.append(RejectedRecord(index, str(exc)))
        else:
            kept.positions.append(index)
    return kept, rejected


def _unreadable(data: bytes, exc: Exception) -> str:
    if not data.strip():
        return "The chunk is empty."
    detail = str(exc)
    if "truncated" in detail.lower():
        return f"The chunk is cut short ({len(data):,} bytes): {detail}."
    return f"The chunk is not valid JSON: {detail}."


# -- normalising ---------------------------------------------------------------------------------------------


class _RawCache:
    """Values made once per distinct JSON object (by its exact bytes), found by length, then by comparison.

    Cheaper than hashing kilobytes per finding: objects of one length are few and differ early. A length
    shared by many distinct objects (scan or port objects of one shape) switches to hashing the bytes.
    """

    CROWDED = 8

    def __init__(self, make: Callable[[msgspec.Raw], Any]) -> None:
        self.make = make
        self.buckets: dict[int, list[tuple[msgspec.Raw, Any]] | dict[bytes, Any]] = {}

    def get(self, raw: msgspec.Raw) -> Any:
        bucket = self.buckets.get(len(raw))
        if bucket is None:
            bucket = self.buckets[len(raw)] = []
        elif type(bucket) is dict:
            key = bytes(raw)
            value = bucket.get(key, _UNSEEN)
            if value is _UNSEEN:
                value = bucket[key] = self.make(raw)
            return value
        else:
            for seen, value in bucket:
                if seen == raw:
                    return value
        value = self.make(raw)
        bucket.append((raw, value))
        if len(bucket) >= self.CROWDED:
            self.buckets[len(raw)] = {bytes(seen): made for seen, made in bucket}
        return value


class _VulnChunk:
    """Normalises the findings of one chunk, decoding each distinct asset and plugin object once."""

    def __init__(self) -> None:
        self.hosts = _RawCache(lambda raw: _host(_HOST.decode(raw)))
        self.plugins = _RawCache(lambda raw: _plugin(_PLUGIN.decode(raw)))
        self.ports = _RawCache(lambda raw: _port_fields(_PORT.decode(raw) or _Port()))
        self.scans = _RawCache(lambda raw: (_SCAN.decode(raw) or _Scan()).uuid or None)
        self.last_asset: msgspec.Raw | None = None
        self.last_host: HostRecord | None = None

    def finding(self, f: _Finding) -> ExportFinding:
        # Findings of one asset usually follow each other: compare with the last asset first.
        if f.asset == self.last_asset:
            host = self.last_host
        else:
            host = self.hosts.get(f.asset)
            self.last_asset, self.last_host = f.asset, host
        plugin = self.plugins.get(f.plugin)
        severity = f.severity_id
        if severity is None or not 0 <= severity <= 4:
            severity = _SEVERITY_BY_WORD.get((f.severity or "").lower(), 0)
        default = f.severity_default_id
        if default is None or not 0 <= default <= 4:
            default = severity
        state = _STATES[f.state or "OPEN"]
        modification = _MODIFICATION[f.severity_modification_type]
        output = f.output
        if output is not None:
            output = output.strip("\r\n")
            if len(output) > PLUGIN_OUTPUT_MAX:
                output = output[: PLUGIN_OUTPUT_MAX - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
        number, protocol, service = self.ports.get(f.port)
        first, last, fixed, resurfaced = f.first_found, f.last_found, f.last_fixed, f.resurfaced_date
        if (first is not None and first.tzinfo is None) or (last is not None and last.tzinfo is None):
            first, last = _aware(first), _aware(last)
        if (fixed is not None and fixed.tzinfo is None) or (
            resurfaced is not None and resurfaced.tzinfo is None
        ):
            fixed, resurfaced = _aware(fixed), _aware(resurfaced)
        indexed = f.indexed
        (plugin_id, name, family, synopsis, description, solution, risk, cvss, cvss_vector, cvss3, cvss3_vector,
         cves, cwes, see_also, vpr, epss, published, patched, exploit) = plugin  # fmt: skip
        return ExportFinding(
            plugin_id,
            name,
            family,
            severity,
            number,
            protocol,
            service,
            synopsis,
            description,
            solution,
            output,
            risk or _RISK_BY_SEVERITY[default],
            cvss,
            cvss_vector,
            cvss3,
            cvss3_vector,
            cves,
            cwes,
            see_also,
            vpr,
            epss,
            published,
            patched,
            exploit,
            host=host,
            finding_id=f.finding_id or None,
            state=state,
            severity_default=default,
            severity_modification=modification,
            first_found=first,
            last_found=last,
            last_fixed=fixed,
            resurfaced=resurfaced,
            indexed=_epoch(indexed) if type(indexed) is int else _aware(indexed),  # type: ignore[arg-type]
            source=f.source or None,
            scan_uuid=self.scans.get(f.scan),
        )


def _port_fields(port: _Port) -> tuple[int, str, str]:
    """(port, protocol, service): TCP → "tcp"; a finding without a port is host-level (0, "tcp")."""
    protocol = (port.protocol or "").strip().lower()[:NAME_MAX] or "tcp"
    return _port(port.port), protocol, _name(port.service, NAME_MAX) or ""


def _host(a: _Asset) -> HostRecord:
    uuid = _name(a.uuid, NAME_MAX)
    ip = _first(a.ipv4) or _first(a.ipv6)
    fqdn = _first(a.fqdn)
    hostname = _first(a.hostname)
    return HostRecord(
        name=(hostname or fqdn or ip or uuid or "")[:NAME_MAX],
        ip=_name(ip, NAME_MAX),
        fqdn=_name(fqdn or hostname, NAME_MAX),
        netbios=_name(_first(a.netbios_name), NAME_MAX),
        os=_joined(a.operating_system),
        mac=_joined(a.mac_address),
        host_uuid=uuid,
        start=None,
        end=None,
    )


def _plugin(p: _Plugin) -> tuple:
    """The plugin's normalised fields, in `FindingRecord` order (computed once per distinct plugin object)."""
    cwes: dict[str, None] = {}
    for xref in p.xrefs or ():
        if (xref.type or "").strip().upper() == "CWE" and xref.id not in (None, "") and len(cwes) < LIST_MAX:
            cwes.setdefault(_cwe(str(xref.id)))
    see_also = p.see_also.splitlines() if isinstance(p.see_also, str) else (p.see_also or ())
    return (
        _port(p.id),
        _name(p.name, PLUGIN_NAME_MAX) or "",
        _name(p.family, NAME_MAX) or "",
        _text(p.synopsis),
        _text(p.description),
        _text(p.solution),
        _RISK.get((p.risk_factor or "").strip().lower()),
        _float(p.cvss_base_score),
        _vector(p.cvss_vector),
        _float(p.cvss3_base_score),
        _vector(p.cvss3_vector),
        _names(p.cve)[:LIST_MAX],
        list(cwes),
        list(dict.fromkeys(u.strip()[:URL_MAX] for u in see_also if u and u.strip()))[:LIST_MAX],
        _float(p.vpr.score) if p.vpr is not None else None,
        _float(p.epss_score),
        _date(p.publication_date),
        _date(p.patch_publication_date),
        p.exploit_available,
    )


def _port(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _vector(value: _Vector | str | None) -> str | None:
    return _name(value.raw if isinstance(value, _Vector) else value, NAME_MAX)


def _first(value: list[str] | str | None) -> str | None:
    if isinstance(value, list):
        return next((v for v in value if v), None)
    return value or None


def _names(value: list[str] | str | None, limit: int = NAME_MAX) -> list[str]:
    items = [value] if isinstance(value, str) else (value or ())
    return [v.strip()[:limit] for v in items if v and v.strip()]


def _joined(value: list[str] | str | None) -> str | None:
    """Several values one per line (operating systems, MAC addresses), capped like `.nessus`."""
    return _name("\n".join(_names(value, PLUGIN_NAME_MAX)), PLUGIN_NAME_MAX)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def _epoch(seconds: int) -> datetime | None:
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None
