"""Workflows over connections: resolve credentials, test them, record the outcome, replace keys, check on a
schedule. Views and tasks stay thin."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts import notices
from accounts.models import Notice, record

from .connectors import SCANNER, TICKETING, ConnectorError, ConnectorSpec
from .connectors.base import ConnectionInfo, TicketingInfo
from .models import SECRET_FIELDS, Integration
from .rights import Needs, advice, from_details, to_details
from .signals import profile_needs, ticket_projects

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


def no_keys(spec: type[ConnectorSpec]) -> str:
    """NO_KEYS in the connector's words ("Enter the API token" for Jira Cloud)."""
    return f"No keys are saved for this connection yet. Enter the {spec.secret_labels()}."


def url_changed(spec: type[ConnectorSpec]) -> str:
    """URL_CHANGED in the connector's words ("The Site URL changed, so enter the API token again…")."""
    where = spec.api_url_label
    return (
        f"The {where} changed, so enter the {spec.secret_labels()} again: saved keys are only ever sent to "
        f"the {where} they were saved with."
    )


def not_allowed(spec: type[ConnectorSpec]) -> str:
    """Why an address is refused, in the connector's words (NOT_ALLOWED for Tenable.io)."""
    return spec.not_allowed or NOT_ALLOWED


class CredentialsUnavailable(Exception):
    """Stored keys are missing, cannot be decrypted or belong to another API URL; the user must re-enter them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AddressNotAllowed(CredentialsUnavailable):
    """The API URL is outside the service's hosts and the operator's list: no key is ever sent there."""

    def __init__(self, message: str = NOT_ALLOWED):
        super().__init__(message)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_allowed_for(url: str, spec: type[ConnectorSpec]) -> bool:
    """`is_allowed_api_url` with the connector's own domain and operator setting."""
    return is_allowed_api_url(url, spec.api_domain, spec.hosts_setting)


def is_allowed_api_url(
    url: str, domain: str = TENABLE_DOMAIN, hosts_setting: str = "TENABLE_API_HOSTS"
) -> bool:
    """The service's own hosts (`*.tenable.com` over https: the connector's `api_domain`), hosts listed in
    the connector's `hosts_setting` (TENABLE_API_HOSTS; JIRA_SITE_HOSTS for Jira Cloud), loopback under DEBUG.

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
    listed = {entry.strip().lower() for entry in getattr(settings, hosts_setting, []) if entry.strip()}
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
    """What Test Connection found: `details` is what the connection stores (`rights.to_details` on success);
    `info` the connector's report; `transient` a failure that retrying later may cure (a timeout, a 5xx)."""

    ok: bool
    message: str
    warning: str = ""
    warning_title: str = "No scans available"
    details: dict = field(default_factory=dict)
    info: ConnectionInfo | None = None
    transient: bool = False


@sensitive_variables("credentials", "stored")
def stored_credentials(integration: Integration) -> tuple[dict[str, str], str]:
    """The stored credentials (by field name) and the API URL saved with them, read from the database (never
    from a form-edited instance). An undecryptable value becomes a message instead of a 500 (RELIABILITY §3.4).
    """
    if integration.pk is None:
        raise CredentialsUnavailable(no_keys(integration.spec))
    names = integration.spec.credential_names()
    try:
        stored = Integration.objects.only(*names, "api_url").get(pk=integration.pk)
    except InvalidToken:
        log.critical("Integration %s: stored keys cannot be decrypted with FERNET_KEYS", integration.pk)
        raise CredentialsUnavailable(UNDECRYPTABLE) from None
    credentials = {name: getattr(stored, name) for name in names}
    if not all(credentials.values()):
        raise CredentialsUnavailable(no_keys(integration.spec))
    return credentials, stored.api_url


