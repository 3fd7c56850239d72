"""The one error type the Jira Cloud door raises, with the user-facing sentences it carries."""

from __future__ import annotations

# User-facing sentences. Atlassian's own UI labels are quoted where a user has to find something.
AUTH = (
    "Jira rejected the e-mail address and API token (HTTP 401). Check that the e-mail is the one of the "
    "Atlassian account the token belongs to, and that the token is still valid: tokens are created, and "
    "expire or get revoked, under Atlassian account settings › Security › API tokens."
)
FORBIDDEN = (
    "Jira refused the request (HTTP 403): the account lacks the “{permission}” permission{where}. "
    "Ask a Jira administrator to grant it in the project's permission scheme "
    "(Project settings › Permissions)."
)
FORBIDDEN_SITE = (
    "Jira refused the request (HTTP 403): this Atlassian account may not use Jira on this site. "
    "Ask a site administrator to give it access to Jira (admin.atlassian.com › Products)."
)
PROJECT_NOT_FOUND = (
    "Jira project {key} was not found, or this account cannot see it (it needs the “Browse Projects” "
    "permission). Check the project key."
)
ISSUE_NOT_FOUND = (
    "Jira issue {key} was not found: it may have been deleted or moved to another project, "
    "or this account cannot see it."
)
NOT_FOUND = (
    "Jira answered “not found” (HTTP 404): {path} does not exist on this site, or this account cannot see it."
)
BAD_REQUEST = "Jira refused the request (HTTP {status}): {details}"
BAD_REQUEST_NO_DETAILS = "Jira refused the request (HTTP {status}) without saying why."
RATE_LIMITED = "Jira is rate-limiting this account; retry after {seconds} seconds."
RATE_LIMITED_NO_HINT = "Jira is rate-limiting this account; retry in a few minutes."
SERVER = (
    "Jira answered with a server error (HTTP {status}); this is usually temporary — "
    "try again in a few minutes."
)
REDIRECT = (
    "Jira answered with a redirect (HTTP {status}) to {target}; it was not followed, so the API token "
    "stayed with {host}. Check the site URL."
)
SITE_URL = (
    "The Jira site URL {url!r} is not valid: enter the address of your Jira Cloud site, "
    "like https://your-domain.atlassian.net."
)
CREDENTIALS_MISSING = "Enter the e-mail address and the API token of the Atlassian account Jira should use."
DNS = "Cannot resolve {host}: check the site URL and this server's DNS."
TLS = (
    "TLS verification failed for {host}: the certificate is not trusted. "
    "Check the site URL (and any TLS-intercepting proxy)."
)
TIMEOUT = "Jira did not respond within {seconds} seconds."
CONNECTION = "Cannot connect to {host}: {reason}."
BAD_RESPONSE = "Jira sent an unexpected response (HTTP {status})."
# Appended when a write was sent and its answer lost: Jira may have applied it.
OUTCOME_UNKNOWN = " The request reached Jira, which may have applied it; it was not repeated."

KINDS = frozenset(
    {
        "auth",
        "forbidden",
        "not_found",
        "bad_request",
        "rate_limited",
        "server",
        "redirect",
        "site_url",
        "dns",
        "tls",
        "timeout",
        "connection",
        "bad_response",
    }
)


class JiraError(Exception):
    """A failed Jira call: `message` is for the user, `permanent` says whether retrying can help.

    `outcome_unknown` is True when a write (create, transition, comment) was sent but its answer was
    lost (read timeout, connection cut, 5xx): Jira may have applied it, so the caller must look before
    writing again (for a create: search by the stable label).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"JiraError(kind={self.kind!r}, status={self.status!r}, permanent={self.permanent!r}, "
            f"retry_after={self.retry_after!r}, outcome_unknown={self.outcome_unknown!r}, "
            f"message={self.message!r})"
        )

    def __reduce__(self):
        # Keeps the error picklable (Celery ships exceptions between processes).
        return (
            _rebuild,
            (self.message, self.kind, self.permanent, self.status, self.retry_after, self.outcome_unknown),
        )


def _rebuild(message, kind, permanent, status, retry_after, outcome_unknown) -> JiraError:
    return JiraError(
        message,
        kind=kind,
        permanent=permanent,
        status=status,
        retry_after=retry_after,
        outcome_unknown=outcome_unknown,
    )
