from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from .connectors import CONNECTORS, connector_for
from .fields import SecretField

DEFAULT_API_URL = "https://cloud.tenable.com"


class Integration(models.Model):
    """A named connection to a scanner service (one Tenable.io container), with its keys encrypted at rest."""

    connector = models.CharField(max_length=32, choices=[(slug, c.label) for slug, c in CONNECTORS.items()])
    name = models.CharField("Connection Name", max_length=100, unique=True)
    is_active = models.BooleanField(default=False)
    api_url = models.URLField("API URL", max_length=300, default=DEFAULT_API_URL)
    access_key = SecretField(blank=True)
    secret_key = SecretField(blank=True)
    # The last four characters of the access key, kept apart so listing connections never decrypts anything.
    access_key_hint = models.CharField(max_length=4, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.TextField(blank=True)
    last_test_details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["connector", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("integrations:settings", args=[self.pk])

    @property
    def spec(self):
        return connector_for(self.connector)

    @property
    def state(self) -> str:
        """One word for the card: not activated, active (connected), failing, or untested."""
        if not self.is_active:
            return "inactive"
        if self.last_test_ok is False:
            return "failing"
        if self.last_test_ok:
            return "connected"
        return "untested"

    @property
    def masked_access_key(self) -> str:
        return f"••••{self.access_key_hint}" if self.access_key_hint else ""
