"""The scan configuration drawer's form (Bind to, sync settings, severity shift, Scheduler, Webhook) and cron
checking."""

from __future__ import annotations

import zoneinfo

from celery.schedules import crontab
from django import forms
from django.conf import settings

from outbound.destinations import RestrictedDestination, resolve_and_check, validate_url

from ..choices import WEEKDAYS, ScheduleFrequency, SeverityShift, SourceKind
from ..models import ScannerProfile
from .sources import SCOPE_PREFIX, VULNERABILITY_DATA, bind_to_choices, scope_choices, visible_scans

BOTH_SEVERITIES = "Only one of Severity+ / Severity- may be enabled"
SYNC_SEVERITIES = [
    ("critical", "Critical"),
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
    ("info", "Info"),
]
# Settings that change what a sync asks Tenable for: changing one makes the next sync a full one again.
SYNC_FIELDS = ("source_kind", "export_scope", "sync_severities", "include_unlicensed", "first_sync_days")
TIMEZONES = [("UTC", "UTC")] + [
    (name, name) for name in sorted(zoneinfo.available_timezones()) if name != "UTC"
]


class ScannerProfileForm(forms.ModelForm):
    """The scan configuration drawer with the seed's labels.

    Bind to offers the scans this connection's key can see, by folder, and a "Vulnerability data" group (all
    assets the key may view, each visible tag: `scope:<id>` values) whose sync settings apply instead of Start
    Scan. Severity+ and Severity- are two switches over one `severity_shift`, so both on is refused here and
    impossible in the table.
    """

    scan_id = forms.ChoiceField(
        label="Bind to",
        error_messages={
            "invalid_choice": "This scan is not among the scans this connection can see in Tenable.io. "
            "Choose one from the list.",
            "required": "Choose the Tenable.io scan to bind to.",
        },
    )
    sync_severities = forms.MultipleChoiceField(
        label="Severities to include",
        choices=SYNC_SEVERITIES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tenable.io sends only findings of these severities (its own severity, before Severity+/-).",
    )
    severity_plus = forms.BooleanField(
        label="Severity+",
        required=False,
        help_text="Raise imported findings by one level (Info → Low … High → Critical).",
    )
    severity_minus = forms.BooleanField(
        label="Severity-",
        required=False,
        help_text="Lower imported findings by one level (Critical → High … Low → Info).",
    )
    schedule_days = forms.MultipleChoiceField(
        label="Days", choices=WEEKDAYS, required=False, widget=forms.CheckboxSelectMultiple
    )
    schedule_timezone = forms.ChoiceField(label="Timezone", choices=TIMEZONES, initial="UTC")
    webhook_url = forms.CharField(
        label="Webhook",
        required=False,
        max_length=2048,
        strip=True,
        widget=forms.URLInput(
            attrs={"placeholder": "https://hooks.example.com/tenable", "spellcheck": "false"}
        ),
        help_text="Optional. Receives a signed POST when a run finishes. A signing secret is generated and "
        "shown once.",
    )
    regenerate_secret = forms.BooleanField(
        label="Generate a new signing secret",
        required=False,
        help_text="The current secret keeps signing for 24 hours, so the receiver can switch over.",
    )

    class Meta:
        model = ScannerProfile
        fields = [
            "name",
            "scan_id",
            "meta_data",
            "scan_tag",
            "start_scan",
            "scheduler_enabled",
            "schedule_frequency",
            "schedule_time",
            "schedule_days",
            "schedule_cron",
            "schedule_timezone",
            "webhook_url",
            "include_unlicensed",
            "first_sync_days",
        ]
        labels = {
            "name": "Profile Name",
            "meta_data": "Meta Data",
            "scan_tag": "Scan Tag",
            "start_scan": "Start Scan",
            "scheduler_enabled": "Scheduler",
            "schedule_frequency": "Frequency",
            "schedule_time": "Time",
            "schedule_cron": "Cron expression",
            "include_unlicensed": "Include unlicensed assets",
            "first_sync_days": "First sync window (days)",
        }
        help_texts = {
            "name": "A name to identify this scan configuration.",
            "meta_data": "Additional metadata to tag the scan, e.g. owner=payments-team.",
            "scan_tag": "Free-text tag to identify or group scans.",
            "start_scan": "Launch the Tenable.io scan and import it when saved and on every run; "
            "off imports the latest completed run.",
            "scheduler_enabled": "Run this profile automatically on a recurring schedule.",
            "schedule_time": "24-hour clock, HH:MM (14:30 is half past two in the afternoon). "
            "Hourly runs use only the minutes (00:15 → every hour at :15).",
            "schedule_cron": "Five fields: minute hour day-of-month month day-of-week, e.g. 30 2 * * 1-5. "
            "At most one run an hour.",
            "include_unlicensed": "Tenable.io leaves out assets that hold no license unless asked; tick to sync "
            "their findings too.",
            "first_sync_days": "Blank: the first sync brings everything Tenable.io holds. A number: only the "
            "findings found or fixed in that many last days. Later syncs bring what changed since the last "
            "complete one; changing the scope or these settings makes the next sync a full one again.",
        }
        error_messages = {
            "schedule_time": {"invalid": "Enter the time as HH:MM on a 24-hour clock, e.g. 14:30."},
        }
        widgets = {
            # Text, not type="time": the browser would show its locale's 12-hour clock beside 24-hour help.
            "schedule_time": forms.TimeInput(
                format="%H:%M",
                attrs={
                    "placeholder": "HH:MM",
                    "inputmode": "numeric",
                    "maxlength": "5",
                    "size": "5",
                    "spellcheck": "false",
                },
            ),
            "schedule_cron": forms.TextInput(attrs={"placeholder": "30 2 * * 1-5", "spellcheck": "false"}),
            "first_sync_days": forms.NumberInput(
                attrs={"min": "1", "max": "3650", "placeholder": "Everything"}
            ),
        }

    def __init__(self, *args, scan_list=None, scan_error: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.scan_error = scan_error
        self.scans_by_id = {scan.id: scan for scan in visible_scans(scan_list)} if scan_list else {}
        self.scopes_by_id = {scope.id: scope for scope in scan_list.scopes} if scan_list else {}
        self.scan_count = len(self.scans_by_id)
        self.scope = None  # the export scope Bind to chose, once cleaned
        self._initial_sync = {name: getattr(self.instance, name) for name in SYNC_FIELDS}
        choices = bind_to_choices(scan_list) if scan_list else []
        if self.scopes_by_id:
            choices.append((VULNERABILITY_DATA, scope_choices(scan_list)))
        self.fields["scan_id"].choices = [("", "Choose a scan or vulnerability data…"), *choices]
        if self.instance.source_kind == SourceKind.EXPORT:
            self.initial["scan_id"] = SCOPE_PREFIX + self.instance.export_scope
        elif self.instance.scan_id is not None:
            self.initial["scan_id"] = str(
                self.instance.scan_id
            )  # as posted, so an unchanged one is unchanged
        if scan_error:
            # Without the list nothing can be validated, so any value is refused with the reason.
            message = f"Cannot check the scans in Tenable.io: {scan_error}"
            self.fields["scan_id"].error_messages.update(invalid_choice=message, required=message)
        self.fields["schedule_frequency"].choices = ScheduleFrequency.choices
        self.fields["first_sync_days"].validators.append(_days_in_range)
        self.initial["sync_severities"] = list(self.instance.severities) or [
            value for value, _ in SYNC_SEVERITIES
        ]
        shift = self.instance.severity_shift
        self.initial.setdefault("severity_plus", shift == SeverityShift.UP)
        self.initial.setdefault("severity_minus", shift == SeverityShift.DOWN)
        self.initial["schedule_days"] = [d for d in (self.instance.schedule_days or "").split(",") if d]
        if self.instance.pk is None:
            self.initial.setdefault("schedule_timezone", settings.TIME_ZONE)
        if not self.instance.webhook_url:
            del self.fields["regenerate_secret"]

    @property
    def binds_export(self) -> bool:
        """Whether Bind to (posted, or saved) names vulnerability data rather than a scan (for the drawer)."""
        return str(self["scan_id"].value() or "").startswith(SCOPE_PREFIX)

    def clean_scan_id(self) -> int | None:
        """A scan id, or None with `self.scope` set when Bind to chose vulnerability data."""
        value = self.cleaned_data["scan_id"]
        if value.startswith(SCOPE_PREFIX):
            self.scope = self.scopes_by_id[value[len(SCOPE_PREFIX) :]]
            return None
        return int(value)

    def clean_sync_severities(self) -> str:
        chosen = set(self.cleaned_data["sync_severities"])
        if self.scope is not None and not chosen:
            raise forms.ValidationError("Choose at least one severity to sync.")
        if chosen >= {value for value, _ in SYNC_SEVERITIES}:
            return ""  # all of them: nothing to filter
        return ",".join(value for value, _ in SYNC_SEVERITIES if value in chosen)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        # The (project, name) constraint is not checked by ModelForm because project is not a form field.
        clash = ScannerProfile.objects.filter(project=self.instance.project, name__iexact=name)
        if clash.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("This project already has a scanner profile with this name.")
        return name

    def clean_schedule_days(self) -> str:
        order = [value for value, _ in WEEKDAYS]
        return ",".join(sorted(set(self.cleaned_data["schedule_days"]), key=order.index))

    def clean_schedule_cron(self) -> str:
        return " ".join(self.cleaned_data["schedule_cron"].split())

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        if not url:
            return ""
        allowed = settings.WEBHOOK_ALLOWED_PRIVATE
        try:
            destination = validate_url(url, allow_http=settings.WEBHOOK_ALLOW_HTTP, allowed_private=allowed)
            resolve_and_check(destination.host, destination.port, allowed_private=allowed)
        except RestrictedDestination as exc:
            raise forms.ValidationError(exc.message) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("severity_plus") and cleaned.get("severity_minus"):
            self.add_error("severity_minus", BOTH_SEVERITIES)
        if self.scope is not None:
            cleaned["start_scan"] = False  # a sync reads what Tenable.io holds: there is no scan to start
        if cleaned.get("scheduler_enabled"):
            self._clean_schedule(cleaned)
        return cleaned

    def _clean_schedule(self, cleaned: dict) -> None:
        frequency = cleaned.get("schedule_frequency")
        if (
            frequency in (ScheduleFrequency.DAILY, ScheduleFrequency.WEEKLY)
            and not cleaned.get("schedule_time")
            and "schedule_time" not in self.errors  # a time that did not parse already says how to write it
        ):
            self.add_error("schedule_time", "Choose the time of day to run.")
        if frequency == ScheduleFrequency.WEEKLY and not cleaned.get("schedule_days"):
            self.add_error("schedule_days", "Choose at least one day.")
        if frequency == ScheduleFrequency.CRON:
            error = cron_error(cleaned.get("schedule_cron", ""))
            if error:
                self.add_error("schedule_cron", error)

    def changed_fields(self) -> list[str]:
        """Changed field names as the model knows them (the two severity switches are `severity_shift`)."""
        names = {"severity_shift" if n.startswith("severity_") else n for n in self.changed_data}
        if self.scope is None:
            names.discard("sync_severities")  # the sync settings are neither shown nor used for a scan
        return sorted(names - {"regenerate_secret"})

    def save(self, commit: bool = True) -> ScannerProfile:
        profile = super().save(commit=False)
        if self.scope is not None:
            scope = self.scope
            category, value = scope.tag or ("", "")
            profile.source_kind, profile.export_scope, profile.start_scan = SourceKind.EXPORT, scope.id, False
            profile.scope_category, profile.scope_value, profile.scope_label = (
                category,
                value,
                scope.label[:600],
            )
            profile.scan_name = profile.scan_schedule_uuid = ""
            profile.sync_severities = self.cleaned_data["sync_severities"]
        else:
            scan = self.scans_by_id[profile.scan_id]
            profile.source_kind, profile.export_scope = SourceKind.SCAN, ""
            profile.scope_category = profile.scope_value = profile.scope_label = profile.sync_severities = ""
            profile.include_unlicensed, profile.first_sync_days = False, None
            profile.scan_name, profile.scan_schedule_uuid = scan.name[:300], scan.schedule_uuid or ""
        if self.instance.pk and self._initial_sync != {name: getattr(profile, name) for name in SYNC_FIELDS}:
            profile.sync_cursor = None  # it asks Tenable for something else now: start again with everything
        if self.cleaned_data.get("severity_plus"):
            profile.severity_shift = SeverityShift.UP
        elif self.cleaned_data.get("severity_minus"):
            profile.severity_shift = SeverityShift.DOWN
        else:
            profile.severity_shift = SeverityShift.NONE
        if commit:
            profile.save()
        return profile


def _days_in_range(days: int | None) -> None:
    if days is not None and not 1 <= days <= 3650:
        raise forms.ValidationError(
            "Enter a number of days from 1 to 3650, or leave it blank for everything."
        )


def cron_error(expression: str) -> str:
    """Why a cron expression cannot be used, or "" when it can."""
    fields = expression.split()
    if len(fields) != 5:
        return "Enter five fields: minute hour day-of-month month day-of-week (e.g. 30 2 * * 1-5)."
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        parsed = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except (ValueError, IndexError, KeyError):
        return "This is not a valid cron expression."
    if len(parsed.minute) > 1:
        # Imports more often than hourly only spend Tenable's rate limit on unchanged results.
        return "Run at most once an hour: use a single minute, e.g. 0 */4 * * *."
    return ""
