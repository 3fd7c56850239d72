"""Workflows over connections: resolve credentials, test them, record the outcome. Views stay thin."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import record

from .connectors import Connector, ConnectorError
from .models import Integration

log = logging.getLogger(__name__)

UNDECRYPTABLE = (
    "The stored keys cannot be decrypted with this server's FERNET_KEYS (the encryption key changed). "
    "Re-enter the User Key and Secret Key."
)
NO_KEYS = "No keys are saved for this connection yet. Enter the User Key and Secret Key."
URL_CHANGED = (
    "The API URL changed, so enter the User Key and Secret Key again: saved keys are only ever sent to "
    "the API URL they were saved with."
)
# The same sentence whatever is (or is not) listening there: the check runs before any connection.
NOT_ALLOWED = (
    "This is not an allowed Tenable.io address. Use your region's https://…tenable.com URL "
    "(e.g. https://cloud.tenable.com or https://fedcloud.tenable.com); other hosts must be listed in "
    "this server's TENABLE_API_HOSTS setting."
)
TENABLE_DOMAIN = "tenable.com"


class CredentialsUnavailable(Exception):
    """Stored keys are missing, cannot be decrypted or belong to another API URL; the user must re-enter them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AddressNotAllowed(CredentialsUnavailable):
    """The API URL is outside Tenable's hosts and TENABLE_API_HOSTS: no key is ever sent there."""

    def __init__(self):
        super().__init__(NOT_ALLOWED)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_allowed_api_url(url: str, domain: str = TENABLE_DOMAIN) -> bool:
    """The service's own hosts (`*.tenable.com` over https: the connector's `api_domain`), hosts listed in
    TENABLE_API_HOSTS, loopback under DEBUG.

    Decided from the URL alone, before connecting, so the answer says nothing about what exists at an address.
    Plain http is only ever allowed to loopback (the local simulator).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "http":
        secure = False
    elif parts.scheme == "https":
        secure = True
    else:
        return False
    listed = {entry.strip().lower() for entry in settings.TENABLE_API_HOSTS if entry.strip()}
    if host in listed or (settings.DEBUG and is_loopback(host)):
        return secure or is_loopback(host)
    vendor_host = bool(domain) and (host == domain or host.endswith("." + domain))
    return secure and vendor_host and port in (None, 443)


def same_api_url(a: str, b: str) -> bool:
    """Whether two API URLs name the same endpoint (trailing slashes and the case of scheme/host aside)."""

    def norm(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return norm(a) == norm(b)


@dataclass
class TestResult:
    ok: bool
    message: str
    warning: str = ""
    details: dict = field(default_factory=dict)


@sensitive_variables("credentials", "stored")
def stored_credentials(integration: Integration) -> tuple[dict[str, str], str]:
    """The stored credentials (by field name) and the API URL saved with them, read from the database (never
    from a form-edited instance). An undecryptable value becomes a message instead of a 500 (RELIABILITY §3.4).
    """
    if integration.pk is None:
        raise CredentialsUnavailable(NO_KEYS)
    names = integration.spec.credential_names()
    try:
        stored = Integration.objects.only(*names, "api_url").get(pk=integration.pk)
    except InvalidToken:
        log.critical("Integration %s: stored keys cannot be decrypted with FERNET_KEYS", integration.pk)
        raise CredentialsUnavailable(UNDECRYPTABLE) from None
    credentials = {name: getattr(stored, name) for name in names}
    if not all(credentials.values()):
        raise CredentialsUnavailable(NO_KEYS)
    return credentials, stored.api_url


@sensitive_variables("typed", "credentials", "stored")
def open_connector(integration: Integration, *, interactive: bool = False, **overrides: Any) -> Connector:
    """A connector for this connection. Interactive calls (Test Connection, Bind to) get a short time budget.

    Overrides named like a credential field are typed-in keys; `api_url` is the URL to try; the rest are options.
    Keys typed in (all of them) may go to any allowed API URL; a stored key only ever goes to the URL saved
    with it (RELIABILITY S8), whatever URL the caller or an edited instance asks for.
    """
    spec = integration.spec
    typed = {name: overrides.pop(name, None) or "" for name in spec.credential_names()}
    api_url = overrides.pop("api_url", None) or integration.api_url
    if not is_allowed_api_url(api_url, spec.api_domain):
        raise AddressNotAllowed
    credentials = typed
    if not all(typed.values()):
        stored, saved_url = stored_credentials(integration)
        if not same_api_url(api_url, saved_url):
            raise CredentialsUnavailable(URL_CHANGED)
        credentials = {name: typed[name] or stored[name] for name in typed}
    options = {"timeout": settings.TENABLE_TIMEOUT, **overrides}
    # Exports are decoded under a cap, so a gzip bomb cannot run on for ever.
    options.setdefault("max_download_bytes", settings.TENABLE_EXPORT_MAX_BYTES)
    if interactive:
        budget = settings.TENABLE_INTERACTIVE_BUDGET
        options.update(
            timeout=(settings.TENABLE_TIMEOUT[0], min(settings.TENABLE_TIMEOUT[1], budget)),
            budget=budget,
            max_retries=1,
        )
    return spec(api_url=api_url, **credentials, **options)


@sensitive_variables("credentials")
def test_connection(integration: Integration, *, api_url: str = "", **credentials: str) -> TestResult:
    """Test the given keys (blank means the stored ones) and say who they belong to and how many scans they see."""
    spec = integration.spec
    try:
        with open_connector(integration, interactive=True, api_url=api_url, **credentials) as connector:
            info = connector.test_connection()
    except CredentialsUnavailable as exc:
        return TestResult(False, exc.message)
    except ConnectorError as exc:
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
        result.warning = f"No scans are visible to this key. {spec.no_scans_resolution}".strip()
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
    record(
        actor,
        "integration.tested",
        integration,
        request,
        ok=result.ok,
        result=result.message[:300],
        api_url=integration.api_url,
    )