@sensitive_variables("typed", "credentials", "stored")
def open_connector(
    integration: Integration, *, interactive: bool = False, kind: str = SCANNER, **overrides: Any
) -> Any:
    """A connector for this connection. Interactive calls (Test Connection, Bind to) get a short time budget.

    `kind` is what the caller speaks (SCANNER: `base.Connector`, TICKETING: `base.TicketingConnector`): a
    connection of the other kind is refused with a sentence, so scanner paths never reach a ticketing service.
    Overrides named like a credential field are typed-in keys; `api_url` is the URL to try; the rest are options.
    Keys typed in (all of them) may go to any allowed API URL; a stored key only ever goes to the URL saved
    with it (RELIABILITY S8), whatever URL the caller or an edited instance asks for.
    """
    spec = integration.spec
    if spec.kind != kind:
        what = "a ticketing destination" if spec.kind == TICKETING else "a scanner"
        raise CredentialsUnavailable(
            f"{integration.name} is a {spec.label} connection ({what}); it cannot be used here."
        )
    typed = {name: overrides.pop(name, None) or "" for name in spec.credential_names()}
    api_url = overrides.pop("api_url", None) or integration.api_url
    if not is_allowed_for(api_url, spec):
        raise AddressNotAllowed(not_allowed(spec))
    credentials = typed
    if not all(typed.values()):
        stored, saved_url = stored_credentials(integration)
        if not same_api_url(api_url, saved_url):
            raise CredentialsUnavailable(url_changed(spec))
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
    """Test the given keys (blank means the stored ones): who they belong to and their role, what they may view,
    how many scans they see and the checklist of what they can do (all within the interactive budget).

    A ticketing connection says whose account it is and, for each project the apps above map to it
    (`signals.ticket_projects`), the permissions the account lacks there."""
    spec = integration.spec
    if spec.kind == TICKETING:
        return _test_ticketing(integration, api_url=api_url, **credentials)
    try:
        with open_connector(integration, interactive=True, api_url=api_url, **credentials) as connector:
            info = connector.test_connection()
    except CredentialsUnavailable as exc:
        return TestResult(False, exc.message)
    except ConnectorError as exc:
        return TestResult(
            False, exc.message, details={"kind": exc.kind, "status": exc.status}, transient=not exc.permanent
        )
    who = info.username or "this API key"
    container = f" (container {info.container})" if info.container else ""
    role = f", {info.role_name} role" if info.role_name else ""
    scans = f"{info.scan_count} scan{'s' if info.scan_count != 1 else ''}"
    result = TestResult(
        True, f"Connected as {who}{container}{role}; {scans} visible.", details=to_details(info), info=info
    )
    if info.scan_count == 0:
        result.warning = f"No scans are visible to this key. {spec.no_scans_resolution}".strip()
    return result


def projects_of(integration: Integration) -> list[str]:
    """The ticketing project keys the apps above map to this connection (none for a new one)."""
    if integration.pk is None:
        return []
    keys: list[str] = []
    for _, answer in ticket_projects.send(sender=Integration, integrations=[integration]):
        keys.extend((answer or {}).get(integration.pk, []))
    return sorted(set(keys))


@sensitive_variables("credentials")
def _test_ticketing(integration: Integration, *, api_url: str = "", **credentials: str) -> TestResult:
    try:
        with open_connector(
            integration, interactive=True, kind=TICKETING, api_url=api_url, **credentials
        ) as connector:
            info: TicketingInfo = connector.test_connection(projects_of(integration))
    except CredentialsUnavailable as exc:
        return TestResult(False, exc.message)
    except ConnectorError as exc:
        return TestResult(
            False, exc.message, details={"kind": exc.kind, "status": exc.status}, transient=not exc.permanent
        )
    email = f" ({info.email})" if info.email else ""
    message = f"Connected as {info.username or 'this account'}{email}."
    problems = []
    for project in info.projects:
        if project.error:
            problems.append(f"{project.key}: {project.error}")
        elif project.missing:
            problems.append(
                f"{project.key} lacks the permission{'s' if len(project.missing) > 1 else ''} "
                f"{', '.join(project.missing)}."
            )
    checked = [p.key for p in info.projects if p.ok]
    if checked:
        message += f" Every permission tickets need is granted in {', '.join(checked)}."
    details = {
        "kind": TICKETING,
        "username": info.username,
        "email": info.email,
        "projects": [
            {"key": p.key, "name": p.name, "missing": list(p.missing), "error": p.error}
            for p in info.projects
        ],
    }
    warning = f"{message} Missing in {integration.spec.label}: {' '.join(problems)}" if problems else ""
    return TestResult(True, message, warning=warning, warning_title="Permissions missing", details=details)


