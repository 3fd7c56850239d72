"""The overview's charts as SVG geometry: the open-findings donut and the per-run trend bars."""

from __future__ import annotations

from typing import Any

from ..choices import SEVERITIES_DESC, SEVERITY_BADGE, Severity
from ..models import ScanRun

DONUT_CIRCUMFERENCE = 100  # the donut's circle has r = 100 / 2π, so dash lengths are percentages
TREND_RUNS = 12


def donut(counts: dict[int, int]) -> list[dict[str, Any]]:
    total = sum(counts.values())
    segments, offset = [], 0.0
    for s in SEVERITIES_DESC:
        n = counts.get(s, 0)
        share = 100 * n / total if total else 0
        segments.append(
            {
                "severity": s,
                "label": Severity(s).label,
                "badge": SEVERITY_BADGE[s],
                "count": n,
                "percent": round(share, 1),
                "dash": f"{share:.3f} {DONUT_CIRCUMFERENCE - share:.3f}",
                # SVG dash offsets run backwards; 25 starts the first segment at twelve o'clock.
                "offset": f"{(25 - offset) % 100:.3f}",
            }
        )
        offset += share
    return segments


def trend(runs: list[ScanRun]) -> dict[str, Any]:
    """Stacked bars (Low..Critical, bottom to top) of findings seen per run, oldest left, as SVG geometry."""
    width, height, gap = 600, 160, 8
    stacked = (1, 2, 3, 4)
    totals = [sum(int(run.count_by_severity.get(str(s), 0) or 0) for s in stacked) for run in runs]
    peak = max(totals, default=0) or 1
    bar_width = (width - gap * (len(runs) - 1)) / len(runs) if runs else 0
    bars = []
    for i, run in enumerate(runs):
        x, y = i * (bar_width + gap), float(height)
        segments = []
        for s in stacked:
            n = int(run.count_by_severity.get(str(s), 0) or 0)
            h = height * n / peak
            y -= h
            if n:
                segments.append({"badge": SEVERITY_BADGE[s], "y": f"{y:.2f}", "h": f"{h:.2f}", "count": n})
        bars.append(
            {
                "run": run,
                "x": f"{x:.2f}",
                "width": f"{bar_width:.2f}",
                "segments": segments,
                "total": totals[i],
                "info": int(run.count_by_severity.get("0", 0) or 0),
            }
        )
    return {"bars": bars, "width": width, "height": height, "peak": max(totals, default=0)}
