"""The error the Tenable.io door raises (the connector contract's `ConnectorError`), and its sentences."""

from __future__ import annotations

from ..base import ConnectorError

# User-facing sentences (the seed's troubleshooting wording where it has one).
AUTH = (
    "Invalid User Key or Secret Key. Verify the API keys in the Tenable.io console under "
    "Settings > My Account > API Keys. Regenerate if needed."
)
FORBIDDEN = "Permission denied: the API key's user needs access to vulnerability management data"
# What each call needs (TENABLE_API.md › Roles and permissions per call), appended to FORBIDDEN.
FORBIDDEN_LIST = FORBIDDEN + " (Basic role with Can View on the scans)"
FORBIDDEN_READ = (
    FORBIDDEN
    + ": reading or exporting a scan's results needs the Scan Operator role [24] with Can View [16] on "
    "the scan. A Basic key can bind the profile to Vulnerability data instead."
)
FORBIDDEN_LAUNCH = (
    " to start this scan (Scan Operator role with Can Execute on the scan). The scan may also be disabled or "
    "imported (imported scans cannot be launched)."
)
SCAN_NOT_FOUND = "Scan not found in Tenable.io: it may have been deleted, or this API key cannot see it."
FILE_NOT_FOUND = "The Tenable.io export file was not found: it may have expired; start the export again."
ALREADY_RUNNING = "The Tenable.io scan is already running; wait for it to finish or turn off Start Scan."
CONFLICT = "Tenable.io refused the request because the scan is in a conflicting state (HTTP 409)."
RATE_LIMITED = "Tenable.io is rate-limiting this API key; retry after {seconds} seconds."
RATE_LIMITED_NO_HINT = "Tenable.io is rate-limiting this API key; retry in a few minutes."
SERVER = (
    "Tenable.io answered with a server error (HTTP {status}); this is usually temporary — "
    "try again in a few minutes."
)
DNS = "Cannot resolve {host}: check the API URL and this server's DNS."
TLS = (
    "TLS verification failed for {host}: the certificate is not trusted. "
    "Check the API URL (and any TLS-intercepting proxy)."
)
TIMEOUT = "Tenable.io did not respond within {seconds} seconds."
CONNECTION = "Cannot connect to {host}: {reason}."
EXPORT_FAILED = "Tenable.io could not export this scan run (export status: {status})."
EXPORT_TIMEOUT = "The Tenable.io export was not ready after {minutes} minutes; try again later."
TRUNCATED = "The download from Tenable.io was cut short; it will be retried."
BAD_RESPONSE = "Tenable.io sent an unexpected response (HTTP {status})."

# Bulk exports (/vulns/export, /assets/export, /assets/v2/export).
FORBIDDEN_EXPORT = (
    "Permission denied: the API key's user may not export vulnerability or asset data. Ensure the API key "
    "belongs to a user with access to vulnerability management data: Can View on the assets (a permission "
    "configuration on All Assets or on tags; the Basic role is enough)."
)
EXPORT_LIMIT = (
    "Tenable.io is already running as many export jobs as it allows, or is rate-limiting this API key; "
    "retry after {seconds} seconds."
)
EXPORT_LIMIT_NO_HINT = (
    "Tenable.io is already running as many export jobs as it allows, or is rate-limiting this API key; "
    "retry in a few minutes."
)
EXPORT_UNAVAILABLE = "This Tenable.io deployment does not offer the {what} export (HTTP {status})."
EXPORT_DUPLICATE = (
    "Tenable.io refused the export as a duplicate of a running job without naming it (HTTP 409); "
    "retry in a few minutes."
)
EXPORT_EXPIRED = "Tenable.io no longer has this export job or chunk (they expire); request a new export."
EXPORT_GONE = (
    "Tenable.io no longer knows export job {job} (export jobs and their chunks expire); request a new export."
)
CHUNK_EXPIRED = (
    "Chunk {chunk} of Tenable.io export {job} is gone (chunks can be downloaded for 24 hours); "
    "request a new export."
)
CHUNK_UNREADABLE = (
    "Chunk {chunk} of Tenable.io export {job} could not be read, so none of it was used. {detail}"
)

KINDS = frozenset(
    {
        "auth",
        "forbidden",
        "not_found",
        "conflict",
        "rate_limited",
        "server",
        "dns",
        "tls",
        "timeout",
        "connection",
        "export_failed",
        "export_timeout",
        "truncated",
        "too_large",
        "bad_response",
        "expired",  # an export job or chunk the service no longer has: request a new export
        "unreadable",  # an export chunk that is not valid JSON (never an empty list in its place)
        "unsupported",  # the connector has no such call (base.Connector's defaults)
    }
)


class TenableError(ConnectorError):
    """A failed Tenable.io call: `message` is for the user, `permanent` says whether retrying can help."""
