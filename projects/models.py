from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from integrations.fields import SecretField
from integrations.models import Integration

from .choices import (
    ACTIVE_RUN_STATUSES,
    SEVERITY_BADGE,
    FindingState,
    ProjectRole,
    RunStatus,
    ScheduleFrequency,
    Severity,
    SeverityShift,
    Triage,
    Trigger,
)


class Project(models.Model):
    """A body of work whose findings are reviewed together; its name is what `kdt -p` uses."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:detail", args=[self.pk])


class Membership(models.Model):
    """A user's place in a project: members edit and run, viewers read."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ProjectRole.choices, default=ProjectRole.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class ScannerProfile(models.Model):
    """A project's binding to one Tenable.io scan, with how and when to import it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="profiles")
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="profiles")
    name = models.CharField("Profile Name", max_length=100)
    scan_id = models.BigIntegerField("Bind to")
    scan_schedule_uuid = models.CharField(max_length=100, blank=True)
    scan_name = models.CharField(max_length=300, blank=True)
    scan_missing = models.BooleanField(default=False)
    meta_data = models.CharField("Meta Data", max_length=500)
    scan_tag = models.CharField("Scan Tag", max_length=100, blank=True)
    start_scan = models.BooleanField("Start Scan", default=False)
    severity_shift = models.SmallIntegerField(choices=SeverityShift.choices, default=SeverityShift.NONE)
    scheduler_enabled = models.BooleanField("Scheduler", default=False)
    schedule_frequency = models.CharField(
        max_length=10, choices=ScheduleFrequency.choices, default=ScheduleFrequency.DAILY
    )
    schedule_time = models.TimeField(null=True, blank=True)
    schedule_days = models.CharField(max_length=20, blank=True)  # cron day-of-week numbers, "1,3,5"
    schedule_cron = models.CharField(max_length=100, blank=True)
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_url = models.URLField("Webhook", max_length=2048, blank=True)
    webhook_secret = SecretField(blank=True)
    webhook_previous_secret = SecretField(blank=True)
    webhook_previous_secret_expires = models.DateTimeField(null=True, blank=True)
    webhook_disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="profile_name_unique_in_project"),
            # Severity+ and Severity- are one field, so both cannot be on; this keeps the value in range.
            models.CheckConstraint(
                condition=Q(severity_shift__in=[-1, 0, 1]), name="severity_shift_in_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:profile", args=[self.project_id, self.pk])

    @property
    def active_run(self) -> ScanRun | None:
        return self.runs.filter(status__in=ACTIVE_RUN_STATUSES).first()

    @property
    def last_run(self) -> ScanRun | None:
        return self.runs.order_by("-created_at").first()


class ScanRun(models.Model):
    """One execution of a profile (or one upload): the row every page, progress bar, API call and webhook reads."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    profile = models.ForeignKey(
        ScannerProfile, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    tenable_scan_id = models.BigIntegerField(null=True, blank=True)
    tenable_scan_name = models.CharField(max_length=300, blank=True)
    tenable_run_uuid = models.CharField(max_length=100, blank=True)
    tenable_history_id = models.BigIntegerField(null=True, blank=True)
    tenable_status = models.CharField(max_length=32, blank=True)
    source_name = models.CharField(max_length=300, blank=True)  # uploaded file name, shown only
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    count_total = models.PositiveIntegerField(default=0)
    count_new = models.PositiveIntegerField(default=0)
    count_fixed = models.PositiveIntegerField(default=0)
    count_reopened = models.PositiveIntegerField(default=0)
    count_unchanged = models.PositiveIntegerField(default=0)
    count_hosts = models.PositiveIntegerField(default=0)
    count_by_severity = models.JSONField(default=dict, blank=True)  # {"4": 3, "3": 10, ...} of findings seen
    up_to_date = models.BooleanField(default=False)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One active run per profile, enforced by the database rather than a check-then-act.
            models.UniqueConstraint(
                fields=["profile"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="one_active_run_per_profile",
            ),
        ]
        indexes = [models.Index(fields=["profile", "-created_at"])]

    def __str__(self) -> str:
        return f"Run #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("projects:run", args=[self.project_id, self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def progress_percent(self) -> int | None:
        if self.status == RunStatus.SUCCEEDED:
            return 100
        if not self.progress_total:
            return None
        return min(100, int(100 * self.progress_done / self.progress_total))

    def counts(self) -> dict:
        """The run's counts as the API, webhooks and kdt show them, severities by name (critical first)."""
        return {
            "total": self.count_total,
            "new": self.count_new,
            "fixed": self.count_fixed,
            "reopened": self.count_reopened,
            "unchanged": self.count_unchanged,
            "hosts": self.count_hosts,
            "by_severity": {
                SEVERITY_BADGE[s]: int(self.count_by_severity.get(str(s), 0) or 0)
                for s in sorted(SEVERITY_BADGE, reverse=True)
            },
        }

    @property
    def elapsed(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class Asset(models.Model):
    """A host within a project. Tenable host uuids decide; weak keys (FQDN, NetBIOS, IP, name) match only where a
    side lacks a uuid and the key is unambiguous (see importer.AssetIndex)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assets")
    identity = models.CharField(max_length=300)
    name = models.CharField(max_length=300)
    host_uuid = models.CharField(max_length=100, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    fqdn = models.CharField(max_length=300, blank=True)
    netbios = models.CharField(max_length=100, blank=True)
    os = models.CharField(max_length=300, blank=True)
    mac = models.CharField(max_length=300, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    last_run = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "identity"], name="asset_identity_unique")]
        indexes = [
            # Findings review: walk hosts in name / last-seen order and stop at the page.
            models.Index(fields=["project", "name", "id"], name="asset_name_order"),
            models.Index(fields=["project", "last_seen", "id"], name="asset_last_seen_order"),
        ]

    def __str__(self) -> str:
        return self.name


class Plugin(models.Model):
    """A vulnerability definition from Tenable, stored once however many hosts it is found on."""

    plugin_id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=500)
    family = models.CharField(max_length=200, blank=True, db_index=True)
    synopsis = models.TextField(blank=True)
    description = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    see_also = models.JSONField(default=list, blank=True)
    cves = models.JSONField(default=list, blank=True)
    cwes = models.JSONField(default=list, blank=True)
    risk_factor = models.CharField(max_length=16, blank=True)
    cvss_base_score = models.FloatField(null=True, blank=True)
    cvss_vector = models.CharField(max_length=200, blank=True)
    cvss3_base_score = models.FloatField(null=True, blank=True)
    cvss3_vector = models.CharField(max_length=200, blank=True)
    vpr_score = models.FloatField(null=True, blank=True)
    epss_score = models.FloatField(null=True, blank=True)
    publication_date = models.DateField(null=True, blank=True)
    patch_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.plugin_id} {self.name}"


class Finding(models.Model):
    """One vulnerability on one host/port. Identity is project + asset + plugin + port + protocol (`fingerprint`)."""

    # The unique (project, fingerprint) index leads with project, so no separate project index.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="findings", db_index=False)
    profile = models.ForeignKey(
        ScannerProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings"
    )
    # (asset, state) and (project, plugin) indexes below cover these; single-column FK indexes would only slow imports.
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="findings", db_index=False)
    plugin = models.ForeignKey(Plugin, on_delete=models.PROTECT, related_name="findings", db_index=False)
    fingerprint = models.UUIDField()
    port = models.IntegerField(default=0)
    protocol = models.CharField(max_length=16, default="tcp")
    service = models.CharField(max_length=100, blank=True)
    severity = models.SmallIntegerField(choices=Severity.choices)
    effective_severity = models.SmallIntegerField(choices=Severity.choices)
    plugin_output = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=FindingState.choices, default=FindingState.OPEN)
    triage = models.CharField(max_length=16, choices=Triage.choices, default=Triage.NONE, blank=True)
    triage_reason = models.CharField(max_length=1000, blank=True)
    triage_until = models.DateField(null=True, blank=True)
    triage_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    triage_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    fixed_at = models.DateTimeField(null=True, blank=True)
    # Run references carry no database constraint: each would cost a lookup per imported row, and Django's
    # collector still applies SET_NULL when a run is deleted.
    first_run = models.ForeignKey(
        ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    last_run = models.ForeignKey(
        ScanRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    fixed_by_run = models.ForeignKey(
        ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "fingerprint"], name="finding_fingerprint_unique")
        ]
        indexes = [
            models.Index(fields=["project", "state", "effective_severity"]),
            models.Index(fields=["asset", "state"]),
            models.Index(fields=["project", "plugin"]),
            # Findings review: the list's order (and deep pages) without a sort; open counts by severity and
            # by host read only the partial open index; the few triaged rows have their own small index.
            models.Index(fields=["project", "effective_severity", "id"], name="finding_severity_order"),
            models.Index(
                fields=["project", "effective_severity", "asset"],
                condition=Q(state__in=["open", "reopened"]),
                name="finding_open_severity_asset",
            ),
            models.Index(
                fields=["project", "triage", "state", "effective_severity", "triage_until", "asset"],
                condition=~Q(triage=""),
                name="finding_triaged",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plugin_id} on {self.asset_id}:{self.port}/{self.protocol}"

    def get_absolute_url(self) -> str:
        return reverse("projects:finding", args=[self.project_id, self.pk])

    @property
    def is_open(self) -> bool:
        return self.state != FindingState.FIXED


class RunAsset(models.Model):
    """A host a run covered. Closure of fixed findings is scoped to these, and it records "last seen" per run/host
    so that re-imports need not rewrite every unchanged finding."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="run_assets")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="run_assets")
    findings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "asset"], name="run_asset_unique")]

    def __str__(self) -> str:
        return f"{self.asset_id} in run {self.run_id}"


