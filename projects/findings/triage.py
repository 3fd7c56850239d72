"""Triage: a person marks findings false positive or risk accepted (optionally until a date), or undoes it.

Only these functions write triage; imports never do. Each change writes a `FindingEvent` per finding and an
audit event, and an acceptance past its date is cleared by `expire_acceptances` (run daily by Celery beat).
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import record

from ..choices import Triage
from ..models import Finding, FindingEvent

BULK_LIMIT = 500  # ids per bulk action: one page of selections, with room to spare
EXPIRY_BATCH = 500

TRIAGE_ACTIONS = [
    (Triage.FALSE_POSITIVE, "False positive"),
    (Triage.RISK_ACCEPTED, "Risk accepted"),
]


class TriageForm(forms.Form):
    """Mark findings: why is required; only an accepted risk may have an expiry date, and it lies ahead."""

    triage = forms.ChoiceField(
        label="Mark as",
        choices=TRIAGE_ACTIONS,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose False positive or Risk accepted."},
    )
    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why, for whoever reads this next"}),
        error_messages={"required": "Give a reason: it is kept in the finding's history."},
    )
    until = forms.DateField(
        label="Accept until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. After this date the finding counts as open again on its own.",
    )

    def clean(self):
        data = super().clean()
        until = data.get("until")
        if until and data.get("triage") != Triage.RISK_ACCEPTED:
            self.add_error("until", "Only an accepted risk can have an expiry date.")
        elif until and until <= timezone.localdate():
            self.add_error("until", "Pick a date after today.")
        return data


class BulkTriageForm(TriageForm):
    """The list's bulk bar: the same choices plus "clear", applied to the selected ids of this project only."""

    CLEAR = "clear"

    triage = forms.ChoiceField(
        label="Mark as",
        choices=[("", "Mark as…"), *TRIAGE_ACTIONS, (CLEAR, "Clear triage")],
        widget=forms.Select,
        error_messages={"required": "Choose what to mark the selected findings as."},
    )
    reason = forms.CharField(label="Reason", max_length=1000, required=False)
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer id is acceptable here; the view scopes them to the project.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit() and len(str(value)) < 19

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if len(ids) > BULK_LIMIT:
            raise forms.ValidationError(f"Select at most {BULK_LIMIT} findings at a time.")
        return ids

    def clean(self):
        data = super().clean()
        if data.get("triage") not in (None, self.CLEAR) and not data.get("reason"):
            self.add_error("reason", "Give a reason: it is kept in the findings' history.")
        return data


def _note(triage: str, reason: str, until) -> str:
    label = Triage(triage).label
    expiry = f" until {until.isoformat()}" if until else ""
    return f"{label}{expiry}: {reason}"[:1000]


def set_triage(
    findings: QuerySet[Finding], *, user, triage: str, reason: str, until=None, request=None
) -> int:
    """Mark the findings (already scoped to one project) and record why; returns how many changed."""
    now = timezone.now()
    with transaction.atomic():
        changed = list(findings.select_for_update().order_by("pk"))
        if not changed:
            return 0
        Finding.objects.filter(pk__in=[f.pk for f in changed]).update(
            triage=triage,
            triage_reason=reason,
            triage_until=until if triage == Triage.RISK_ACCEPTED else None,
            triage_by=user,
            triage_at=now,
        )
        note = _note(triage, reason, until)
        FindingEvent.objects.bulk_create(
            [
                FindingEvent(finding=f, kind=FindingEvent.Kind.TRIAGED, actor=user, note=note, created_at=now)
                for f in changed
            ]
        )
        for finding in changed:
            record(
                user,
                "finding.triaged",
                finding,
                request,
                triage=triage,
                until=until.isoformat() if until else None,
                reason_given=True,
                bulk=len(changed) > 1,
            )
    return len(changed)


def clear_triage(findings: QuerySet[Finding], *, user, request=None) -> int:
    """Undo triage: the findings count as untriaged again. Findings without triage are left alone."""
    now = timezone.now()
    with transaction.atomic():
        changed = list(findings.exclude(triage=Triage.NONE).select_for_update().order_by("pk"))
        if not changed:
            return 0
        Finding.objects.filter(pk__in=[f.pk for f in changed]).update(
            triage=Triage.NONE, triage_reason="", triage_until=None, triage_by=None, triage_at=None
        )
        FindingEvent.objects.bulk_create(
            [
                FindingEvent(
                    finding=f,
                    kind=FindingEvent.Kind.UNTRIAGED,
                    actor=user,
                    note=f"Was {Triage(f.triage).label.lower()}",
                    created_at=now,
                )
                for f in changed
            ]
        )
        for finding in changed:
            record(user, "finding.untriaged", finding, request, was=finding.triage, bulk=len(changed) > 1)
    return len(changed)


def expire_acceptances(now: datetime | None = None) -> int:
    """Clear risk acceptances whose date has passed, so those findings count as open again; returns how many.

    Safe to run concurrently with people triaging: each batch re-checks the condition under a row lock."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = Finding.objects.filter(triage=Triage.RISK_ACCEPTED, triage_until__lt=today)
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(due.select_for_update(skip_locked=True).order_by("pk")[:EXPIRY_BATCH])
            if not batch:
                return expired
            Finding.objects.filter(pk__in=[f.pk for f in batch]).update(
                triage=Triage.NONE, triage_reason="", triage_until=None, triage_by=None, triage_at=None
            )
            FindingEvent.objects.bulk_create(
                [
                    FindingEvent(
                        finding=f,
                        kind=FindingEvent.Kind.EXPIRED,
                        note=f"Risk acceptance ended {f.triage_until.isoformat()}; open again",
                        created_at=now,
                    )
                    for f in batch
                ]
            )
            for finding in batch:
                record(None, "finding.acceptance_expired", finding, until=finding.triage_until.isoformat())
            expired += len(batch)
