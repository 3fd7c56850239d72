"""Reviewing findings: the list's filters and sorts (allowlisted, parsed defensively), the "last seen" rule,
grouping by plugin or host, host counts, a finding's history and the project overview's numbers.

Nothing here counts a million rows to draw a page: lists fetch one row more than they show, and totals are
capped (`COUNT_CAP`). Every queryset starts from one project, so nothing of another project can leak in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Case, CharField, Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Value, When
from django.http import QueryDict
from django.utils import timezone

from .choices import ACTIVE_RUN_STATUSES, RUN_BADGE, SEVERITY_BADGE, FindingState, RunStatus, Severity, Triage
from .models import Asset, Finding, FindingEvent, Plugin, Project, RunAsset, ScannerProfile, ScanRun

log = logging.getLogger(__name__)

PAGE_SIZE = 50
COUNT_CAP = 10_000  # totals above this show as "10,000+"; counting further costs a scan of every match
MAX_OFFSET = 10_000  # the deepest row reachable by paging; beyond it, narrow the filters or export CSV
OPEN_STATES = (FindingState.OPEN, FindingState.REOPENED)
SEVERITIES_DESC = (4, 3, 2, 1, 0)


# ---------------------------------------------------------------------------
# The rules every query shares
# ---------------------------------------------------------------------------
# `prefix` lets other models use the same rules through a relation, e.g. `needs_attention_q(prefix="findings__")`.
def open_q(prefix: str = "") -> Q:
    """ "Open" in the UI: open or reopened."""
    return Q(**{f"{prefix}state__in": OPEN_STATES})


def expired_acceptance_q(today: date | None = None, prefix: str = "") -> Q:
    """An accepted risk past its date counts as untriaged again, even before `expire_acceptances` runs."""
    return Q(
        **{
            f"{prefix}triage": Triage.RISK_ACCEPTED,
            f"{prefix}triage_until__lt": today or timezone.localdate(),
        }
    )


def untriaged_q(today: date | None = None, prefix: str = "") -> Q:
    return Q(**{f"{prefix}triage": Triage.NONE}) | expired_acceptance_q(today, prefix)


def needs_attention_q(today: date | None = None, prefix: str = "") -> Q:
    """Open and not triaged (an expired acceptance is not triaged): what every page and the API count as open."""
    return open_q(prefix) & untriaged_q(today, prefix)


def last_seen_expr() -> Case:
    """The importer does not rewrite unchanged findings, so an open finding was last seen when its host was."""
    return Case(When(state=FindingState.FIXED, then=F("last_seen")), default=F("asset__last_seen"))


def last_seen(finding: Finding) -> datetime:
    """`last_seen_expr` for one loaded finding (with its asset)."""
    return finding.last_seen if finding.state == FindingState.FIXED else finding.asset.last_seen


def triage_status_expr(today: date | None = None) -> Case:
    """The triage a person sees: "expired" for an acceptance past its date, else the stored value."""
    return Case(
        When(expired_acceptance_q(today), then=Value("expired")),
        default=F("triage"),
        output_field=CharField(),
    )


TRIAGE_STATUS_LABELS = {
    "": "",
    Triage.FALSE_POSITIVE: "False positive",
    Triage.RISK_ACCEPTED: "Risk accepted",
    "expired": "Acceptance expired",
}


def triage_status(finding: Finding, today: date | None = None) -> str:
    """The same rule as `triage_status_expr`, for one loaded finding."""
    today = today or timezone.localdate()
    if finding.triage == Triage.RISK_ACCEPTED and finding.triage_until and finding.triage_until < today:
        return "expired"
    return finding.triage


# ---------------------------------------------------------------------------
# Filters: parsed from the query string, never passed through to the ORM
# ---------------------------------------------------------------------------
STATE_CHOICES = [
    ("open", "Open"),
    ("reopened", "Reopened only"),
    ("fixed", "Fixed"),
    ("any", "Any state"),
]
TRIAGE_CHOICES = [
    ("none", "Not triaged"),
    ("false_positive", "False positive"),
    ("risk_accepted", "Risk accepted"),
    ("expired", "Expired acceptance"),
    ("any", "Any triage"),
]
CHANGE_CHOICES = [("new", "New in run"), ("fixed", "Fixed in run"), ("reopened", "Reopened in run")]
GROUP_CHOICES = [("", "Findings"), ("plugin", "By vulnerability"), ("host", "By host")]

# Sort key -> ORDER BY fields (ascending); "-key" reverses all of them. The id keeps pages stable.
SORTS = {
    "severity": ("effective_severity", "id"),
    "tenable_severity": ("severity", "id"),
    "plugin": ("plugin__name", "id"),
    "plugin_id": ("plugin_id", "id"),
    "host": ("asset__name", "asset_id", "id"),
    "port": ("port", "id"),
    "state": ("state", "id"),
    "first_seen": ("first_seen", "id"),
    "last_seen": ("seen_at", "id"),
}
DEFAULT_SORT = "-severity"

MAX_TEXT = 200


def _int(value: Any, lo: int, hi: int) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if lo <= number <= hi else None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def _text(value: Any) -> str:
    # PostgreSQL rejects NUL in a string literal; it never belongs in a search anyway.
    return str(value or "").replace("\x00", "").strip()[:MAX_TEXT]


def _choice(value: Any, choices: list[tuple[str, str]], default: str) -> str:
    return value if value in {key for key, _ in choices} else default


def _severities(values: list[str]) -> list[int]:
    found = {_int(part, 0, 4) for value in values for part in str(value).split(",")}
    return sorted((s for s in found if s is not None), reverse=True)


@dataclass(frozen=True)
class FindingFilters:
    """What the findings list shows. Unknown keys are ignored and bad values fall back to the default."""

    severity: list[int] = field(default_factory=list)
    tenable_severity: list[int] = field(default_factory=list)
    state: str = "open"
    triage: str = "none"
    q: str = ""
    host: str = ""
    asset: int | None = None
    family: str = ""
    port: int | None = None
    profile: int | None = None
    run: int | None = None
    change: str = ""
    first_seen_from: date | None = None
    first_seen_to: date | None = None
    last_seen_from: date | None = None
    last_seen_to: date | None = None
    sort: str = DEFAULT_SORT
    group: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: QueryDict) -> FindingFilters:
        change = _choice(query.get("change"), CHANGE_CHOICES, "")
        run = _int(query.get("run"), 1, 2**63 - 1)
        # "Fixed in run N" would always be empty under the default "open" state, so it defaults to any state.
        default_state = "any" if run and change == "fixed" else "open"
        sort = query.get("sort", "")
        return cls(
            severity=_severities(query.getlist("severity")),
            tenable_severity=_severities(query.getlist("tenable_severity")),
            state=_choice(query.get("state"), STATE_CHOICES, default_state),
            triage=_choice(query.get("triage"), TRIAGE_CHOICES, "none"),
            q=_text(query.get("q")),
            host=_text(query.get("host")),
            asset=_int(query.get("asset"), 1, 2**63 - 1),
            family=_text(query.get("family")),
            port=_int(query.get("port"), 0, 65535),
            profile=_int(query.get("profile"), 1, 2**63 - 1),
            run=run if change else None,
            change=change if run else "",
            first_seen_from=_date(query.get("first_seen_from")),
            first_seen_to=_date(query.get("first_seen_to")),
            last_seen_from=_date(query.get("last_seen_from")),
            last_seen_to=_date(query.get("last_seen_to")),
            sort=sort if sort.lstrip("-") in SORTS else DEFAULT_SORT,
            group=_choice(query.get("group"), GROUP_CHOICES, ""),
            page=_int(query.get("page"), 1, 10**6) or 1,
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The non-default values as query parameters (state and triage always, so a shared link is explicit)."""
        current = replace(self, **changes)
        pairs: list[tuple[str, str]] = []
        for f in fields(current):
            value = getattr(current, f.name)
            if f.name in ("state", "triage"):
                pairs.append((f.name, value))
            elif value in (None, "", []) or (f.name == "page" and value == 1):
                continue
            elif f.name == "sort" and value == DEFAULT_SORT:
                continue
            elif isinstance(value, list):
                pairs.extend((f.name, str(v)) for v in value)
            elif isinstance(value, date):
                pairs.append((f.name, value.isoformat()))
            else:
                pairs.append((f.name, str(value)))
        return pairs

    def querystring(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    @property
    def more_filters_used(self) -> bool:
        """Whether any filter behind "More filters" is set (so that section starts open)."""
        return any(
            (
                self.tenable_severity,
                self.host,
                self.family,
                self.port is not None,
                self.profile,
                self.run,
                self.first_seen_from,
                self.first_seen_to,
                self.last_seen_from,
                self.last_seen_to,
            )
        )

    def sort_link(self, key: str) -> str:
        """The query string that sorts by `key`, flipping direction if it is already the sort."""
        if self.sort == key:
            return self.querystring(sort=f"-{key}", page=1)
        if self.sort == f"-{key}":
            return self.querystring(sort=key, page=1)
        descending_first = key in ("severity", "tenable_severity", "first_seen", "last_seen")
        return self.querystring(sort=f"-{key}" if descending_first else key, page=1)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


MAX_LISTED_PLUGINS = 2000


def _plugin_search(q: str) -> Q:
    """One box: digits are a plugin id, "CVE-…" searches CVEs, anything else the plugin name.

    Matching plugin ids are looked up first (a small table) and passed as a list, so the database plans the
    findings query knowing how many plugins matched; a very broad text falls back to a subquery."""
    if q.isdigit() and len(q) <= 9:
        return Q(plugin_id=int(q))
    plugins = (
        Plugin.objects.filter(cves__icontains=q.upper())
        if q.upper().startswith("CVE-")
        else Plugin.objects.filter(name__icontains=q)
    )
    ids = list(plugins.values_list("pk", flat=True)[: MAX_LISTED_PLUGINS + 1])
    if len(ids) > MAX_LISTED_PLUGINS:
        return Q(plugin__in=plugins.values("pk"))
    return Q(plugin_id__in=ids)


def _host_search(project: Project, text: str) -> Q:
    hosts = Asset.objects.filter(project=project).filter(
        Q(name__icontains=text)
        | Q(ip__startswith=text)
        | Q(fqdn__icontains=text)
        | Q(netbios__icontains=text)
    )
    return Q(asset__in=hosts.values("pk"))


def _last_seen_q(lookup: str, moment: datetime) -> Q:
    return Q(state=FindingState.FIXED, **{f"last_seen__{lookup}": moment}) | Q(
        ~Q(state=FindingState.FIXED), **{f"asset__last_seen__{lookup}": moment}
    )


def filter_findings(
    project: Project, filters: FindingFilters, today: date | None = None
) -> QuerySet[Finding]:
    """The project's findings narrowed by `filters`, unordered. Every condition is built from parsed values."""
    today = today or timezone.localdate()
    qs = Finding.objects.filter(project=project)
    if filters.severity:
        qs = qs.filter(effective_severity__in=filters.severity)
    if filters.tenable_severity:
        qs = qs.filter(severity__in=filters.tenable_severity)
    if filters.state == "open":
        qs = qs.filter(open_q())
    elif filters.state in (FindingState.REOPENED, FindingState.FIXED):
        qs = qs.filter(state=filters.state)
    if filters.triage == "none":
        qs = qs.filter(untriaged_q(today))
    elif filters.triage == "expired":
        qs = qs.filter(expired_acceptance_q(today))
    elif filters.triage == Triage.RISK_ACCEPTED:
        qs = qs.filter(triage=Triage.RISK_ACCEPTED).exclude(triage_until__lt=today)
    elif filters.triage == Triage.FALSE_POSITIVE:
        qs = qs.filter(triage=Triage.FALSE_POSITIVE)
    if filters.q:
        qs = qs.filter(_plugin_search(filters.q))
    if filters.host:
        qs = qs.filter(_host_search(project, filters.host))
    if filters.asset:
        qs = qs.filter(asset_id=filters.asset)
    if filters.family:
        qs = qs.filter(plugin__family=filters.family)
    if filters.port is not None:
        qs = qs.filter(port=filters.port)
    if filters.profile:
        qs = qs.filter(profile_id=filters.profile)
    if filters.run and filters.change == "new":
        qs = qs.filter(first_run_id=filters.run)
    elif filters.run and filters.change == "fixed":
        qs = qs.filter(fixed_by_run_id=filters.run)
    elif filters.run and filters.change == "reopened":
        qs = qs.filter(last_run_id=filters.run, state=FindingState.REOPENED)
    if filters.first_seen_from:
        qs = qs.filter(first_seen__gte=_day_start(filters.first_seen_from))
    if filters.first_seen_to:
        qs = qs.filter(first_seen__lt=_day_start(filters.first_seen_to + timedelta(days=1)))
    if filters.last_seen_from:
        qs = qs.filter(_last_seen_q("gte", _day_start(filters.last_seen_from)))
    if filters.last_seen_to:
        qs = qs.filter(_last_seen_q("lt", _day_start(filters.last_seen_to + timedelta(days=1))))
    return qs


def order_findings(qs: QuerySet[Finding], sort: str, state: str = "any") -> QuerySet[Finding]:
    """Apply an allowlisted sort. "Last seen" orders by the column the state filter makes it equal to, so an
    index can serve it; only a mix of states needs the `seen_at` expression."""
    descending = sort.startswith("-")
    columns = SORTS.get(sort.lstrip("-"), SORTS["severity"])
    if columns[0] == "seen_at" and state in ("open", FindingState.REOPENED):
        # Every host a run covered shares its last-seen time; the host id keeps the groups small.
        columns = ("asset__last_seen", "asset_id", "id")
    elif columns[0] == "seen_at" and state == FindingState.FIXED:
        columns = ("last_seen", "id")
    elif columns[0] == "seen_at" and "seen_at" not in qs.query.annotations:
        qs = qs.annotate(seen_at=last_seen_expr())
    if columns[0].startswith("asset__"):
        # Naming the host's project lets the database walk the host index in order and stop at the page.
        qs = qs.filter(asset__project_id=F("project_id"))
    return qs.order_by(*(f"-{c}" if descending else c for c in columns))


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
        .filter(needs_attention_q())
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


# ---------------------------------------------------------------------------
# Project overview
# ---------------------------------------------------------------------------
DONUT_CIRCUMFERENCE = 100  # the donut's circle has r = 100 / 2π, so dash lengths are percentages
TREND_RUNS = 12


def _donut(counts: dict[int, int]) -> list[dict[str, Any]]:
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


def _trend(runs: list[ScanRun]) -> dict[str, Any]:
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


def next_run_at(profile: ScannerProfile) -> datetime | None:
    """When the profile's schedule runs next, if the scheduling module (projects.profiles) provides it."""
    try:
        from .profiles import next_run_at as profile_next_run_at
    except ImportError:
        return None
    try:
        return profile_next_run_at(profile)
    except Exception:
        log.exception("next_run_at failed for profile %s", profile.pk)
        return None


def _triaged_open(project: Project, today: date) -> QuerySet[Finding]:
    """Open findings under an active triage: few, and found through the partial index on triaged rows."""
    return (
        Finding.objects.filter(project=project)
        .filter(open_q())
        .exclude(triage=Triage.NONE)
        .exclude(expired_acceptance_q(today))
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
        .filter(open_q())
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
    for severity, n in _severity_histogram(Finding.objects.filter(project=project).filter(open_q())):
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
        "donut": _donut(by_severity),
        "latest_run": latest,
        "trend": _trend(list(reversed(finished))),
        "trend_legend": [(Severity(s).label, SEVERITY_BADGE[s]) for s in (4, 3, 2, 1)],
        "profiles": profiles,
        "top_hosts": top_hosts(project, today=today),
        "has_findings": open_total or triaged or Finding.objects.filter(project=project).exists(),
        "active_runs": project.runs.filter(status__in=ACTIVE_RUN_STATUSES).count(),
    }
