"""One ticket sync: bring a project's tickets in line with its findings as they are now, exactly once per ticket.

Reconciliation, not replay: every sync computes which subjects need a ticket (open, untriaged, at or above the
threshold, or asked for by hand) and walks the links. So a sync that stopped half way (rate limit, crash) is
simply run again, and a run's changes that an earlier sync missed are caught by the next one.

Exactly once: a link row (state "creating") is written before a ticket is created, and `create_sent_at` is
committed before the create is sent. Whoever finds such a row searches the service by the stable key first;
only when nothing carries it, and the create was never sent or was sent longer ago than search needs to catch
up, is the ticket created (again). Every Jira call is followed by its own commit of what it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from integrations.connectors import TicketingConnector, TicketingError
from integrations.connectors.base import Ticket, TicketDocument
from projects.choices import FindingState, Severity, Triage
from projects.models import Finding

from . import content
from .choices import Grouping, HandClosed, LinkState
from .content import Subject
from .models import TicketLink, TicketMapping, TicketRequest, TicketSync

log = logging.getLogger(__name__)

# Per-ticket problems: recorded on the link, the sync goes on. Anything else stops the sync.
PER_TICKET = ("workflow",)
GONE_MESSAGE = "The ticket was deleted in Jira (or this account can no longer see it)."
ASSET_GONE = {"asset_deleted": "deleted", "asset_terminated": "terminated"}  # Finding.close_reason (issue 14)


@dataclass
class Outcome:
    """What a sync did, for its row; `retry_after` asks for another pass later (search still catching up)."""

    created: int = 0
    adopted: int = 0
    updated: int = 0
    closed: int = 0
    reopened: int = 0
    commented: int = 0
    waiting: int = 0
    deferred: int = 0
    messages: list[str] = field(default_factory=list)
    retry_after: float | None = None

    def counts(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in ("created", "adopted", "updated", "closed", "reopened", "commented", "waiting")
        }


class TicketSyncer:
    """Walks one project's subjects and links against the ticketing service (see the module docstring).

    `tick` is called before every call to the service; the lease holder uses it to keep (or lose) the lease.
    """

    def __init__(
        self,
        sync: TicketSync,
        mapping: TicketMapping,
        connector: TicketingConnector,
        tick: Callable[[], None] = lambda: None,
    ) -> None:
        self.sync, self.mapping, self.connector, self.tick = sync, mapping, connector, tick
        self.project = mapping.project
        self.spec = mapping.integration.spec
        self.outcome = Outcome()
        self.now = timezone.now()
        self.settle = timedelta(seconds=settings.TICKETS_SEARCH_SETTLE_SECONDS)
        self.qualifying: set[int] = set()
        self.requested: set[int] = set()
        self.urgent: set[str] = set()

    # -- the walk -----------------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        subjects = self.subjects()
        links = {
            link.stable_key: link
            for link in TicketLink.objects.filter(
                project=self.project, integration=self.mapping.integration
            ).select_related("finding", "plugin")
        }
        self.refresh([link for link in links.values() if link.state == LinkState.OPEN and link.issue_key])
        for link in links.values():
            if link.stable_key in subjects:
                continue
            if link.state == LinkState.OPEN:
                self.guard(link, lambda link=link: self.close(link))
            elif link.state == LinkState.CREATING:
                self.guard(link, lambda link=link: self.settle_unwanted(link))
        for key, subject in subjects.items():
            link = links.get(key)
            if link is None or link.state == LinkState.CREATING:
                self.guard(link, lambda s=subject, link=link: self.ensure(s, link))
            elif link.state == LinkState.OPEN:
                self.guard(link, lambda s=subject, link=link: self.keep_open(s, link))
            elif link.state == LinkState.CLOSED:
                self.guard(link, lambda s=subject, link=link: self.reopen(s, link, found_again=True))
        out = self.outcome
        if out.waiting:
            total = out.created + out.waiting
            out.messages.append(
                f"Created {out.created} of {total} tickets (cap of {self.mapping.creation_cap} per run); "
                "the rest follow on the next run."
            )
        if out.deferred:
            out.retry_after = self.settle.total_seconds()
            out.messages.append(
                f"Waiting {self.settle.total_seconds():g} s for Jira's search to catch up before creating "
                f"{out.deferred} ticket{'s' if out.deferred != 1 else ''} whose create got no answer."
            )
        return out

    def guard(self, link: TicketLink | None, step: Callable[[], None]) -> None:
        """Run one subject's step; a problem of that ticket alone is noted on its link, anything else stops."""
        try:
            step()
        except TicketingError as exc:
            if link is None or link.pk is None:
                raise
            if exc.kind == "not_found" and link.issue_key:
                TicketLink.objects.filter(pk=link.pk).update(
                    state=LinkState.GONE, last_error=GONE_MESSAGE, synced_at=timezone.now()
                )
            elif exc.kind in PER_TICKET:
                TicketLink.objects.filter(pk=link.pk).update(last_error=exc.message[:500])
                self.outcome.messages.append(f"{link.issue_key or link.stable_key}: {exc.message}")
            else:
                raise

    # -- what needs a ticket ------------------------------------------------------------------------------------
    def subjects(self) -> dict[str, Subject]:
        """The subjects needing a ticket, by stable key, most urgent first (asked for by hand, then severity)."""
        mapping, kind = self.mapping, self.mapping.grouping
        self.requested = set(
            TicketRequest.objects.filter(project=self.project).values_list("finding_id", flat=True)
        )
        findings = (
            Finding.objects.filter(project=self.project)
            .needs_attention()
            .filter(Q(effective_severity__gte=mapping.min_severity) | Q(pk__in=self.requested))
            .select_related("asset", "plugin", "profile")
            .order_by("-effective_severity", "first_seen", "pk")
        )
        subjects: dict[str, Subject] = {}
        urgent: set[str] = set()
        for finding in findings.iterator(chunk_size=2000):
            self.qualifying.add(finding.pk)
            key = content.stable_key(self.spec, self.project, kind, finding.plugin_id, finding)
            subject = subjects.get(key)
            if subject is None:
                subject = subjects[key] = Subject(kind, key, finding.plugin)
            subject.findings.append(finding)
            if finding.pk in self.requested:
                urgent.add(key)
        ordered = sorted(subjects.values(), key=lambda s: (s.stable_key not in urgent, -s.severity))
        self.urgent = urgent
        return {s.stable_key: s for s in ordered}

    # -- creating, exactly once ---------------------------------------------------------------------------------
    def ensure(self, subject: Subject, link: TicketLink | None) -> None:
        """A subject without a ticket: find it by its stable key, or create it (within the cap)."""
        capped = self.outcome.created >= self.mapping.creation_cap and subject.stable_key not in self.urgent
        if link is None:
            if capped:
                self.outcome.waiting += 1  # no row, no search: the next run starts from here
                return
            link = self.intent(subject)
        found = self.find(link)
        if found is not None:
            self.adopt(subject, link, found)
            return
        if link.create_sent_at and self.now - link.create_sent_at < self.settle:
            self.outcome.deferred += 1  # a create got no answer moments ago: let search catch up first
            return
        if capped:
            self.outcome.waiting += 1
            return
        built = content.build(self.mapping, subject)
        TicketLink.objects.filter(pk=link.pk).update(
            create_sent_at=timezone.now()
        )  # committed before the POST
        self.tick()
        try:
            ticket = self.connector.create(self.mapping.jira_project, self.mapping.issue_type_id, built)
        except TicketingError as exc:
            if not exc.outcome_unknown:  # certainly not created: nothing to look for next time
                TicketLink.objects.filter(pk=link.pk).update(create_sent_at=None)
            raise
        self.outcome.created += 1
        self.record(link, ticket, subject, built, state=LinkState.OPEN, create_sent_at=None, last_error="")

    def intent(self, subject: Subject) -> TicketLink:
        """The link row, written (and committed) before anything is created."""
        values = {
            "project": self.project,
            "integration": self.mapping.integration,
            "kind": subject.kind,
            "stable_key": subject.stable_key,
            "finding": subject.finding,
            "plugin": subject.plugin,
            "jira_project": self.mapping.jira_project,
            "state": LinkState.CREATING,
        }
        try:
            return TicketLink.objects.create(**values)
        except IntegrityError:
            return TicketLink.objects.get(project=self.project, stable_key=subject.stable_key)

    def find(self, link: TicketLink) -> Ticket | None:
        """The oldest ticket carrying the link's stable key (others carrying it are named on the link)."""
        self.tick()
        found = self.connector.find(link.jira_project or self.mapping.jira_project, link.stable_key)
        if not found:
            return None
        if len(found) > 1:
            others = ", ".join(t.key for t in found[1:6])
            link.last_error = f"Other tickets also carry this ticket's key: {others}."[:500]
        return found[0]

    def adopt(self, subject: Subject, link: TicketLink, ticket: Ticket) -> None:
        """Take over a ticket found by its key (a create whose answer was lost, or a link the database lost)."""
        self.outcome.adopted += 1
        TicketLink.objects.filter(pk=link.pk).update(
            issue_id=ticket.id,
            issue_key=ticket.key,
            status=ticket.status,
            done=ticket.done,
            state=LinkState.OPEN,
            create_sent_at=None,
            last_error=link.last_error,
            synced_at=timezone.now(),
        )
        link.refresh_from_db()
        if ticket.done:
            self.reopen(subject, link, found_again=False)
        else:
            self.keep_open(subject, link)

    def settle_unwanted(self, link: TicketLink) -> None:
        """A link left "creating" whose subject no longer needs a ticket: close what was created, else forget it."""
        ticket = self.find(link)
        if ticket is not None:
            TicketLink.objects.filter(pk=link.pk).update(
                issue_id=ticket.id, issue_key=ticket.key, status=ticket.status, done=ticket.done,
                state=LinkState.OPEN, create_sent_at=None,
            )  # fmt: skip
            link.refresh_from_db()
            self.close(link)
        elif link.create_sent_at and self.now - link.create_sent_at < self.settle:
            self.outcome.deferred += 1
        else:
            link.delete()

    # -- keeping tickets current --------------------------------------------------------------------------------
    def refresh(self, links: list[TicketLink]) -> None:
        """Read the service's state of the open tickets (one search per batch): statuses shown on the finding
        page, tickets closed by hand, tickets deleted."""
        if not links:
            return
        self.tick()
        tickets = self.connector.tickets([link.issue_key for link in links])
        for link in links:
            ticket = tickets.get(link.issue_key)
            if ticket is None:
                link.state, link.last_error = LinkState.GONE, GONE_MESSAGE
            else:
                if not ticket.done:
                    link.hand_closed_noted = False
                link.status, link.done = ticket.status, ticket.done
            link.synced_at = timezone.now()
            link.save(
                update_fields=["state", "last_error", "status", "done", "hand_closed_noted", "synced_at"]
            )

    def keep_open(self, subject: Subject, link: TicketLink) -> None:
        """An open subject with its open ticket: answer a hand-closing per the mapping, update what changed."""
        if link.done:
            if self.mapping.hand_closed == HandClosed.REOPEN:
                self.reopen(subject, link, found_again=False)
                return
            if not link.hand_closed_noted:
                self.tick()
                self.connector.comment(link.issue_key, TicketDocument.text(self.still_reported(subject)))
                self.outcome.commented += 1
                TicketLink.objects.filter(pk=link.pk).update(hand_closed_noted=True)
                link.hand_closed_noted = True
        self.update(subject, link)

    def update(self, subject: Subject, link: TicketLink, *, note_hosts: bool = True) -> None:
        """Write the ticket again when what it says changed; a grouped ticket whose hosts changed says so."""
        built = content.build(self.mapping, subject)
        digest = content.content_hash(self.mapping, subject, built)
        if digest == link.content_hash:
            return
        self.tick()
        self.connector.update(link.issue_key, built)
        self.outcome.updated += 1
        hosts = subject.hosts()
        if (
            note_hosts
            and subject.kind == Grouping.PLUGIN
            and link.hosts
            and _names(link.hosts) != _names(hosts)
        ):
            self.tick()
            self.connector.comment(link.issue_key, TicketDocument.text(_hosts_changed(link.hosts, hosts)))
            self.outcome.commented += 1
        TicketLink.objects.filter(pk=link.pk).update(
            content_hash=digest, hosts=hosts, synced_at=timezone.now(), last_error=""
        )
        link.content_hash, link.hosts = digest, hosts

    def reopen(self, subject: Subject, link: TicketLink, *, found_again: bool) -> None:
        """Reopen a ticket: its subject came back (`found_again`), or it was closed in Jira while still open."""
        if found_again:
            where = _hosts_phrase(subject)
            text = f"Reopened by Tenable Console: Tenable reports {subject.plugin.name} again{where}{self.in_run()}."
        else:
            text = f"Reopened by Tenable Console: this ticket was closed in Jira, but {self.still_reported(subject)}"
        self.tick()
        ticket = self.connector.reopen_ticket(
            link.issue_key, status=self.mapping.reopen_status, comment=TicketDocument.text(text)
        )
        self.outcome.reopened += 1
        TicketLink.objects.filter(pk=link.pk).update(
            state=LinkState.OPEN,
            status=ticket.status,
            done=ticket.done,
            close_reason="",
            hand_closed_noted=False,
            synced_at=timezone.now(),
        )
        link.state, link.status, link.done = LinkState.OPEN, ticket.status, ticket.done
        self.update(subject, link, note_hosts=False)  # the reopening comment names the hosts

    def close(self, link: TicketLink) -> None:
        """Close a ticket whose subject needs none any more, saying why."""
        reason = self.reason(link)
        self.tick()
        ticket = self.connector.close_ticket(
            link.issue_key, status=self.mapping.done_status, comment=TicketDocument.text(reason)
        )
        self.outcome.closed += 1
        TicketLink.objects.filter(pk=link.pk).update(
            state=LinkState.CLOSED,
            status=ticket.status,
            done=ticket.done,
            close_reason=reason[:500],
            synced_at=timezone.now(),
            last_error="",
        )

    def record(self, link: TicketLink, ticket: Ticket, subject: Subject, built, **fields) -> None:
        digest = content.content_hash(self.mapping, subject, built)
        TicketLink.objects.filter(pk=link.pk).update(
            issue_id=ticket.id,
            issue_key=ticket.key,
            status=ticket.status,
            done=ticket.done,
            content_hash=digest,
            hosts=subject.hosts(),
            synced_at=timezone.now(),
            **fields,
        )

    # -- words --------------------------------------------------------------------------------------------------
    def in_run(self) -> str:
        run = self.sync.run
        return f" (run #{run.pk}: {settings.SITE_URL}{run.get_absolute_url()})" if run else ""

    def still_reported(self, subject: Subject) -> str:
        return (
            f"Tenable still reports {subject.plugin.name}{_hosts_phrase(subject)}. Close it in Tenable Console "
            "(fix it, or mark it false positive or accepted risk) and this ticket closes on the next sync."
        )

    def reason(self, link: TicketLink) -> str:
        """Why a ticket closes, in one or two sentences for its comment."""
        if link.kind != self.mapping.grouping and self.still_needed(link):
            now = (
                "one ticket per vulnerability"
                if self.mapping.grouping == Grouping.PLUGIN
                else "one ticket per finding"
            )
            return (
                f"Closed by Tenable Console: this project now keeps {now}; these findings are tracked there."
            )
        if link.kind == Grouping.FINDING:
            return self.finding_reason(link.finding)
        findings = list(
            Finding.objects.filter(project=self.project, plugin_id=link.plugin_id).select_related(
                "asset", "triage_by"
            )
        )
        if not findings:
            return "Closed by Tenable Console: the vulnerability no longer has findings in the project."
        gone = [f for f in findings if _asset_gone(f)]
        fixed = [f for f in findings if f.state == FindingState.FIXED and not _asset_gone(f)]
        if len(fixed) == len(findings):
            name = link.plugin.name if link.plugin else "it"
            return f"Fixed: Tenable no longer reports {name} on any host{self.in_run()}."
        parts = []
        if fixed:
            parts.append(f"{len(fixed)} fixed")
        for word in ("deleted", "terminated"):
            count = sum(1 for f in gone if ASSET_GONE.get(f.close_reason) == word)
            if count:
                parts.append(f"{count} on host{'s' if count != 1 else ''} {word} in Tenable.io")
        for value, label in (
            (Triage.FALSE_POSITIVE, "marked false positive"),
            (Triage.RISK_ACCEPTED, "risk accepted"),
        ):
            count = sum(1 for f in findings if f.is_open and _triaged(f) and f.triage == value)
            if count:
                parts.append(f"{count} {label}")
        below = sum(
            1
            for f in findings
            if f.is_open and not _triaged(f) and f.effective_severity < self.mapping.min_severity
        )
        if below:
            parts.append(f"{below} below the threshold ({Severity(self.mapping.min_severity).label})")
        return "Closed by Tenable Console: no host needs this ticket any more (" + ", ".join(parts) + ")."

    def finding_reason(self, finding: Finding | None) -> str:
        if finding is None:
            return "Closed by Tenable Console: the finding no longer exists in the project."
        host = finding.asset.name
        if finding.state == FindingState.FIXED:
            word = ASSET_GONE.get(getattr(finding, "close_reason", ""))
            if word:
                return (
                    f"Closed by Tenable Console: the host {host} was {word} in Tenable.io, so its findings "
                    "no longer apply."
                )
            if getattr(finding, "close_reason", "") == "tenable_fixed":
                return f"Fixed: Tenable.io marks it fixed on {host} ({_port(finding)}){self.in_run()}."
            return f"Fixed: Tenable no longer reports it on {host} ({_port(finding)}){self.in_run()}."
        if _triaged(finding):
            who = f" by {finding.triage_by.get_username()}" if finding.triage_by else ""
            why = f": {finding.triage_reason}" if finding.triage_reason else ""
            return f"Closed by Tenable Console: marked {finding.get_triage_display().lower()}{who}{why}."
        if finding.effective_severity < self.mapping.min_severity:
            return (
                f"Closed by Tenable Console: its severity is now {finding.get_effective_severity_display()}, "
                f"below this project's threshold ({Severity(self.mapping.min_severity).label})."
            )
        return "Closed by Tenable Console: the finding no longer needs a ticket."

    def still_needed(self, link: TicketLink) -> bool:
        if link.kind == Grouping.FINDING:
            return link.finding_id in self.qualifying
        return Finding.objects.filter(pk__in=self.qualifying, plugin_id=link.plugin_id).exists()


