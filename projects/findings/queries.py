"""Reading findings without counting a million rows to draw a page: the flat list, pages, grouping by plugin
or host, hosts with their open counts, and one finding's history.

Lists fetch one row more than they show, and totals are capped (`COUNT_CAP`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from ..choices import SEVERITIES_DESC, SEVERITY_BADGE, FindingState, Severity
from ..models import Asset, Finding, FindingEvent, Plugin, Project, RunAsset, ScanRun
from .filters import (
    FindingFilters,
    _int,
    _text,
    filter_findings,
    last_seen_expr,
    order_findings,
    triage_status_expr,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000  # totals above this show as "10,000+"; counting further costs a scan of every match
MAX_OFFSET = 10_000  # the deepest row reachable by paging; beyond it, narrow the filters or export CSV


LIST_FIELDS = (
    "id",
    "project_id",
    "port",
    "protocol",
    "severity",
    "effective_severity",
    "state",
    "triage",
    "triage_until",
    "first_seen",
    "last_seen",
    "asset__id",
    "asset__name",
    "asset__ip",
    "asset__last_seen",
    "plugin__plugin_id",
    "plugin__name",
    "plugin__family",
)


def list_findings(project: Project, filters: FindingFilters, today: date | None = None) -> Page:
    """One page of the flat list. The page's ids come first from a narrow, index-ordered query; only those
    rows are then loaded with host and plugin, so deep pages do not join thousands of skipped rows."""
    today = today or timezone.localdate()
    matching = filter_findings(project, filters, today)
    ordered = order_findings(matching, filters.sort, filters.state)
    page = paginate(ordered.values_list("pk", flat=True), filters.page, count_qs=matching)
    rows = (
        Finding.objects.filter(project=project, pk__in=page.rows)
        .select_related("asset", "plugin")
        .only(*LIST_FIELDS)
        .annotate(seen_at=last_seen_expr(), triage_status=triage_status_expr(today))
        .in_bulk()
    )
    page.rows = [rows[pk] for pk in page.rows if pk in rows]
    return page


# ---------------------------------------------------------------------------
# Pages without COUNT(*) over everything
# ---------------------------------------------------------------------------
@dataclass
class Page:
    """One page of rows: `total` is exact up to `COUNT_CAP`, else `None` with `capped` set."""

    rows: list
    number: int
    start: int
    end: int
    has_previous: bool
    has_next: bool
    total: int | None
    capped: bool
    cap: int = 0

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1


def paginate(qs: QuerySet, page: int, count_qs: QuerySet | None = None) -> Page:
    """Fetch one row past the page to know whether another follows; count at most `COUNT_CAP` matches."""
    last_page = MAX_OFFSET // PAGE_SIZE
    number = max(1, min(page, last_page))
    offset = (number - 1) * PAGE_SIZE
    rows = list(qs[offset : offset + PAGE_SIZE + 1])
    has_next = len(rows) > PAGE_SIZE and number < last_page
    rows = rows[:PAGE_SIZE]
    if not rows and number > 1:
        # Past the end (a stale link): show the first page rather than an empty one.
        return paginate(qs, 1, count_qs)
    if not has_next and len(rows) < PAGE_SIZE:
        total, capped = offset + len(rows), False
    else:
        counted = (count_qs if count_qs is not None else qs).order_by()[: COUNT_CAP + 1].count()
        total, capped = (None, True) if counted > COUNT_CAP else (counted, False)
    return Page(
        rows=rows,
        number=number,
        start=offset + 1 if rows else 0,
        end=offset + len(rows),
        has_previous=number > 1,
        has_next=has_next,
        total=total,
        capped=capped,
        cap=COUNT_CAP,
    )


def paginate_groups(groups: QuerySet, page: int) -> Page:
    """Pages of an aggregate: computing any page costs the whole aggregation, so fetch up to `COUNT_CAP`
    groups in that one query and slice (no second query to count them)."""
    rows = list(groups[: COUNT_CAP + 1])
    capped = len(rows) > COUNT_CAP
    rows = rows[:COUNT_CAP]
    last_page = max(1, -(-len(rows) // PAGE_SIZE))
    number = max(1, min(page, last_page))
    offset = (number - 1) * PAGE_SIZE
    shown = rows[offset : offset + PAGE_SIZE]
    return Page(
        rows=shown,
        number=number,
        start=offset + 1 if shown else 0,
        end=offset + len(shown),
        has_previous=number > 1,
        has_next=number < last_page,
        total=None if capped else len(rows),
        capped=capped,
        cap=COUNT_CAP,
    )


# ---------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------
def _severity_counts(prefix: str = "") -> dict[str, Count]:
    return {
        f"{prefix}{SEVERITY_BADGE[s]}": Count("id", filter=Q(effective_severity=s)) for s in SEVERITIES_DESC
    }


def group_by_plugin(qs: QuerySet[Finding], page: int) -> Page:
    """One row per vulnerability with the hosts (and findings) it affects, worst first.

    Distinct hosts are counted for the shown page only: COUNT(DISTINCT) over every match is the slow part."""
    groups = (
        qs.order_by()
        .values("plugin_id")
        .annotate(findings=Count("*"), top_severity=Max("effective_severity"), first_seen=Min("first_seen"))
        .order_by("-top_severity", "-findings", "plugin_id")
    )
    result = paginate_groups(groups, page)
    ids = [row["plugin_id"] for row in result.rows]
    hosts = dict(
        qs.filter(plugin_id__in=ids)
        .order_by()
        .values("plugin_id")
        .annotate(hosts=Count("asset_id", distinct=True))
        .values_list("plugin_id", "hosts")
    )
    plugins = Plugin.objects.only("plugin_id", "name", "family").in_bulk(ids)
    for row in result.rows:
        row["plugin"] = plugins.get(row["plugin_id"])
        row["hosts"] = hosts.get(row["plugin_id"], 0)
        row["badge"] = SEVERITY_BADGE[row["top_severity"]]
        row["severity_label"] = Severity(row["top_severity"]).label
    return result


def group_by_host(qs: QuerySet[Finding], page: int) -> Page:
    """One row per host with its findings by severity, worst hosts first."""
    groups = (
        qs.order_by()
        .values("asset_id")
        .annotate(findings=Count("id"), **_severity_counts())
        .order_by("-critical", "-high", "-medium", "-low", "-findings", "asset_id")
    )
    result = paginate_groups(groups, page)
    assets = Asset.objects.only("id", "name", "ip", "fqdn", "os").in_bulk(
        [row["asset_id"] for row in result.rows]
    )
    for row in result.rows:
        row["asset"] = assets.get(row["asset_id"])
    return result


# ---------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------
HOST_SORTS = {"name": ("name", "id"), "-name": ("-name", "-id"), "last_seen": ("last_seen", "id")}
HOST_SORTS["-last_seen"] = ("-last_seen", "-id")


def open_counts_by_host(project: Project, asset_ids: list[int]) -> dict[int, dict[str, int]]:
    """Open, untriaged findings per host and severity, for the given hosts, in one aggregate query."""
    counts: dict[int, dict[str, int]] = {pk: {b: 0 for b in SEVERITY_BADGE.values()} for pk in asset_ids}
    rows = (
        Finding.objects.filter(project=project, asset_id__in=asset_ids)
        .needs_attention()
        .values("asset_id", "effective_severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["asset_id"]][SEVERITY_BADGE[row["effective_severity"]]] = row["n"]
    for value in counts.values():
        value["total"] = sum(value.values())
    return counts


def list_hosts(project: Project, query: QueryDict) -> tuple[Page, dict[str, Any]]:
    """A page of the project's hosts, filtered by name/IP text, with open counts by severity per host."""
    text = _text(query.get("q"))
    sort = query.get("sort", "name")
    sort = sort if sort in HOST_SORTS else "name"
    qs = Asset.objects.filter(project=project).only(
        "id", "project_id", "name", "ip", "fqdn", "netbios", "os", "first_seen", "last_seen"
    )
    if text:
        qs = qs.filter(
            Q(name__icontains=text)
            | Q(ip__startswith=text)
            | Q(fqdn__icontains=text)
            | Q(netbios__icontains=text)
        )
    page = paginate(qs.order_by(*HOST_SORTS[sort]), _int(query.get("page"), 1, 10**6) or 1)
    counts = open_counts_by_host(project, [asset.pk for asset in page.rows])
    for asset in page.rows:
        asset.open_counts = counts[asset.pk]
    params = {"q": text, "sort": sort}
    return page, params