UNCHANGED = object()


def remember_result(
    integration: Integration,
    result: TestResult,
    actor,
    request=None,
    *,
    audit: bool = True,
    keys_set_at: Any = UNCHANGED,
) -> str:
    """Store the outcome on the connection (the card shows it) and, unless told not to, write the audit event.

    Returns "failing" when this result turned a working (or untested) connection into a failing one, "recovered"
    when it turned a failing one into a working one, else "". With `keys_set_at`, nothing is stored unless the
    keys are still the ones set then (a check that began before a key replacement must not describe the new keys).
    """
    now = timezone.now()
    rows = Integration.objects.filter(pk=integration.pk)
    if keys_set_at is not UNCHANGED:
        rows = rows.filter(keys_set_at=keys_set_at)
    outcome = {
        "last_tested_at": now,
        "last_test_ok": result.ok,
        "last_test_message": (result.warning or result.message)[:1000],
        "last_test_details": result.details,
    }
    # Conditional updates, so two tests finishing together report one transition (background-writer rule).
    if result.ok:
        changed = (
            "recovered"
            if rows.filter(failing_since__isnull=False).update(**outcome, failing_since=None)
            else ""
        )
    else:
        changed = (
            "failing" if rows.filter(failing_since__isnull=True).update(**outcome, failing_since=now) else ""
        )
    if not changed:
        rows.update(**outcome)
    integration.refresh_from_db(fields=[*outcome, "failing_since"])
    if changed == "recovered":
        notices.withdraw(failing_topic(integration))
    if audit:
        record(
            actor,
            "integration.tested",
            integration,
            request,
            ok=result.ok,
            result=result.message[:300],
            api_url=integration.api_url,
        )
    return changed


# ---------------------------------------------------------------------------------------------------------------
# What the profiles need, and advice
# ---------------------------------------------------------------------------------------------------------------
def needs_for(integrations: list[Integration]) -> dict[int, Needs]:
    """What the scanner profiles using each connection need, by pk, as the apps above answer `profile_needs`."""
    merged: dict[int, dict[str, list[str]]] = {integration.pk: {} for integration in integrations}
    if not merged:
        return merged
    for _, answer in profile_needs.send(sender=Integration, integrations=integrations):
        for pk, needs in (answer or {}).items():
            for key, labels in needs.items():
                merged.setdefault(pk, {}).setdefault(key, []).extend(labels)
    return merged


def attach_advice(integrations: list[Integration]) -> list[Integration]:
    """Set `.advice` (least-privilege advice from the last passing test and the profiles' needs) on each."""
    needs = needs_for(integrations)
    for integration in integrations:
        integration.advice = advice(integration.key_info, needs.get(integration.pk, {}))
    return integrations


# ---------------------------------------------------------------------------------------------------------------
# Replacing keys (rotation without downtime)
# ---------------------------------------------------------------------------------------------------------------
KEPT = "The old keys stay active."


@dataclass
class Replacement:
    """The outcome of Replace keys: accepted (the new pair is in use) or refused with the reason."""

    accepted: bool
    reason: str
    result: TestResult


