"""A project's tickets in a ticketing service: the mapping (where and how), the links (our key ↔ the ticket),
the outbox of syncs, findings someone asked a ticket for, and the per-connection lease (one request stream)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from integrations.models import Integration
from projects.choices import Severity
from projects.models import Finding, Plugin, Project, ScanRun

from .choices import (
    DEFAULT_DESCRIPTION,
    DEFAULT_PRIORITIES,
    SYNC_BADGE,
    Grouping,
    HandClosed,
    LinkState,
    SyncStatus,
    SyncTrigger,
)


def default_priorities() -> dict[str, str]:
    return dict(DEFAULT_PRIORITIES)


class TicketMapping(models.Model):
    """Project › Settings › Jira: which findings get a ticket, in which Jira project, how it reads and closes."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="ticket_mapping")
    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="ticket_mappings", verbose_name="Jira connection"
    )
    enabled = models.BooleanField("Create and update tickets after each run", default=True)
    jira_project = models.CharField("Jira project", max_length=100)  # its key, e.g. SEC
    jira_project_name = models.CharField(max_length=300, blank=True)  # as last looked up
    issue_type_id = models.CharField("Issue type", max_length=40)
    issue_type_name = models.CharField(max_length=100, blank=True)
    min_severity = models.SmallIntegerField(
        "Severity threshold", choices=Severity.choices, default=Severity.HIGH
    )
    grouping = models.CharField(max_length=10, choices=Grouping.choices, default=Grouping.PLUGIN)
    # Jira priority name by effective severity ("4" … "0"); a blank name leaves Jira's default priority.
    priorities = models.JSONField(default=default_priorities, blank=True)
    label_scan_tag = models.BooleanField("Add the Scan Tag as a label", default=True)
    label_meta_data = models.BooleanField("Add the Meta Data as labels", default=True)
    extra_labels = models.CharField("Labels", max_length=300, blank=True, default="tenable")
    description_template = models.TextField("Description", default=DEFAULT_DESCRIPTION)
    done_status = models.CharField("Done status", max_length=100, default="Done")
    reopen_status = models.CharField("Reopen status", max_length=100, default="To Do")
    hand_closed = models.CharField(
        "A ticket closed in Jira while Tenable still reports it",
        max_length=10,
        choices=HandClosed.choices,
        default=HandClosed.REOPEN,
    )
    creation_cap = models.PositiveIntegerField("Ticket creations per run", default=50)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(creation_cap__gte=1), name="ticket_cap_positive")]

    def __str__(self) -> str:
        return f"{self.project} → {self.jira_project}"

    def get_absolute_url(self) -> str:
        return reverse("tickets:mapping", args=[self.project_id])

    @property
    def active(self) -> bool:
        """Whether syncs run: turned on, on an active connection."""
        return self.enabled and self.integration.is_active

    def priority_for(self, severity: int) -> str | None:
        return (self.priorities or {}).get(str(severity)) or None


class TicketLink(models.Model):
    """Our finding (or vulnerability) ↔ its ticket. `stable_key` is also a label on the ticket, so a lost link is
    found again by searching, never replaced by a second ticket. Created (state "creating") before the ticket is."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ticket_links")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Grouping.choices)
    stable_key = models.CharField(max_length=64)
    finding = models.ForeignKey(
        Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket_links"
    )
    plugin = models.ForeignKey(Plugin, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    jira_project = models.CharField(max_length=100)
    issue_id = models.CharField(max_length=40, blank=True)
    issue_key = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=100, blank=True)  # Jira's status name, as last seen
    done = models.BooleanField(default=False)  # Jira's side: in a Done-category status
    state = models.CharField(max_length=10, choices=LinkState.choices, default=LinkState.CREATING)
    close_reason = models.CharField(max_length=500, blank=True)
    # Grouped tickets: the affected hosts as last written, [[host, ip, port/protocol, finding id], …].
    hosts = models.JSONField(default=list, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    hand_closed_noted = models.BooleanField(default=False)  # "comment" policy: said once per closure
    # When a create was sent: its outcome is unknown until the ticket is found or the link records it.
    create_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "stable_key"], name="ticket_link_key_unique"),
        ]
        indexes = [models.Index(fields=["project", "state"])]

    def __str__(self) -> str:
        return self.issue_key or f"(creating {self.stable_key})"

    @property
    def url(self) -> str:
        """Where a person opens the ticket."""
        if not self.issue_key:
            return ""
        return self.integration.spec.ticket_url(self.integration.api_url, self.issue_key)

    @property
    def badge(self) -> str:
        if self.state == LinkState.GONE:
            return "danger"
        return "success" if self.done else "progress"


class TicketRequest(models.Model):
    """A finding someone asked a ticket for ("Create Jira ticket"): it gets one whatever the threshold, while it
    stays open and untriaged."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    finding = models.OneToOneField(Finding, on_delete=models.CASCADE, related_name="ticket_request")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Ticket requested for finding {self.finding_id}"


class TicketSync(models.Model):
    """The outbox: one row per run whose findings may need tickets (written in the run's own transaction), per
    Create Jira ticket and per Sync now. A worker claims it after commit; the sweeper catches lost messages."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ticket_syncs")
    run = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices, default=SyncTrigger.RUN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Pending: when it is due. Running: when the claim lapses (the worker died).
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    created = models.PositiveIntegerField(default=0)
    adopted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    commented = models.PositiveIntegerField(default=0)
    waiting = models.PositiveIntegerField(default=0)  # tickets left for the next run by the cap
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One sync per run, however often the run is finished.
            models.UniqueConstraint(
                fields=["run"], condition=Q(run__isnull=False), name="one_ticket_sync_per_run"
            )
        ]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"Ticket sync #{self.pk}"

    @property
    def badge(self) -> str:
        return SYNC_BADGE.get(self.status, "neutral")

    def summary(self) -> str:
        """What it did, in words: "2 created, 1 closed" (or "Nothing to change")."""
        parts = [
            f"{value} {word}"
            for value, word in (
                (self.created, "created"),
                (self.adopted, "found again"),
                (self.updated, "updated"),
                (self.closed, "closed"),
                (self.reopened, "reopened"),
                (self.commented, "commented"),
            )
            if value
        ]
        return ", ".join(parts) if parts else "Nothing to change"


class ConnectionLease(models.Model):
    """One request stream per ticketing connection, across workers: only the holder of an unexpired lease calls
    the service (taken and renewed with conditional updates)."""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Lease on {self.integration_id} ({self.holder or 'free'})"