# ---------------------------------------------------------------------------
# One finding's history
# ---------------------------------------------------------------------------
@dataclass
class HistoryItem:
    """One line of a finding's history: something that happened, or a run that covered its host."""

    at: datetime
    kind: str
    title: str
    run: ScanRun | None = None
    actor: Any = None
    note: str = ""


HISTORY_RUNS = 30


def finding_history(finding: Finding) -> tuple[list[HistoryItem], int]:
    """Events and the runs of its profile that covered its host since it was first seen, newest first.

    Returns the items and how many older covering runs were left out."""
    events = list(finding.events.select_related("run", "actor"))
    items: list[HistoryItem] = []
    if not any(e.kind == FindingEvent.Kind.OPENED for e in events):
        # The importer records opening as `first_run`/`first_seen` rather than an event.
        items.append(
            HistoryItem(finding.first_seen, "opened", "First seen", run=finding.first_run, note="New finding")
        )
    for event in events:
        note = event.note
        if event.kind == FindingEvent.Kind.FIXED and not note:
            note = "Not seen on a host the run covered"
        items.append(
            HistoryItem(event.created_at, event.kind, event.get_kind_display(), event.run, event.actor, note)
        )

    since = finding.first_run.created_at if finding.first_run else finding.first_seen
    covered = (
        RunAsset.objects.filter(asset_id=finding.asset_id, run__project_id=finding.project_id)
        .filter(run__profile_id=finding.profile_id, run__created_at__gte=since)
        .select_related("run")
        .order_by("-run__created_at", "-run_id")
    )
    covering = list(covered[: HISTORY_RUNS + 1])
    more = 0
    if len(covering) > HISTORY_RUNS:
        more = covered.count() - HISTORY_RUNS
        covering = covering[:HISTORY_RUNS]
    event_runs = {item.run.pk for item in items if item.run}
    timeline = sorted(items, key=lambda i: i.at)
    for ra in covering:
        if ra.run_id in event_runs:
            continue
        moment = ra.run.finished_at or ra.run.created_at
        state = _state_at(timeline, moment)
        title, note = (
            ("Seen", "Still present on the host")
            if state != FindingState.FIXED
            else ("Host scanned", "Not found; still fixed")
        )
        items.append(
            HistoryItem(
                moment, "seen" if state != FindingState.FIXED else "absent", title, ra.run, None, note
            )
        )
    items.sort(key=lambda i: (i.at, i.kind != "opened"), reverse=True)
    return items, more


def _state_at(timeline: list[HistoryItem], moment: datetime) -> str:
    state = FindingState.OPEN
    for item in timeline:
        if item.at > moment:
            break
        if item.kind in ("opened", "reopened"):
            state = FindingState.OPEN
        elif item.kind == "fixed":
            state = FindingState.FIXED
    return state