def _triaged(finding: Finding) -> bool:
    """Triaged away: false positive, or a risk accepted until a date not yet past (FindingQuerySet's rule)."""
    if finding.triage == Triage.RISK_ACCEPTED and finding.triage_until:
        return finding.triage_until >= timezone.localdate()
    return bool(finding.triage)


def _asset_gone(finding: Finding) -> bool:
    return finding.state == FindingState.FIXED and getattr(finding, "close_reason", "") in ASSET_GONE


def _port(finding: Finding) -> str:
    return f"{finding.port}/{finding.protocol}"


def _names(hosts: list[list]) -> list[tuple]:
    return sorted((h[0], h[2]) for h in hosts)


def _hosts_phrase(subject: Subject) -> str:
    names = sorted({f.asset.name for f in subject.findings})
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f" on {shown}"


def _hosts_changed(before: list[list], after: list[list]) -> str:
    """The comment for a grouped ticket whose hosts changed."""
    old, new = {(h[0], h[2]) for h in before}, {(h[0], h[2]) for h in after}

    def listed(items: set[tuple]) -> str:
        ordered = [f"{host} ({port})" for host, port in sorted(items)]
        return ", ".join(ordered[:10]) + (f" and {len(ordered) - 10} more" if len(ordered) > 10 else "")

    parts = []
    if old - new:
        parts.append(f"No longer needs attention on {listed(old - new)}.")
    if new - old:
        parts.append(f"Now also found on {listed(new - old)}.")
    parts.append(f"Hosts still affected: {len(new)}.")
    return "Tenable Console updated the affected hosts. " + " ".join(parts)
