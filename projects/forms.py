from __future__ import annotations

from django import forms

from .models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description"]
        help_texts = {
            "name": "Unique. The command line selects the project by this name: kdt scan -p <name>."
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
