"""The findings list as CSV: rows streamed in batches (a million never sit in memory), cells made safe."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from ..choices import Severity
from ..models import Finding
from .filters import TRIAGE_STATUS_LABELS

CSV_HEADER = [
    "host",
    "ip",
    "fqdn",
    "plugin id",
    "plugin name",
    "family",
    "severity",
    "effective severity",
    "port",
    "protocol",
    "state",
    "triage",
    "first seen",
    "last seen",
    "CVEs",
]
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_BATCH = 2000


def csv_cell(value) -> str:
    """A cell that spreadsheet programs will not evaluate as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(qs: QuerySet[Finding]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    labels = {s.value: s.label for s in Severity}
    yield writer.writerow(CSV_HEADER)
    batch: list[str] = []
    for row in qs.iterator(chunk_size=CSV_BATCH):
        (
            host,
            ip,
            fqdn,
            plugin_id,
            name,
            family,
            sev,
            eff,
            port,
            protocol,
            state,
            triage,
            first,
            last,
            cves,
        ) = row
        batch.append(
            writer.writerow(
                [
                    csv_cell(host),
                    csv_cell(ip),
                    csv_cell(fqdn),
                    plugin_id,
                    csv_cell(name),
                    csv_cell(family),
                    labels.get(sev, sev),
                    labels.get(eff, eff),
                    port,
                    csv_cell(protocol),
                    state,
                    TRIAGE_STATUS_LABELS.get(triage, triage),
                    first.isoformat() if first else "",
                    last.isoformat() if last else "",
                    csv_cell(" ".join(str(c) for c in cves or [])),
                ]
            )
        )
        if len(batch) >= CSV_BATCH:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