@sensitive_variables("credentials", "current")
def replace_keys(integration: Integration, actor, request=None, **credentials: str) -> Replacement:
    """Test a new key pair against the saved API URL, then swap it in atomically, or refuse and keep the old pair.

    Refused when the test fails, when the keys are the ones in use, when they reach another container, or when
    they lack what the connection's profiles need (the checklist says). A run already in progress keeps the
    connector, and so the keys, it started with. Audited as "integration.keys_rotated" (who and when; never keys).
    """
    result = test_connection(integration, api_url=integration.api_url, **credentials)
    reason = _refusal(integration, result, credentials)
    if reason:
        record(actor, "integration.keys_refused", integration, request, reason=reason[:300])
        return Replacement(False, reason, result)
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().defer(*SECRET_FIELDS).get(pk=integration.pk)
        previous_set_at = locked.keys_set_at
        if previous_set_at != integration.keys_set_at or not same_api_url(
            locked.api_url, integration.api_url
        ):
            reason = (
                f"The connection's keys or API URL changed while the new keys were tested; try again. {KEPT}"
            )
            return Replacement(False, reason, result)
        for name, value in credentials.items():
            setattr(locked, name, value)
        locked.access_key_hint = credentials.get("access_key", "")[-4:]
        locked.keys_set_at, locked.keys_set_by = (
            now,
            actor if getattr(actor, "is_authenticated", False) else None,
        )
        locked.updated_by = locked.keys_set_by
        locked.last_tested_at, locked.last_test_ok, locked.failing_since = now, True, None
        locked.last_test_message = (result.warning or result.message)[:1000]
        locked.last_test_details = result.details
        locked.save(
            update_fields=[
                *credentials,
                "access_key_hint",
                "keys_set_at",
                "keys_set_by",
                "updated_by",
                "updated_at",
                "last_tested_at",
                "last_test_ok",
                "last_test_message",
                "last_test_details",
                "failing_since",
            ]
        )
        record(
            actor,
            "integration.keys_rotated",
            locked,
            request,
            api_url=locked.api_url,
            role=(result.info.role_name if result.info else None) or "",
            previous_keys_set_at=previous_set_at.isoformat() if previous_set_at else "",
        )
    notices.withdraw(failing_topic(integration))
    integration.refresh_from_db()
    return Replacement(True, "", result)


@sensitive_variables("credentials", "current")
def _refusal(integration: Integration, result: TestResult, credentials: dict[str, str]) -> str:
    """Why a new pair may not replace the old one, in one sentence the admin can act on; "" when it may."""
    if not result.ok:
        return f"The new keys were refused: {result.message} {KEPT}"
    try:
        current, _ = stored_credentials(integration)
    except CredentialsUnavailable:
        current = {}
    if current and all(current.get(name) == value for name, value in credentials.items()):
        if integration.spec.kind == TICKETING:
            return f"This is the {integration.spec.secret_labels()} this connection already uses: create a new one first. {KEPT}"
        return f"These are the keys this connection already uses: generate a new pair in Tenable.io first. {KEPT}"
    before = from_details(integration.last_test_details) if integration.last_test_ok else None
    info = result.info
    if before and info and before.container and info.container and before.container != info.container:
        return (
            f"The new keys belong to the container “{info.container}”, but this connection reaches "
            f"“{before.container}”: keys of another container need a connection of their own. {KEPT}"
        )
    lacking = [a for a in advice(info, needs_for([integration])[integration.pk]) if a.kind == "less"]
    if lacking:
        return f"The new keys cannot do what this connection's profiles need. {lacking[0].sentence} {KEPT}"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# The scheduled check
# ---------------------------------------------------------------------------------------------------------------
class CheckLater(Exception):
    """A scheduled check failed in a way retrying may cure (timeout, 5xx, rate limit): try again before saying
    the connection is failing."""


def failing_topic(integration: Integration) -> str:
    return f"integration:{integration.pk}:failing"


def check_connection(integration_id: int, *, final: bool = True) -> TestResult | None:
    """Re-test one active connection's saved keys and record the result (the card and dashboard show it).

    When the connection starts failing, every admin is told once (an in-app notice; e-mail if configured).
    A transient failure raises CheckLater unless this is the `final` attempt. None when there is nothing to check.
    """
    integration = Integration.objects.defer(*SECRET_FIELDS).filter(pk=integration_id, is_active=True).first()
    if integration is None or not integration.has_keys:
        return None
    keys_set_at = integration.keys_set_at
    result = test_connection(integration)
    if not result.ok and result.transient and not final:
        raise CheckLater(result.message)
    changed = remember_result(integration, result, None, audit=False, keys_set_at=keys_set_at)
    if changed == "failing":
        record(None, "integration.check_failed", integration, result=result.message[:300])
        link = (
            f"{reverse('integrations:scanners')}?tab={integration.spec.category}#connection-{integration.pk}"
        )
        notices.notify_admins(
            failing_topic(integration),
            f"Connection failing: {integration.name}. {result.message}",
            level=Notice.Level.ERROR,
            link=link,
            link_text="Open Integrations",
            subject=f"Connection failing: {integration.name}",
        )
    elif changed == "recovered":
        record(None, "integration.check_recovered", integration, result=result.message[:300])
    return result
