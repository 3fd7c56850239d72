from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from .choices import Role
from .network import client_ip


class User(AbstractUser):
    """A person who signs in; `role` decides what they may do across the app."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    @property
    def is_admin(self) -> bool:
        return self.is_active and (self.is_superuser or self.role == Role.ADMIN)

    @property
    def is_read_only(self) -> bool:
        return self.role == Role.VIEWER and not self.is_superuser

    @property
    def effective_role(self) -> str:
        return Role.ADMIN if self.is_superuser else self.role

    def get_effective_role_display(self) -> str:
        return Role(self.effective_role).label


class AuditEvent(models.Model):
    """Who did what to which object, and when. Never holds a secret value: details are names and outcomes."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.object_repr}".strip()

    @property
    def summary(self) -> str:
        return ", ".join(f"{key}: {value}" for key, value in self.details.items())


def record(
    actor: Any, action: str, obj: models.Model | None = None, request: Any = None, **details: Any
) -> AuditEvent:
    """Record an audit event. `details` must hold names and outcomes only, never secret values."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:300] if obj is not None else "",
        details=details,
        ip_address=client_ip(request) if request is not None else None,
    )


class NoticeQuerySet(models.QuerySet):
    def unseen(self) -> NoticeQuerySet:
        return self.filter(seen_at__isnull=True)


class Notice(models.Model):
    """An in-app notice for one user, shown once in the messages area on their next page (e.g. a connection that
    started failing on a scheduled check). `topic` names what it is about, so a newer notice on the same topic
    replaces an unseen older one and a resolved topic withdraws it."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    topic = models.CharField(max_length=100)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.WARNING)
    text = models.CharField(max_length=1000)
    link = models.CharField(max_length=300, blank=True)  # a path on this site, e.g. the Integrations page
    link_text = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["user"], condition=models.Q(seen_at__isnull=True), name="notice_unseen_by_user"
            )
        ]

    def __str__(self) -> str:
        return self.text