class FindingEvent(models.Model):
    """A change in a finding's life: opened, fixed, reopened by a run; triaged or un-triaged by a person."""

    class Kind(models.TextChoices):
        OPENED = "opened", "First seen"
        FIXED = "fixed", "Fixed"
        REOPENED = "reopened", "Reopened"
        TRIAGED = "triaged", "Triaged"
        UNTRIAGED = "untriaged", "Triage undone"
        EXPIRED = "expired", "Acceptance expired"

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    run = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["finding", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.finding_id})"


class WebhookDelivery(models.Model):
    """One event for a profile's webhook: the outbox row, written in the transaction that finishes the run."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Not sent"

    BADGES = {"pending": "progress", "sending": "progress", "delivered": "success", "failed": "danger"}

    profile = models.ForeignKey(ScannerProfile, on_delete=models.CASCADE, related_name="webhook_deliveries")
    run = models.ForeignKey(
        ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=40)
    message_id = models.CharField(max_length=64, unique=True)  # the webhook-id, the same on every attempt
    payload = models.JSONField()
    url = models.URLField(max_length=2048)  # where it was queued to
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Pending: when the next attempt is due. Sending: when the claim lapses (the worker died mid-attempt).
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["profile", "-created_at"])]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.message_id}"

    @property
    def badge(self) -> str:
        return self.BADGES.get(self.status, "neutral")


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the receiver answered (or why nothing was sent or answered), and how fast."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.delivery_id}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error
