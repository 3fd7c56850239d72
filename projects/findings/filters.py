"""The findings list's filters and sorts, parsed from the query string (allowlisted, defensively) and
applied to one project's findings; plus the rules every query shares ("last seen", the triage a person sees).

Every queryset starts from one project, so nothing of another project can leak in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Case, CharField, F, Q, QuerySet, Value, When
from django.http import QueryDict
from django.utils import timezone

from ..choices import FindingState, Triage
from ..models import Asset, Finding, FindingQuerySet, Plugin, Project


# ---------------------------------------------------------------------------
# The rules every query shares
# ---------------------------------------------------------------------------
def last_seen_expr() -> Case:
    """The importer does not rewrite unchanged findings, so an open finding was last seen when its host was."""
    return Case(When(state=FindingState.FIXED, then=F("last_seen")), default=F("asset__last_seen"))


def last_seen(finding: Finding) -> datetime:
    """`last_seen_expr` for one loaded finding (with its asset)."""
    return finding.last_seen if finding.state == FindingState.FIXED else finding.asset.last_seen


def triage_status_expr(today: date | None = None) -> Case:
    """The triage a person sees: "expired" for an acceptance past its date, else the stored value."""
    return Case(
        When(FindingQuerySet.expired_acceptance_q(today), then=Value("expired")),
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
        qs = qs.open()
    elif filters.state in (FindingState.REOPENED, FindingState.FIXED):
        qs = qs.filter(state=filters.state)
    if filters.triage == "none":
        qs = qs.untriaged(today)
    elif filters.triage == "expired":
        qs = qs.expired_acceptance(today)
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
