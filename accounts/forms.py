from __future__ import annotations

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm

from .choices import Role
from .models import User


class SetupForm(BaseUserCreationForm):
    """The first admin, created once on a fresh install."""

    class Meta:
        model = User
        fields = ["username", "email"]

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.role = Role.ADMIN
        user.is_staff = user.is_superuser = True
        if commit:
            user.save()
        return user


class UserCreateForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name", "role"]


class UserEditForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["email", "first_name", "last_name", "role", "is_active"]
        labels = {"is_active": "Active (can sign in)"}
