"""The `.nessus` v2 export of a run, generated host by host so a big scan never sits whole in memory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

from .data import ScanData
from .model import CutStream, Run, Scan

CHUNK_TARGET = 64 * 1024


class NessusDocuments(ScanData):
    """Streams `.nessus` documents of the simulated runs (for the download route and for benchmarks)."""

    def export_document(self, scan_id: int, history_id: int | None = None) -> Iterator[bytes]:
        """The `.nessus` export of a run as the download streams it (for writing benchmark files)."""
        scan = self._scans[scan_id]
        return self._document(scan, self._run(scan, history_id) if history_id is not None else scan.runs[-1])

    def _document(
        self, scan: Scan, run: Run, *, cut: str | None = None, malformed: bool = False
    ) -> Iterator[bytes]:
        """The document, in pieces of about 64 KiB; `cut` drops the second half, `malformed` breaks XML."""
        k = scan.runs.index(run)
        host_ids = self._hosts_in(scan, run)
        if cut:
            host_ids = host_ids[: max(1, len(host_ids) // 2)]
        yield (
            '<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>'
            f"{escape(scan.policy)}</policyName><Preferences><ServerPreferences><preference><name>TARGET</name>"
            f"<value>{escape(scan.targets or '')}</value></preference></ServerPreferences></Preferences>"
            f'</Policy>\n<Report name={quoteattr(scan.name)} xmlns:cm="http://www.nessus.org/cm">\n'
        ).encode()
        parts: list[str] = []
        size = 0
        for n, i in enumerate(host_ids):
            mark = len(parts)
            self._report_host(parts, scan, run, k, i, malformed=malformed and n == 0)
            size += sum(len(part) for part in parts[mark:])
            if size >= CHUNK_TARGET or len(parts) > 4096:
                yield "".join(parts).encode()
                parts, size = [], 0
        if parts:
            yield "".join(parts).encode()
        if cut == "chunked":
            raise CutStream
        if cut:
            return
        yield b"</Report>\n</NessusClientData_v2>\n"

    def _report_host(
        self, parts: list[str], scan: Scan, run: Run, k: int, i: int, *, malformed: bool
    ) -> None:
        """Append one `<ReportHost>` (its properties, then one `<ReportItem>` per finding) to `parts`."""
        host = self._host(scan, i)
        start = run.creation_date + 60 + 3 * i
        values = {"ip": host.ip, "fqdn": host.fqdn or host.ip, "os": escape(host.os)}
        tags = [
            ("HOST_END_TIMESTAMP", str(start + 600)),
            ("HOST_END", time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(start + 600))),
            ("operating-system", host.os),
            ("mac-address", host.mac),
            ("host-ip", host.ip),
            ("host-uuid", host.uuid),
            ("host-fqdn", host.fqdn),
            ("netbios-name", host.netbios),
            ("HOST_START_TIMESTAMP", str(start)),
            ("HOST_START", time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(start))),
        ]
        parts.append(f'<ReportHost name="{host.ip}"><HostProperties>\n')
        parts.extend(f'<tag name="{name}">{escape(value)}</tag>\n' for name, value in tags if value)
        parts.append("</HostProperties>\n")
        for index in self._found(scan, k, i):
            p = self._plugin_at(index)
            parts.append(p.open_tag)
            parts.append(p.body)
            parts.append(f"<plugin_output>{p.output.format_map(values)}</plugin_output>\n</ReportItem>\n")
        if malformed:
            parts.append('<ReportItem port="80" severity="2"><description>unclosed</ReportItem>\n')
        parts.append("</ReportHost>\n")
