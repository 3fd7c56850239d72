"""Streaming parser for `.nessus` v2 exports: one `HostRecord` at a time, in flat memory, DTDs refused.

Works on a path or any binary stream (a file upload, or the HTTP download from the client). The caller
must stage what it reads and commit only when the iteration ends cleanly: a later error can follow
hosts that were already yielded.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from os import PathLike
from typing import IO, Any

from lxml import etree

from .records import (
    LIST_MAX,
    NAME_MAX,
    PLUGIN_NAME_MAX,
    PLUGIN_OUTPUT_MAX,
    TEXT_MAX,
    TRUNCATED_MARKER,
    URL_MAX,
    FindingRecord,
    FormatError,
    HostRecord,
)

ROOT_TAG = "NessusClientData_v2"
PEEK_BYTES = 64 * 1024

_PARSER_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
_RISK = {
    "none": "None",
    "info": "None",
    "informational": "None",
    "low": "Low",
    "medium": "Medium",
    "moderate": "Medium",
    "high": "High",
    "critical": "Critical",
}
_RISK_BY_SEVERITY = ("None", "Low", "Medium", "High", "Critical")
_SEVERITY = {str(n): n for n in range(5)}
# Child elements of a ReportItem we read (the text of the others is never decoded).
_WANTED = frozenset(
    {
        "plugin_name", "synopsis", "description", "solution", "plugin_output", "risk_factor",
        "cvss_base_score", "cvss_vector", "cvss3_base_score", "cvss3_vector", "cvss", "cvssv3", "vpr_score",
        "epss_score", "plugin_publication_date", "patch_publication_date", "exploit_available",
    }
)  # fmt: skip
_LISTED = frozenset({"cve", "cwe", "xref", "see_also"})  # repeated children, gathered into lists
_LXML_POSITION = re.compile(r",?\s*line \d+, column \d+\s*$")
DTD_REFUSED = "The file contains a DTD or entity declaration, which is not allowed"
CSV_NOT_SUPPORTED = (
    "This is a CSV export: CSV exports are not supported. In Tenable.io, open the scan, choose "
    "Export › Nessus (.nessus), and upload that file."
)
# Byte-order marks, then what libxml2 infers without one (encoding.c, xmlDetectCharEncoding), so the
# prolog check reads the file in the encoding the parser will use.
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_DECLARED = re.compile(r"""\s*<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z][\w.:-]*)["']""")
_HOST_TIME = "%a %b %d %H:%M:%S %Y"


class NessusParseError(FormatError):
    """The file is not a usable `.nessus` v2 export; `message` says why, `line`/`column` say where."""


def iter_hosts(
    source: str | PathLike[str] | IO[bytes], *, on_report: Callable[[str], Any] | None = None
) -> Iterator[HostRecord]:
    """Yield each host of a `.nessus` v2 file; raises `NessusParseError` on anything that is not one.

    `on_report(name)` is called with the Report's name when it starts.
    """
    if isinstance(source, (str, PathLike)):
        with open(source, "rb") as stream:
            yield from _parse(stream, on_report)
    else:
        yield from _parse(source, on_report)


# ---------------------------------------------------------------------------------------------------


class _Replay:
    """Reads the peeked head again, then the rest of the stream: lets us inspect without consuming."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
        else:
            data, self._head = self._head[:size], self._head[size:]
        return data


def _peek(stream: IO[bytes]) -> bytes:
    chunks, size = [], 0
    while size < PEEK_BYTES:
        chunk = stream.read(PEEK_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def head_text(head: bytes) -> str:
    """The first bytes of a file as text, decoded the way libxml2 will decode them (BOM, NULs, declaration)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="replace")
    start = head[:4]
    if start[:2] == b"\x00\x00":
        encoding = "utf-32-be"
    elif start[1:4] == b"\x00\x00\x00":
        encoding = "utf-32-le"
    elif start[:1] == b"\x00":
        encoding = "utf-16-be"
    elif start[1:2] == b"\x00":
        encoding = "utf-16-le"
    elif start == b"\x4c\x6f\xa7\x94":  # "<?xm" in EBCDIC
        encoding = "cp037"
    else:
        encoding = "utf-8"
    text = head.decode(encoding, errors="replace")
    declared = _DECLARED.match(text)
    if declared and encoding == "utf-8":
        # An ASCII-compatible start may declare an encoding that hides markup (UTF-7 writes "<" as "+ADw-").
        try:
            codec = codecs.lookup(declared.group(1)).name
        except LookupError:
            codec = "utf-8"
        if codec not in ("utf-8", "ascii") and not codec.startswith(("utf-16", "utf-32")):
            text = head.decode(codec, errors="replace")
    return text


def looks_like_csv(head: bytes) -> bool:
    """A comma-separated export (Tenable's starts "Plugin ID,CVE,CVSS…"), not XML: say so rather than "not XML"."""
    first = head_text(head).lstrip("\ufeff \t\r\n").split("\n", 1)[0]
    return not first.startswith("<") and first.count(",") >= 2


