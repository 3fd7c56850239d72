"""Project › Settings › Jira: the mapping form. The Jira project and issue type are checked live on save."""

from __future__ import annotations

import re

from django import forms

from integrations.connectors import TICKETING, slugs_of
from integrations.connectors.base import TicketProject
from integrations.models import SECRET_FIELDS, Integration
from projects.choices import Severity

from .choices import DEFAULT_PRIORITIES
from .content import split_labels, template_problems
from .models import TicketMapping

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")


def jira_connections():
    """Active ticketing connections, keys left sealed."""
    return Integration.objects.filter(connector__in=slugs_of(TICKETING), is_active=True).defer(*SECRET_FIELDS)


class MappingForm(forms.ModelForm):
    """Where tickets go (connection, project, issue type), which findings get one, how they read, how they close.

    `project_info` is the live lookup of the chosen Jira project (None when it failed: `lookup_error` says why);
    the issue types offered are the ones this account may create there.
    """

    class Meta:
        model = TicketMapping
        fields = [
            "integration",
            "jira_project",
            "issue_type_id",
            "enabled",
            "min_severity",
            "grouping",
            "label_scan_tag",
            "label_meta_data",
            "extra_labels",
            "description_template",
            "done_status",
            "reopen_status",
            "hand_closed",
            "creation_cap",
        ]
        widgets = {
            "grouping": forms.RadioSelect,
            "hand_closed": forms.RadioSelect,
            "description_template": forms.Textarea(
                attrs={"rows": 16, "spellcheck": "false", "class": "mono"}
            ),
            "jira_project": forms.TextInput(
                attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "SEC"}
            ),
        }
        help_texts = {
            "jira_project": "The project key, as in its issue keys (SEC for SEC-12).",
            "min_severity": "Open findings at or above this effective severity get a ticket, unless triaged away. "
            "“Create Jira ticket” on a finding makes one whatever its severity.",
            "extra_labels": "Added to every ticket, separated by commas or spaces. Each ticket also carries its "
            "own key label (tc-…), which finds it again if this server ever loses track of it.",
            "done_status": "Where a ticket goes when Tenable says fixed (or the host is gone); if the workflow "
            "has no such status, its first Done-category status.",
            "reopen_status": "Where a closed ticket goes when Tenable finds it again.",
            "creation_cap": "At most this many new tickets per run; the rest follow on the next run.",
        }

    def __init__(self, *args, project_info: TicketProject | None = None, lookup_error: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.project_info, self.lookup_error = project_info, lookup_error
        self.fields["integration"].queryset = jira_connections()
        self.fields["integration"].empty_label = None
        self.fields["min_severity"].choices = [(s.value, f"{s.label} and above") for s in reversed(Severity)]
        types = [(t.id, t.name) for t in project_info.types] if project_info else []
        if not types and self.instance.issue_type_id:
            types = [
                (self.instance.issue_type_id, self.instance.issue_type_name or self.instance.issue_type_id)
            ]
        self.fields["issue_type_id"] = forms.ChoiceField(
            label="Issue type",
            choices=types,
            help_text="The issue types this Jira account may create in the project.",
        )
        self.fields["creation_cap"].widget.attrs.update({"min": 1, "max": 1000})
        priorities = self.instance.priorities or DEFAULT_PRIORITIES
        self.priority_names = []
        for severity in reversed(Severity):
            name = f"priority_{severity.value}"
            self.fields[name] = forms.CharField(
                label=severity.label,
                required=False,
                max_length=60,
                initial=priorities.get(str(severity.value), ""),
                widget=forms.TextInput(attrs={"placeholder": "Jira's default"}),
            )
            self.priority_names.append(name)

    @property
    def priority_fields(self):
        return [self[name] for name in self.priority_names]

    def clean_jira_project(self) -> str:
        key = self.cleaned_data["jira_project"].strip().upper()
        if not PROJECT_KEY.match(key):
            raise forms.ValidationError("Enter the project's key: letters and digits, like SEC.")
        return key

    def clean_description_template(self) -> str:
        template = self.cleaned_data["description_template"]
        problems = template_problems(template)
        if problems:
            raise forms.ValidationError(problems)
        if len(template) > 10_000:
            raise forms.ValidationError("Keep the description template under 10,000 characters.")
        return template

    def clean_extra_labels(self) -> str:
        labels = split_labels(self.cleaned_data["extra_labels"])
        if any(len(label) > 255 for label in labels):
            raise forms.ValidationError("A Jira label has at most 255 characters.")
        return ", ".join(labels)

    def clean_creation_cap(self) -> int:
        cap = self.cleaned_data["creation_cap"]
        if not 1 <= cap <= 1000:
            raise forms.ValidationError("Between 1 and 1,000 ticket creations per run.")
        return cap

    def clean(self):
        cleaned = super().clean()
        if "jira_project" in cleaned and "integration" in cleaned and self.project_info is None:
            self.add_error("jira_project", self.lookup_error or "The Jira project could not be checked.")
        return cleaned

    def save(self, commit: bool = True) -> TicketMapping:
        mapping = super().save(commit=False)
        mapping.priorities = {
            name.split("_")[1]: self.cleaned_data.get(name, "").strip() for name in self.priority_names
        }
        if self.project_info:
            mapping.jira_project = self.project_info.key
            mapping.jira_project_name = self.project_info.name
            mapping.issue_type_name = dict((t.id, t.name) for t in self.project_info.types).get(
                mapping.issue_type_id, ""
            )
        if commit:
            mapping.save()
        return mapping
