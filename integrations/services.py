"""Workflows over connections: resolve credentials, test them, record the outcome. Views stay thin."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import record

from .connectors import connector_for
from .connectors.tenable_io.errors import TenableError
from .models import Integration

log = logging.getLogger(__name__)

NO_SCANS_RESOLUTION = (
    "Ensure at least one completed scan exists in your Tenable.io account and the API key has access to it."
)
UNDECRYPTABLE = (
    "The stored keys cannot be decrypted with this server's FERNET_KEYS (the encryption key changed). "
    "Re-enter the User Key and Secret Key."
)


class CredentialsUnavailable(Exception):
    """Stored keys are missing or cannot be decrypted; the user must re-enter them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class TestResult:
    ok: bool
    message: str
    warning: str = ""
    details: dict = field(default_factory=dict)


@sensitive_variables("access_key", "secret_key", "stored")
def stored_credentials(integration: Integration) -> tuple[str, str]:
    """Decrypt the stored keys, turning an undecryptable value into a message instead of a 500 (RELIABILITY §3.4)."""
    try:
        stored = Integration.objects.only("access_key", "secret_key").get(pk=integration.pk)
    except InvalidToken:
        log.critical("Integration %s: stored keys cannot be decrypted with FERNET_KEYS", integration.pk)
        raise CredentialsUnavailable(UNDECRYPTABLE) from None
    if not stored.access_key or not stored.secret_key:
        raise CredentialsUnavailable(
            "No keys are saved for this connection yet. Enter the User Key and Secret Key."
        )
    return stored.access_key, stored.secret_key


@sensitive_variables("access_key", "secret_key")
def open_connector(integration: Integration, *, interactive: bool = False, **overrides):
    """A connector for this connection. Interactive calls (Test Connection, Bind to) get a short time budget."""
    access_key = overrides.pop("access_key", None)
    secret_key = overrides.pop("secret_key", None)
    if not access_key or not secret_key:
        stored_access, stored_secret = stored_credentials(integration)
        access_key, secret_key = access_key or stored_access, secret_key or stored_secret
    api_url = overrides.pop("api_url", None) or integration.api_url
    options = {"timeout": settings.TENABLE_TIMEOUT, **overrides}
    # Exports are decoded under the upload cap, so a gzip bomb cannot outgrow what an upload may be.
    options.setdefault("max_download_bytes", settings.NESSUS_UPLOAD_MAX_BYTES)
    if interactive:
        budget = settings.TENABLE_INTERACTIVE_BUDGET
        options.update(
            timeout=(settings.TENABLE_TIMEOUT[0], min(settings.TENABLE_TIMEOUT[1], budget)),
            budget=budget,
            max_retries=1,
        )
    return connector_for(integration.connector or "tenableiovm")(access_key, secret_key, api_url, **options)


@sensitive_variables("access_key", "secret_key")
def test_connection(
    integration: Integration, *, access_key: str = "", secret_key: str = "", api_url: str = ""
) -> TestResult:
    """Test the given keys (blank means the stored ones) and say who they belong to and how many scans they see."""
    try:
        connector = open_connector(
            integration, interactive=True, access_key=access_key, secret_key=secret_key, api_url=api_url
        )
        info = connector.test_connection()
    except CredentialsUnavailable as exc:
        return TestResult(False, exc.message)
    except TenableError as exc:
        return TestResult(False, exc.message, details={"kind": exc.kind, "status": exc.status})
    who = info.username or "this API key"
    container = f" (container {info.container})" if info.container else ""
    scans = f"{info.scan_count} scan{'s' if info.scan_count != 1 else ''}"
    result = TestResult(
        True,
        f"Connected as {who}{container}; {scans} visible.",
        details={"username": info.username, "container": info.container, "scan_count": info.scan_count},
    )
    if info.scan_count == 0:
        result.warning = f"No scans are visible to this key. {NO_SCANS_RESOLUTION}"
    return result


def remember_result(integration: Integration, result: TestResult, actor, request=None) -> None:
    """Store the outcome on the connection (the card shows it) and write the audit event."""
    Integration.objects.filter(pk=integration.pk).update(
        last_tested_at=timezone.now(),
        last_test_ok=result.ok,
        last_test_message=(result.warning or result.message)[:1000],
        last_test_details=result.details,
    )
    integration.refresh_from_db(
        fields=["last_tested_at", "last_test_ok", "last_test_message", "last_test_details"]
    )
    record(actor, "integration.tested", integration, request, ok=result.ok, result=result.message[:300])
