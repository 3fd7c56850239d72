"""A project's overview: open findings by severity, the last run, the trend, its profiles and worst hosts.

A fixed number of queries whatever the data size.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from ..choices import (
    ACTIVE_RUN_STATUSES,
    RUN_BADGE,
    SEVERITIES_DESC,
    SEVERITY_BADGE,
    RunStatus,
    Severity,
    Triage,
)
from ..models import Asset, Finding, FindingQuerySet, Project, ScannerProfile, ScanRun
from ..profiles import schedules
from .charts import TREND_RUNS, donut, trend

log = logging.getLogger(__name__)


def next_run_at(profile: ScannerProfile) -> datetime | None:
    """When the profile's schedule runs next; a broken schedule must not break the overview."""
    try:
        return schedules.next_run_at(profile)
    except Exception:
        log.exception("next_run_at failed for profile %s", profile.pk)
        return None


def _triaged_open(project: Project, today: date) -> QuerySet[Finding]:
    """Open findings under an active triage: few, and found through the partial index on triaged rows."""
    return (
        Finding.objects.filter(project=project)
        .open()
        .exclude(triage=Triage.NONE)
        .exclude(FindingQuerySet.expired_acceptance_q(today))
    )


def top_hosts(project: Project, limit: int = 8, today: date | None = None) -> list[dict[str, Any]]:
    """The hosts with the most open, untriaged critical and high findings.

    Counting all open findings reads only an index; the few triaged ones are then subtracted. A host's
    count can only drop, so the true top `limit` lies within the first `limit` + (hosts with triage)."""
    today = today or timezone.localdate()
    by_severity = {
        "critical": Count("effective_severity", filter=Q(effective_severity=Severity.CRITICAL)),
        "high": Count("effective_severity", filter=Q(effective_severity=Severity.HIGH)),
    }
    triaged = {
        row["asset_id"]: row
        for row in _triaged_open(project, today)
        .filter(effective_severity__gte=Severity.HIGH)
        .values("asset_id")
        .annotate(**by_severity)
        .order_by()
    }
    rows = list(
        Finding.objects.filter(project=project, effective_severity__gte=Severity.HIGH)
        .open()
        .values("asset_id")
        .annotate(**by_severity)
        .order_by("-critical", "-high", "asset_id")[: limit + len(triaged)]
    )
    for row in rows:
        minus = triaged.get(row["asset_id"], {})
        row["critical"] -= minus.get("critical", 0)
        row["high"] -= minus.get("high", 0)
    rows = sorted(
        (r for r in rows if r["critical"] or r["high"]),
        key=lambda r: (-r["critical"], -r["high"], r["asset_id"]),
    )
    rows = rows[:limit]
    assets = (
        Asset.objects.filter(project=project)
        .only("id", "name", "ip", "os")
        .in_bulk([r["asset_id"] for r in rows])
    )
    for row in rows:
        row["asset"] = assets.get(row["asset_id"])
    return rows


def _severity_histogram(qs: QuerySet[Finding]) -> list[tuple[int, int]]:
    return list(
        qs.values("effective_severity")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("effective_severity", "n")
    )


def project_overview(project: Project) -> dict[str, Any]:
    """Everything the project's overview shows, in a fixed number of queries whatever the data size."""
    today = timezone.localdate()
    # All open findings per severity (an index-only count), minus the few under an active triage.
    by_severity = {s: 0 for s in SEVERITIES_DESC}
    for severity, n in _severity_histogram(Finding.objects.filter(project=project).open()):
        by_severity[severity] += n
    triaged = 0
    for severity, n in _severity_histogram(_triaged_open(project, today)):
        by_severity[severity] -= n
        triaged += n
    open_total = sum(by_severity.values())

    finished = list(
        project.runs.filter(status=RunStatus.SUCCEEDED)
        .select_related("profile")
        .order_by("-created_at", "-id")[:TREND_RUNS]
    )
    latest = finished[0] if finished else None

    last_run_ids = Subquery(
        ScanRun.objects.filter(profile=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    )
    profiles = list(
        project.profiles.select_related("periodic_task__crontab")
        .defer("webhook_secret", "webhook_previous_secret")
        .annotate(last_run_pk=last_run_ids)
        .order_by("name")
    )
    last_runs = ScanRun.objects.in_bulk([p.last_run_pk for p in profiles if p.last_run_pk])
    for profile in profiles:
        profile.latest_run = last_runs.get(profile.last_run_pk)
        profile.latest_run_badge = (
            RUN_BADGE.get(profile.latest_run.status, "neutral") if profile.latest_run else ""
        )
        profile.next_run = next_run_at(profile) if profile.scheduler_enabled else None

    return {
        "open_total": open_total,
        "open_by_severity": by_severity,
        "triaged_open": triaged,
        "donut": donut(by_severity),
        "latest_run": latest,
        "trend": trend(list(reversed(finished))),
        "trend_legend": [(Severity(s).label, SEVERITY_BADGE[s]) for s in (4, 3, 2, 1)],
        "profiles": profiles,
        "top_hosts": top_hosts(project, today=today),
        "has_findings": open_total or triaged or Finding.objects.filter(project=project).exists(),
        "active_runs": project.runs.filter(status__in=ACTIVE_RUN_STATUSES).count(),
    }