def check_head(head: bytes) -> None:
    """Refuse DTDs, wrong roots and CSV before lxml sees a byte (a DTD can only sit before the root)."""
    text = head_text(head)
    if not text.strip():
        raise NessusParseError("The .nessus file is empty.")
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n\ufeff":
            pos += 1
        if pos >= end:
            break
        if text.startswith("<?", pos) or text.startswith("<!--", pos):
            closer = "?>" if text.startswith("<?", pos) else "-->"
            close = text.find(closer, pos)
            if close < 0:
                break
            pos = close + len(closer)
            continue
        if text[pos : pos + 9].upper() == "<!DOCTYPE":
            line, column = _position(text, pos)
            doctype = re.match(r"<!DOCTYPE\s+([^\s\[>]+)\s*([^>\[]*)(\[)?", text[pos:], re.IGNORECASE)
            name = doctype.group(1) if doctype else ""
            # A plain <!DOCTYPE html> is a web page, not an attack: say so in plain words.
            if doctype and not doctype.group(3) and name != ROOT_TAG and "<!ENTITY" not in text:
                _wrong_root(name, line, column)
            raise NessusParseError(f"{DTD_REFUSED} (line {line}, column {column}).", line, column)
        start = re.match(r"<([A-Za-z_][-\w.:]*)", text[pos : pos + 300])
        if start:
            name = start.group(1)
            if name != ROOT_TAG:
                _wrong_root(name, *_position(text, pos))
            return
        if looks_like_csv(head):
            raise NessusParseError(CSV_NOT_SUPPORTED)
        break  # not markup we understand: let lxml report where
    if len(head) >= PEEK_BYTES:
        raise NessusParseError(
            f"Not a Nessus v2 export: no <{ROOT_TAG}> root element in the first {PEEK_BYTES // 1024} KB."
        )


def _refuse_dtd(tree: Any) -> None:
    """The parser's own view: any DOCTYPE, in whatever encoding it was written, stops the file."""
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise NessusParseError(DTD_REFUSED + ".")


def _wrong_root(name: str, line: int | None = None, column: int | None = None) -> None:
    raise NessusParseError(
        f"Not a Nessus v2 export: the root element is <{name[:100]}>, expected <{ROOT_TAG}>.", line, column
    )


def _parse(stream: IO[bytes], on_report: Callable[[str], Any] | None) -> Iterator[HostRecord]:
    head = _peek(stream)
    check_head(head)
    # End events only, and only for these tags: half the events of start+end, the parser's main cost.
    context = etree.iterparse(
        _Replay(head, stream),
        events=("end",),
        tag=("ReportItem", "HostProperties", "ReportHost"),
        **_PARSER_OPTIONS,
    )
    properties: dict[str, str] = {}
    items: list[FindingRecord] = []
    report = None
    checked = False
    try:
        for _, elem in context:
            if not checked:  # before the first host is built, let alone yielded
                _refuse_dtd(elem.getroottree())
                checked = True
            tag = elem.tag
            if tag == "ReportItem":
                items.append(_item(elem))
                elem.clear(keep_tail=False)
            elif tag == "HostProperties":
                properties = {t.get("name"): t.text for t in elem}
                elem.clear(keep_tail=False)
            else:
                parent = elem.getparent()
                if parent is not report:  # first host of a Report
                    report = parent
                    root = elem.getroottree().getroot()
                    if root.tag != ROOT_TAG:
                        _wrong_root(str(root.tag))
                    while parent.getprevious() is not None:  # the Policy block: not needed, can be large
                        del parent.getparent()[0]
                    if on_report is not None:
                        on_report(parent.get("name") or "")
                host = _host(elem.get("name"), properties, items)
                elem.clear(keep_tail=False)
                while elem.getprevious() is not None:
                    del parent[0]
                properties, items = {}, []
                yield host
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        detail = _LXML_POSITION.sub("", exc.msg or str(exc)).strip()
        if "Text node too long" in detail:  # libxml2's 10 MB limit, kept on purpose (huge_tree=False)
            raise NessusParseError(
                f"The .nessus file has a text field over 10 MB, which is not accepted (line {line}, column {column}).",
                line,
                column,
            ) from None
        raise NessusParseError(
            f"The .nessus file is not well-formed XML: {detail} (line {line}, column {column}).", line, column
        ) from None
    root = context.root
    if root is not None:
        _refuse_dtd(root.getroottree())
    if root is None or root.tag != ROOT_TAG:
        _wrong_root(str(root.tag) if root is not None else "?")


