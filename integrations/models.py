from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import models
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from .connectors import ConnectorSpec, connector_choices, connector_for
from .connectors.base import Capability, ConnectionInfo
from .fields import SecretField
from .rights import from_details

DEFAULT_API_URL = "https://cloud.tenable.com"
SECRET_FIELDS = ("access_key", "secret_key")


class IntegrationQuerySet(models.QuerySet):
    def for_listing(self) -> IntegrationQuerySet:
        """Rows for the Integrations page: secrets stay sealed, but their ciphertexts come along (as bytes, never
        decrypted by the ORM) so the card can tell keys this server can no longer decrypt (a lost FERNET_KEYS)."""
        return self.defer(*SECRET_FIELDS).annotate(
            **{f"sealed_{name}": Cast(name, models.BinaryField()) for name in SECRET_FIELDS}
        )


class Integration(models.Model):
    """A named connection to a scanner (one Tenable.io container) or a ticketing service (one Jira Cloud site),
    with its keys encrypted at rest."""

    # Choices are read from the registry when needed: registering a connector needs no migration.
    connector = models.CharField(max_length=32, choices=connector_choices)
    name = models.CharField("Connection Name", max_length=100, unique=True)
    is_active = models.BooleanField(default=False)
    api_url = models.URLField("API URL", max_length=300, default=DEFAULT_API_URL)
    access_key = SecretField(blank=True)
    secret_key = SecretField(blank=True)
    # An account name that is not a secret (Jira Cloud's e-mail), for connectors that declare a `login` field.
    login = models.CharField(max_length=254, blank=True)
    # The last four characters of the access key, kept apart so listing connections never decrypts anything.
    access_key_hint = models.CharField(max_length=4, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.TextField(blank=True)
    # After a successful test: who the key is and what it can do (`integrations.rights.to_details`).
    last_test_details = models.JSONField(default=dict, blank=True)
    # When the last test of the saved keys turned the connection from working (or untested) to failing.
    failing_since = models.DateTimeField(null=True, blank=True)
    # When the saved key pair was set (entered, or replaced), and by whom: the card shows its age.
    keys_set_at = models.DateTimeField(null=True, blank=True)
    keys_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["connector", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("integrations:settings", args=[self.pk])

    @property
    def spec(self) -> type[ConnectorSpec]:
        """The connector class of this connection: its declaration, and what `open_connector` builds."""
        return connector_for(self.connector)

    @property
    def has_keys(self) -> bool:
        return bool(self.access_key_hint)

    @property
    def keys_unreadable(self) -> bool:
        """Whether stored keys exist that FERNET_KEYS cannot decrypt; needs a row from `for_listing()`."""
        field = self._meta.get_field("access_key")
        for name in SECRET_FIELDS:
            sealed = getattr(self, f"sealed_{name}", None)
            if sealed:
                try:
                    field.fernet.decrypt(bytes(sealed))
                except InvalidToken:
                    return True
        return False

    @property
    def state(self) -> str:
        """One word for the card: inactive, unconfigured (no keys), unreadable (keys this server cannot decrypt),
        failing, connected, or untested (keys saved, never tested)."""
        if not self.is_active:
            return "inactive"
        if not self.has_keys:
            return "unconfigured"
        if self.keys_unreadable:
            return "unreadable"
        if self.last_test_ok is False:
            return "failing"
        if self.last_test_ok:
            return "connected"
        return "untested"

    @property
    def key_info(self) -> ConnectionInfo | None:
        """Who the saved key is and what it can do, as its last test found; None unless that test passed."""
        return from_details(self.last_test_details) if self.last_test_ok else None

    @property
    def capabilities(self) -> dict[str, Capability]:
        """What the saved key can do, by capability key (`connectors.base.CAN_*`), from its last passing test,
        without calling the service. Empty when not known (never tested, failing, or a connector that does not
        report them): only a capability present with status "missing" is a known lack (`Capability.usable`)."""
        info = self.key_info
        return {c.key: c for c in info.capabilities} if info else {}

    @property
    def keys_age_days(self) -> int | None:
        if not self.has_keys or self.keys_set_at is None:
            return None
        return (timezone.now() - self.keys_set_at).days

    @property
    def rotation_due(self) -> bool:
        """Whether the saved keys are older than KEY_ROTATION_DAYS (0 turns the reminder off)."""
        days = settings.KEY_ROTATION_DAYS
        age = self.keys_age_days
        return bool(days) and age is not None and age >= days

    @property
    def masked_access_key(self) -> str:
        return f"••••{self.access_key_hint}" if self.access_key_hint else ""
