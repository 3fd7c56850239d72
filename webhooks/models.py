"""The webhook outbox: one row per event of a profile's webhook, and one per attempt to send it.

The tables keep the names the projects app gave them, so moving the models here moved no data.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookDelivery(models.Model):
    """One event for a profile's webhook: the outbox row, written in the transaction that finishes the run."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Not sent"

    BADGES = {"pending": "progress", "sending": "progress", "delivered": "success", "failed": "danger"}

    profile = models.ForeignKey(
        "projects.ScannerProfile", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    run = models.ForeignKey(
        "projects.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_deliveries",
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
        db_table = "projects_webhookdelivery"  # created by the projects app, which used to hold this model
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["profile", "-created_at"], name="projects_we_profile_76c0d9_idx")]
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
        db_table = "projects_webhookattempt"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.delivery_id}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error