def _host(name: str | None, props: dict[str, str], items: list[FindingRecord]) -> HostRecord:
    get = props.get
    return HostRecord(
        name=_name(name, NAME_MAX) or "",
        ip=_name(get("host-ip"), NAME_MAX),
        fqdn=_name(get("host-fqdn") or get("hostname"), NAME_MAX),
        netbios=_name(get("netbios-name"), NAME_MAX),
        os=_name(get("operating-system") or get("os"), PLUGIN_NAME_MAX),
        mac=_name(get("mac-address"), PLUGIN_NAME_MAX),
        host_uuid=_name(get("host-uuid") or get("tenable-uuid"), NAME_MAX),
        start=_when(get("HOST_START_TIMESTAMP"), get("HOST_START")),
        end=_when(get("HOST_END_TIMESTAMP"), get("HOST_END")),
        items=items,
    )


def _item(elem: Any) -> FindingRecord:
    attr = elem.get
    fields: dict[str, str | None] = {}
    cves: list[str] = []
    cwes: dict[str, None] = {}  # ordered and de-duplicated
    see_also: dict[str, None] = {}
    for child in elem:
        tag = child.tag
        if tag in _WANTED:
            fields[tag] = child.text
            continue
        if tag not in _LISTED or not (text := child.text):
            continue
        if tag == "cve":
            if len(cves) < LIST_MAX:
                cves.append(text.strip()[:NAME_MAX])
        elif tag == "see_also":  # repeated in Tenable.io exports, newline-separated in Nessus ones
            for url in text.splitlines():
                if url.strip() and len(see_also) < LIST_MAX:
                    see_also.setdefault(url.strip()[:URL_MAX])
        elif tag == "cwe" or text.lstrip()[:4].upper() == "CWE:":  # xref: "CWE:79", "OWASP:2017-A7", …
            if len(cwes) < LIST_MAX:
                cwes.setdefault(_cwe(text))
    get = fields.get
    severity = _SEVERITY.get(attr("severity") or "")
    if severity is None:
        severity = min(max(_int(attr("severity")), 0), 4)
    risk = _RISK.get((get("risk_factor") or "").strip().lower()) or _RISK_BY_SEVERITY[severity]
    output = get("plugin_output")
    if output is not None:
        output = output.strip("\r\n")
        if len(output) > PLUGIN_OUTPUT_MAX:
            output = output[: PLUGIN_OUTPUT_MAX - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
    exploit = get("exploit_available")
    return FindingRecord(
        plugin_id=_int(attr("pluginID")),
        plugin_name=_name(attr("pluginName") or get("plugin_name"), PLUGIN_NAME_MAX) or "",
        plugin_family=_name(attr("pluginFamily"), NAME_MAX) or "",
        severity=severity,
        port=_int(attr("port")),
        protocol=(_name(attr("protocol"), NAME_MAX) or "").lower(),
        service=_name(attr("svc_name"), NAME_MAX) or "",
        synopsis=_text(get("synopsis")),
        description=_text(get("description")),
        solution=_text(get("solution")),
        plugin_output=output,
        risk_factor=risk,
        cvss_base_score=_float(get("cvss_base_score") or get("cvss")),
        cvss_vector=_name(get("cvss_vector"), NAME_MAX),
        cvss3_base_score=_float(get("cvss3_base_score") or get("cvssv3")),
        cvss3_vector=_name(get("cvss3_vector"), NAME_MAX),
        cves=cves,
        cwes=list(cwes),
        see_also=list(see_also),
        vpr_score=_float(get("vpr_score")),
        epss_score=_float(get("epss_score")),
        publication_date=_date(get("plugin_publication_date")),
        patch_date=_date(get("patch_publication_date")),
        exploit_available=None if exploit is None else exploit.strip().lower() == "true",
    )


def _cwe(value: str) -> str:
    """One stored form for a CWE: its number ("79" from "79", "CWE-79" or the xref "CWE:79"); other text as is."""
    text = value.strip()
    number = re.fullmatch(r"(?:CWE\s*[-:]\s*)*0*(\d{1,9})", text, re.IGNORECASE)
    return number.group(1) if number else text[:NAME_MAX]


def _name(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] if value else None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > TEXT_MAX:
        return value[: TEXT_MAX - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
    return value or None


def _int(value: str | None) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _float(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


_DATES: dict[str, date | None] = {}


def _date(value: str | None) -> date | None:
    """`2010/12/15` (Nessus) or `2017-03-31T00:00:00+00:00` (Web App Scanning)."""
    if not value:
        return None
    try:
        return _DATES[value]
    except KeyError:
        pass
    text = value.strip()
    try:
        parsed: date | None = date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        parsed = None
    if len(_DATES) < 100_000:
        _DATES[value] = parsed
    return parsed


def _when(timestamp: str | None, text: str | None) -> datetime | None:
    """Host start/end: the epoch tag when present, else the text form, read as UTC (inferred)."""
    if timestamp and timestamp.strip().isdigit():
        try:
            return datetime.fromtimestamp(int(timestamp), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    if not text:
        return None
    text = text.strip()
    try:
        return datetime.strptime(text, _HOST_TIME).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
