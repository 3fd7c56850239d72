"""WSGI answers shaped like Jira Cloud's: JSON bodies, the `errorMessages`/`errors` collection, 429 headers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape
from http import HTTPStatus
from typing import Any

JSON_TYPE = "application/json;charset=UTF-8"
# Wrong e-mail or token: Jira takes the token for a password (seen on Atlassian Cloud).
AUTH_FAILED = (
    b"Basic authentication with passwords is deprecated.  For more information, see: "
    b"https://developer.atlassian.com/cloud/confluence/deprecation-notice-basic-auth/"
)
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Log in</title></head><body><form>Log in</form></body></html>"


def json_response(
    start_response: Callable, status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", JSON_TYPE), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


def no_content(start_response: Callable) -> list[bytes]:
    start_response("204 No Content", [])
    return []


def error_collection(
    start_response: Callable,
    status: int,
    messages: list[str] | None = None,
    errors: dict[str, str] | None = None,
) -> list[bytes]:
    """Jira's error body: `{"errorMessages": [...], "errors": {field: message}}`."""
    return json_response(start_response, status, {"errorMessages": messages or [], "errors": errors or {}})


def unauthorized(start_response: Callable) -> list[bytes]:
    start_response(
        "401 Unauthorized",
        [
            ("Content-Type", "text/plain;charset=UTF-8"),
            ("Content-Length", str(len(AUTH_FAILED))),
            ("WWW-Authenticate", 'Basic realm="protected-area"'),
            ("X-Seraph-LoginReason", "AUTHENTICATED_FAILED"),
        ],
    )
    return [AUTH_FAILED]


def rate_limited(start_response: Callable, retry_after: str | None, now: float) -> list[bytes]:
    """429 with Jira's headers: Retry-After in seconds, X-RateLimit-Reset as an ISO timestamp."""
    headers = [
        ("RateLimit-Reason", "jira-burst-based"),
        ("X-RateLimit-Limit", "100"),
        ("X-RateLimit-Remaining", "0"),
    ]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
        try:
            reset = datetime.fromtimestamp(now + float(retry_after), tz=UTC)
            headers.append(("X-RateLimit-Reset", reset.strftime("%Y-%m-%dT%H:%MZ")))
        except (ValueError, OverflowError):
            pass
    return json_response(
        start_response, 429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers
    )


def html(start_response: Callable, status: int = 200) -> list[bytes]:
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "text/html;charset=UTF-8"), ("Content-Length", str(len(LOGIN_PAGE)))],
    )
    return [LOGIN_PAGE]


def redirect(start_response: Callable, location: str) -> list[bytes]:
    start_response("302 Found", [("Location", location), ("Content-Length", "0")])
    return []


def timestamp(seconds: float) -> str:
    """Jira's timestamp format: 2025-01-01T00:00:00.000+0000."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def browse_page(
    key: str, summary: str, status: str, labels: Iterable[str], description: str, comments: Iterable[str]
) -> str:
    """An issue as a bare HTML page (the simulator's stand-in for Jira's issue view); every text escaped."""
    items = "".join(f"<li><pre>{escape(c)}</pre></li>" for c in comments)
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{escape(key)}</title></head><body>"
        f"<p>Jira simulator</p><h1>{escape(key)}: {escape(summary)}</h1><p>Status: <strong>{escape(status)}"
        f"</strong> · Labels: {escape(', '.join(labels))}</p><pre>{escape(description)}</pre>"
        f"<h2>Comments</h2><ol>{items}</ol></body></html>"
    )


def html_page(start_response: Callable, page: str) -> list[bytes]:
    data = page.encode()
    start_response(
        "200 OK", [("Content-Type", "text/html;charset=UTF-8"), ("Content-Length", str(len(data)))]
    )
    return [data]
