"""What runs found: hosts (assets), vulnerability definitions (plugins), findings and their history."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from ..choices import OPEN_FINDING_STATES, SEVERITY_MODIFICATIONS, CloseReason, FindingState, Severity, Triage
from .profile import ScannerProfile
from .project import Project


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
    last_run = models.ForeignKey(
        "projects.ScanRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

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


class FindingQuerySet(models.QuerySet):
    """The one definition of "open" and "needs attention" for every page, the API and `kdt`.

    The `*_q` forms build the same conditions through a relation, e.g. `needs_attention_q(prefix="findings__")`
    to count a project's open findings in an annotation.
    """

    @staticmethod
    def open_q(prefix: str = "") -> Q:
        """ "Open" in the UI: open or reopened."""
        return Q(**{f"{prefix}state__in": OPEN_FINDING_STATES})

    @staticmethod
    def expired_acceptance_q(today: date | None = None, prefix: str = "") -> Q:
        """An accepted risk past its date counts as untriaged again, even before `expire_acceptances` runs."""
        return Q(
            **{
                f"{prefix}triage": Triage.RISK_ACCEPTED,
                f"{prefix}triage_until__lt": today or timezone.localdate(),
            }
        )

    @classmethod
    def untriaged_q(cls, today: date | None = None, prefix: str = "") -> Q:
        return Q(**{f"{prefix}triage": Triage.NONE}) | cls.expired_acceptance_q(today, prefix)

    @classmethod
    def needs_attention_q(cls, today: date | None = None, prefix: str = "") -> Q:
        """Open and not triaged (an expired acceptance is not triaged): what every page and the API count as open."""
        return cls.open_q(prefix) & cls.untriaged_q(today, prefix)

    def open(self) -> FindingQuerySet:
        return self.filter(self.open_q())

    def untriaged(self, today: date | None = None) -> FindingQuerySet:
        return self.filter(self.untriaged_q(today))

    def expired_acceptance(self, today: date | None = None) -> FindingQuerySet:
        return self.filter(self.expired_acceptance_q(today))

    def needs_attention(self, today: date | None = None) -> FindingQuerySet:
        return self.filter(self.needs_attention_q(today))


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
    # Tenable's own view, from its bulk exports (kept beside ours, never applied to triage): the plugin's default
    # severity, and whether someone recast or accepted the finding in Tenable.io (NONE, RECASTED, ACCEPTED).
    severity_default = models.SmallIntegerField(choices=Severity.choices, null=True, blank=True)
    # Database defaults too: the importers' set-based INSERTs leave these columns out.
    severity_modification = models.CharField(max_length=10, blank=True, default="", db_default="")
    tenable_finding_id = models.CharField(
        max_length=100, blank=True, default="", db_default=""
    )  # for the record
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
    close_reason = models.CharField(
        max_length=20, choices=CloseReason.choices, blank=True, default="", db_default=""
    )
    # Run references carry no database constraint: each would cost a lookup per imported row, and Django's
    # collector still applies SET_NULL when a run is deleted.
    first_run = models.ForeignKey(
        "projects.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    last_run = models.ForeignKey(
        "projects.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    fixed_by_run = models.ForeignKey(
        "projects.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    objects = FindingQuerySet.as_manager()

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
                condition=Q(state__in=list(OPEN_FINDING_STATES)),
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
        return self.state in OPEN_FINDING_STATES

    @property
    def severity_modification_label(self) -> str:
        """Tenable's recast or acceptance in words ("" when there was none)."""
        return SEVERITY_MODIFICATIONS.get(self.severity_modification, "")


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
    run = models.ForeignKey(
        "projects.ScanRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["finding", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.finding_id})"
