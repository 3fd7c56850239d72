"""Forms of a project itself: name and description, deleting it, and its members."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from accounts.choices import Role

from .choices import ProjectRole
from .models import Membership, Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description"]
        help_texts = {
            "name": "Unique. The command line selects the project by this name: kdt scan -p <name>."
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ProjectDeleteForm(forms.Form):
    """Deleting a project takes its findings with it, so the name must be typed to confirm."""

    confirm_name = forms.CharField(label="Type the project name to confirm", max_length=100, strip=True)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_confirm_name(self) -> str:
        value = self.cleaned_data["confirm_name"]
        if value != self.project.name:
            raise forms.ValidationError(f"Type {self.project.name} exactly to delete this project.")
        return value


class MembershipForm(forms.ModelForm):
    """Add an existing user to a project. Admins see every project already, so they are not offered."""

    class Meta:
        model = Membership
        fields = ["user", "role"]
        help_texts = {"role": "Members edit and run the project's scanners; viewers only look."}

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.project = project
        self.fields["user"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, is_superuser=False)
            .exclude(role=Role.ADMIN)
            .exclude(memberships__project=project)
            .order_by("username")
        )
        self.fields["user"].empty_label = "Choose a user…"

    def clean(self):
        cleaned = super().clean()
        user = cleaned.get("user")
        if user is not None and user.is_read_only and cleaned.get("role") == ProjectRole.MEMBER:
            # A global viewer stays read-only everywhere; say so rather than grant a role that does nothing.
            self.add_error("role", f"{user.username} is a viewer across the app; add them as Viewer.")
        return cleaned


class MembershipRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]
