"""The one door to Jira Cloud (REST v3): Basic auth, timeouts, bounded retries, our own errors.

No Django here. Every request goes through `JiraClient._call`, which turns `requests`/`urllib3` failures
into `JiraError` with a sentence a Jira or security admin can act on, and never carries the API token
anywhere but the site it was given for (redirects are not followed; the header is ours, not netrc's).

**The stable key is a label.** Each ticket carries a label made by `stable_label` from our finding or
vulnerability identity (`tc-…`, no spaces, as Jira requires). Labels are searchable by plain JQL
(`labels = "tc-…"`) with Basic auth; issue entity properties are only searchable when an installed
Connect/Forge app declares them indexed, which a REST client cannot do. A label can be removed by hand;
the caller re-adds it on every edit (`update: {"labels": [{"add": …}]}`).

**Creations are never repeated blindly.** `POST /issue` is not retried on a read timeout, a cut
connection or a 5xx: Jira may have created the issue and only the answer was lost. Such errors carry
`outcome_unknown=True`; before creating again the caller searches by the stable label
(`find_by_label`). Search is eventually consistent (Atlassian: "recent updates might not be immediately
visible"), so after an unknown outcome the caller should wait a little (the task's retry countdown)
before that search. 429 is retried for every call: Jira refused it before doing anything.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import math
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from ..http import BoundedRetry, parse_retry_after
from . import adf
from . import errors as say
from .errors import JiraError

log = logging.getLogger(__name__)

API = "/rest/api/3"
USER_AGENT = "TenableConsole/1.0 (Jira Cloud connector)"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# The project permissions the ticket lifecycle needs (keys of GET /mypermissions), in the order shown.
PROJECT_PERMISSIONS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "TRANSITION_ISSUES", "ADD_COMMENTS")
# Jira's names for them (its UI labels); SCHEDULE_ISSUES is needed to set a due date.
PERMISSION_NAMES = {
    "BROWSE_PROJECTS": "Browse Projects",
    "CREATE_ISSUES": "Create Issues",
    "EDIT_ISSUES": "Edit Issues",
    "TRANSITION_ISSUES": "Transition Issues",
    "ADD_COMMENTS": "Add Comments",
    "RESOLVE_ISSUES": "Resolve Issues",
    "SCHEDULE_ISSUES": "Schedule Issues",
    "ASSIGN_ISSUES": "Assign Issues",
    "CLOSE_ISSUES": "Close Issues",
}
SEARCH_FIELDS = ("summary", "status", "labels", "resolution", "created", "updated")
SEARCH_PAGE_SIZE = 100
MAX_SEARCH_PAGES = 1000
SUMMARY_MAX = 255  # Jira's limit on the summary field
LABEL_PREFIX = "tc-"
# POSTs that only read, so repeating them is harmless.
_READ_POSTS = frozenset({f"{API}/search/jql"})
_DETAILS_MAX = 600


# ---------------------------------------------------------------------------------------------------
# What the calls return
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JiraUser:
    """The account behind the e-mail and token (`email` is None when its privacy settings hide it)."""

    account_id: str
    display_name: str
    email: str | None
    active: bool
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class IssueType:
    """An issue type of a project; sub-tasks cannot be created without a parent."""

    id: str
    name: str
    subtask: bool


@dataclass(frozen=True, slots=True)
class Project:
    """A Jira project and its issue types; `simplified` is True for team-managed projects."""

    id: str
    key: str
    name: str
    issue_types: tuple[IssueType, ...]
    simplified: bool | None


@dataclass(frozen=True, slots=True)
class PermissionCheck:
    """Which of the asked project permissions the account has (`granted`: key → bool)."""

    granted: dict[str, bool]
    names: dict[str, str]

    @property
    def missing(self) -> list[str]:
        """Jira's names of the permissions the account lacks, in the order asked."""
        return [self.names.get(key, key) for key, ok in self.granted.items() if not ok]


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What Test Connection shows: who we are, the project, and the permissions it still needs."""

    user: JiraUser
    project: Project | None
    missing_permissions: list[str]


@dataclass(frozen=True, slots=True)
class CreatedIssue:
    """The id and key Jira gave a new issue."""

    id: str
    key: str


@dataclass(frozen=True, slots=True)
class Transition:
    """A workflow transition available from the issue's current status."""

    id: str
    name: str
    to_status: str
    to_category: str | None  # "new", "indeterminate" or "done"


@dataclass(frozen=True, slots=True)
class Issue:
    """An issue as search or `GET /issue` returns it; `fields` keeps every field asked for, raw."""

    id: str
    key: str
    summary: str | None
    status: str | None
    status_category: str | None
    labels: tuple[str, ...]
    resolution: str | None
    fields: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def done(self) -> bool:
        """Whether the issue sits in a status of the Done category."""
        return self.status_category == "done"


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a JQL search; pass `next_page_token` back for the next (None on the last page)."""

    issues: list[Issue]
    next_page_token: str | None
    is_last: bool


# ---------------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------------


class JiraRetry(BoundedRetry):
    """The Tenable door's retry (Retry-After honoured and clamped, a time budget), plus one rule:
    a POST that writes (create, transition, comment) is retried only on 429, never on 5xx, since Jira
    may have applied it. Read timeouts, and cut connections on anything but GET, are never retried
    (see BoundedRetry); connection failures before anything was sent are, for every method.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> JiraRetry:
        if response is not None and response.status != 429 and _unsafe_to_repeat(method, url):
            # With raise_on_status=False urllib3 hands this response back instead of retrying.
            reason = ResponseError(f"HTTP {response.status} to a write is not repeated")
            raise MaxRetryError(_pool, url, reason)
        return super().increment(method, url, response, error, _pool, _stacktrace)


class _BasicAuth(requests.auth.AuthBase):
    """Our Authorization header on every request; set as the session's auth so `~/.netrc` never replaces it."""

    def __init__(self, header: str) -> None:
        self._header = header

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "_BasicAuth(<redacted>)"


# ---------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------


class JiraClient:
    """Calls Jira Cloud's REST v3 as one Atlassian account (e-mail + API token). Raises `JiraError`.

    One connection at a time (`pool_maxsize=1`, blocking): threads sharing a client take turns, so a
    Jira connection never has two requests in flight from here.
    """

    def __init__(
        self,
        site_url: str,
        email: str,
        api_token: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        budget: float = 60.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        retry_after_max: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site_url, self._url_ok = site_origin(site_url)
        parts = urlsplit(self.site_url) if self._url_ok else None
        self.host = (parts.hostname or "") if parts else ""
        self._netloc = parts.netloc if parts else ""
        self._given_url = (site_url or "").strip()
        self.timeout = timeout
        self._retry_after_max = retry_after_max
        email, api_token = (email or "").strip(), (api_token or "").strip()
        self._credentials = "ok"
        if not email or not api_token:
            self._credentials = "missing"
        elif re.search(r"[\x00-\x20\x7f]", email + api_token):
            self._credentials = "invalid"  # cannot be right; fail like a wrong token, without a request
        # RFC 7617 Basic credentials in UTF-8; base64 leaves nothing that could split the header.
        header = "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        self._secrets = tuple(s for s in (api_token, header.split()[1]) if len(s) >= 4)
        self._session = requests.Session()
        self._session.auth = _BasicAuth(header)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        retry = JiraRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST", "PUT"}),
            backoff_factor=backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
            retry_after_max=retry_after_max,
            budget=budget,
            sleep=sleep,
            clock=clock,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=1, pool_block=True)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"JiraClient(site_url={self.site_url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who and where ------------------------------------------------------------------------------

    def myself(self) -> JiraUser:
        """`GET /myself`: proves the e-mail and token and names the account."""
        data = self._json("GET", "/myself", permission=None)
        return JiraUser(
            account_id=str(data.get("accountId") or ""),
            display_name=str(data.get("displayName") or ""),
            email=_str_or_none(data.get("emailAddress")),
            active=bool(data.get("active", True)),
            time_zone=_str_or_none(data.get("timeZone")),
        )

    def project(self, key: str) -> Project:
        """`GET /project/{key}`: the project and all its issue types (404 when missing or not visible)."""
        data = self._json("GET", f"/project/{_ref(key)}", what="project", key=key)
        return Project(
            id=str(data.get("id") or ""),
            key=str(data.get("key") or key),
            name=str(data.get("name") or ""),
            issue_types=tuple(_issue_type(t) for t in data.get("issueTypes") or [] if isinstance(t, dict)),
            simplified=data.get("simplified") if isinstance(data.get("simplified"), bool) else None,
        )

    def issue_types(self, project_key: str) -> list[IssueType]:
        """The issue types this account may create in the project (`GET /issue/createmeta/{key}/issuetypes`).

        Jira lists only what the account can create, so an account without Create Issues gets none.
        """
        types: list[IssueType] = []
        start = 0
        for _ in range(MAX_SEARCH_PAGES):
            data = self._json(
                "GET",
                f"/issue/createmeta/{_ref(project_key)}/issuetypes",
                params={"startAt": start, "maxResults": 50},
                what="project",
                key=project_key,
                project=project_key,
            )
            page = data.get("issueTypes", data.get("values")) or []
            types.extend(_issue_type(t) for t in page if isinstance(t, dict))
            total = _int_or_none(data.get("total"))
            start += len(page)
            if not page or total is None or start >= total:
                return types
        raise _bad_response(200)

    def my_permissions(
        self, project_key: str, permissions: Iterable[str] = PROJECT_PERMISSIONS
    ) -> PermissionCheck:
        """`GET /mypermissions`: which of `permissions` this account holds in the project."""
        keys = [p.strip().upper() for p in permissions if p and p.strip()]
        data = self._json(
            "GET",
            "/mypermissions",
            params={"projectKey": project_key, "permissions": ",".join(keys)},
            what="project",
            key=project_key,
        )
        found = data.get("permissions") if isinstance(data.get("permissions"), dict) else {}
        granted, names = {}, {}
        for key in keys:
            entry = found.get(key) if isinstance(found.get(key), dict) else {}
            granted[key] = entry.get("havePermission") is True
            names[key] = str(entry.get("name") or PERMISSION_NAMES.get(key, key))
        return PermissionCheck(granted=granted, names=names)

    def test_connection(
        self, project_key: str | None = None, permissions: Iterable[str] = PROJECT_PERMISSIONS
    ) -> ConnectionCheck:
        """Test Connection: who the token belongs to and, for a project, the permissions it still lacks."""
        user = self.myself()
        if not project_key:
            return ConnectionCheck(user=user, project=None, missing_permissions=[])
        project = self.project(project_key)
        check = self.my_permissions(project.key, permissions)
        return ConnectionCheck(user=user, project=project, missing_permissions=check.missing)

    # -- issues -------------------------------------------------------------------------------------

    def create_issue(self, fields: dict[str, Any]) -> CreatedIssue:
        """`POST /issue`. Never repeated on a lost answer: see the module docstring (`outcome_unknown`)."""
        project = _project_key(fields)
        data = self._json(
            "POST", "/issue", json_body={"fields": fields}, permission="CREATE_ISSUES", project=project
        )
        if not data.get("key"):
            raise _bad_response(201)
        return CreatedIssue(id=str(data.get("id") or ""), key=str(data["key"]))

    def edit_issue(
        self, key: str, fields: dict[str, Any] | None = None, *, update: dict[str, Any] | None = None
    ) -> None:
        """`PUT /issue/{key}`: set `fields`, and apply `update` verbs (e.g. `{"labels": [{"add": "tc-…"}]}`)."""
        body = {name: value for name, value in (("fields", fields), ("update", update)) if value}
        if not body:
            return
        self._call(
            "PUT", f"/issue/{_ref(key)}", json_body=body, what="issue", key=key, permission="EDIT_ISSUES"
        ).close()

    def issue(self, key: str, fields: Iterable[str] | None = None) -> Issue:
        """`GET /issue/{key}` with `fields` (all fields when None)."""
        params = {"fields": ",".join(fields)} if fields is not None else None
        return _issue(self._json("GET", f"/issue/{_ref(key)}", params=params, what="issue", key=key))

    def transitions(self, key: str) -> list[Transition]:
        """`GET /issue/{key}/transitions`: the transitions available from the issue's current status."""
        data = self._json("GET", f"/issue/{_ref(key)}/transitions", what="issue", key=key)
        result = []
        for item in data.get("transitions") or []:
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            to = item.get("to") if isinstance(item.get("to"), dict) else {}
            category = to.get("statusCategory") if isinstance(to.get("statusCategory"), dict) else {}
            result.append(
                Transition(
                    id=str(item["id"]),
                    name=str(item.get("name") or ""),
                    to_status=str(to.get("name") or ""),
                    to_category=_str_or_none(category.get("key")),
                )
            )
        return result

    def transition(
        self,
        key: str,
        transition_id: str,
        *,
        comment: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """`POST /issue/{key}/transitions`, then the comment (ADF) as its own `POST /comment`.

        The comment is not sent inside the transition: Jira Cloud keeps an `update.comment` only when the
        transition has a screen with the Comment field and silently drops it otherwise (204 either way).
        """
        body: dict[str, Any] = {"transition": {"id": str(transition_id)}}
        if fields:
            body["fields"] = fields
        self._call(
            "POST",
            f"/issue/{_ref(key)}/transitions",
            json_body=body,
            what="issue",
            key=key,
            permission="TRANSITION_ISSUES",
        ).close()
        if comment is not None:
            self.add_comment(key, comment)

    def add_comment(self, key: str, body: dict[str, Any]) -> str:
        """`POST /issue/{key}/comment` with an ADF body; returns the comment id."""
        data = self._json(
            "POST",
            f"/issue/{_ref(key)}/comment",
            json_body={"body": body},
            what="issue",
            key=key,
            permission="ADD_COMMENTS",
        )
        return str(data.get("id") or "")

    # -- search -------------------------------------------------------------------------------------

    def search_page(
        self,
        jql: str,
        *,
        fields: Iterable[str] = SEARCH_FIELDS,
        max_results: int = SEARCH_PAGE_SIZE,
        next_page_token: str | None = None,
    ) -> SearchPage:
        """One page of `POST /search/jql` (the enhanced search that replaced `/search` in 2025).

        Jira may return fewer than `max_results`; only `isLast`/`nextPageToken` say whether more follow.
        """
        body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": int(max_results)}
        if next_page_token:
            body["nextPageToken"] = next_page_token
        data = self._json("POST", "/search/jql", json_body=body)
        issues = [_issue(item) for item in data.get("issues") or [] if isinstance(item, dict)]
        token = _str_or_none(data.get("nextPageToken"))
        is_last = data.get("isLast") if isinstance(data.get("isLast"), bool) else token is None
        return SearchPage(
            issues=issues, next_page_token=None if is_last else token, is_last=is_last or not token
        )

    def search(
        self,
        jql: str,
        *,
        fields: Iterable[str] = SEARCH_FIELDS,
        page_size: int = SEARCH_PAGE_SIZE,
        limit: int | None = None,
    ) -> list[Issue]:
        """Every issue matching `jql` (at most `limit`), following `nextPageToken` page by page."""
        return list(self.iter_search(jql, fields=fields, page_size=page_size, limit=limit))

    def iter_search(
        self,
        jql: str,
        *,
        fields: Iterable[str] = SEARCH_FIELDS,
        page_size: int = SEARCH_PAGE_SIZE,
        limit: int | None = None,
    ) -> Iterator[Issue]:
        """Like `search`, one page at a time; a token Jira repeats is an unexpected response, not a loop."""
        fields, token, seen, count = list(fields), None, set(), 0
        for _ in range(MAX_SEARCH_PAGES):
            page = self.search_page(jql, fields=fields, max_results=page_size, next_page_token=token)
            for issue in page.issues:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield issue
            if page.is_last or (limit is not None and count >= limit):
                return
            if page.next_page_token in seen:
                raise _bad_response(200)
            token = page.next_page_token
            seen.add(token)
        raise _bad_response(200)

    def find_by_label(
        self, project_key: str, label: str, *, fields: Iterable[str] = SEARCH_FIELDS
    ) -> list[Issue]:
        """The project's issues carrying our stable `label`, oldest first (normally one, or none)."""
        jql = f"project = {jql_quote(project_key)} AND labels = {jql_quote(label)} ORDER BY created ASC"
        return self.search(jql, fields=fields)

    # -- the door -----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict:
        response = self._call(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise _bad_response(response.status_code) from None
        finally:
            response.close()
        if not isinstance(data, dict):
            raise _bad_response(response.status_code)
        return data

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json_body: Any = None,
        what: str | None = None,
        key: str | None = None,
        permission: str | None = "BROWSE_PROJECTS",
        project: str | None = None,
    ) -> requests.Response:
        """One request to `API + path`; any failure becomes a `JiraError` (see `_status_error`)."""
        if not self._url_ok:
            raise JiraError(say.SITE_URL.format(url=self._given_url), kind="site_url", permanent=True)
        if self._credentials == "missing":
            raise JiraError(say.CREDENTIALS_MISSING, kind="auth", permanent=True)
        if self._credentials == "invalid":
            raise JiraError(say.AUTH, kind="auth", permanent=True)
        url = self.site_url + API + path
        mutating = _mutating(method, API + path)
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=self.timeout,
                allow_redirects=False,  # never carry the token to another host
            )
        except requests.RequestException as exc:
            raise self._network_error(exc, mutating) from exc
        log.debug("Jira %s %s -> %s", method, API + path, response.status_code)
        if response.status_code >= 300:
            try:
                raise self._status_error(
                    response, mutating, what=what, key=key, permission=permission, project=project
                )
            finally:
                response.close()
        return response

    def _status_error(
        self,
        response: requests.Response,
        mutating: bool,
        *,
        what: str | None,
        key: str | None,
        permission: str | None,
        project: str | None,
    ) -> JiraError:
        status = response.status_code
        if status == 401:
            return JiraError(say.AUTH, kind="auth", permanent=True, status=status)
        if status == 403:
            if permission is None:
                return JiraError(say.FORBIDDEN_SITE, kind="forbidden", permanent=True, status=status)
            name = PERMISSION_NAMES.get(permission, permission)
            where = f" in project {project}" if project else (f" on {key}" if key else "")
            return JiraError(
                say.FORBIDDEN.format(permission=name, where=where),
                kind="forbidden",
                permanent=True,
                status=status,
            )
        if status == 404:
            if what == "project":
                message = say.PROJECT_NOT_FOUND.format(key=key)
            elif what == "issue":
                message = say.ISSUE_NOT_FOUND.format(key=key)
            else:
                message = say.NOT_FOUND.format(path=urlsplit(response.url or "").path or "the address")
            return JiraError(message, kind="not_found", permanent=True, status=status)
        if status == 429:
            seconds = parse_retry_after(response.headers.get("Retry-After"), maximum=self._retry_after_max)
            message = (
                say.RATE_LIMITED.format(seconds=_num(math.ceil(seconds)))
                if seconds is not None
                else say.RATE_LIMITED_NO_HINT
            )
            return JiraError(
                message, kind="rate_limited", permanent=False, status=status, retry_after=seconds
            )
        if 500 <= status <= 599:
            seconds = parse_retry_after(response.headers.get("Retry-After"), maximum=self._retry_after_max)
            return JiraError(
                say.SERVER.format(status=status) + (say.OUTCOME_UNKNOWN if mutating else ""),
                kind="server",
                permanent=False,
                status=status,
                retry_after=seconds,
                outcome_unknown=mutating,
            )
        if 300 <= status <= 399:
            target = _origin_of(response.headers.get("Location"), self.site_url)
            return JiraError(
                say.REDIRECT.format(status=status, target=target, host=self.host),
                kind="redirect",
                permanent=True,
                status=status,
            )
        if 400 <= status <= 499:
            details = self._details(response)
            message = (
                say.BAD_REQUEST.format(status=status, details=details)
                if details
                else say.BAD_REQUEST_NO_DETAILS.format(status=status)
            )
            return JiraError(message, kind="bad_request", permanent=True, status=status)
        return _bad_response(status)

    def _details(self, response: requests.Response) -> str:
        """Jira's `errorMessages` and `errors` ("field: message") as one short sentence, token scrubbed."""
        try:
            data = response.json()
        except ValueError:
            return ""
        parts: list[str] = []
        if isinstance(data, dict):
            parts += [str(m) for m in data.get("errorMessages") or [] if m]
            errors = data.get("errors")
            if isinstance(errors, dict):
                parts += [f"{name}: {message}" for name, message in errors.items() if message]
            if not parts and isinstance(data.get("message"), str):
                parts.append(data["message"])
        text = " ".join(_sentence(adf.clean(part)) for part in parts[:5] if part.strip())
        if len(parts) > 5:
            text += f" (and {len(parts) - 5} more)"
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text if len(text) <= _DETAILS_MAX else text[: _DETAILS_MAX - 1].rstrip() + "…"

    def _network_error(self, exc: BaseException, mutating: bool) -> JiraError:
        chain = list(_causes(exc))

        def found(*types: type) -> bool:
            return any(isinstance(e, types) for e in chain)

        if found(NameResolutionError, socket.gaierror):
            return JiraError(say.DNS.format(host=self.host), kind="dns", permanent=False)
        if found(ssl.SSLError, ssl.CertificateError, Urllib3SSLError, requests.exceptions.SSLError):
            log.warning("Jira TLS verification failed for %s", self.host)
            return JiraError(say.TLS.format(host=self.host), kind="tls", permanent=True)
        connect_timeout = isinstance(exc, requests.ConnectTimeout) or any(
            isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError) for e in chain
        )
        if connect_timeout:
            return JiraError(
                say.TIMEOUT.format(seconds=_num(self.timeout[0])), kind="timeout", permanent=False
            )
        if found(ConnectionRefusedError) or (found(NewConnectionError) and not found(ProtocolError)):
            return JiraError(
                say.CONNECTION.format(host=self._netloc, reason="the connection was refused"),
                kind="connection",
                permanent=False,
            )
        # From here on the request may have reached Jira.
        unknown = say.OUTCOME_UNKNOWN if mutating else ""
        if found(ReadTimeoutError, requests.Timeout, TimeoutError):
            message = say.TIMEOUT.format(seconds=_num(self.timeout[1])) + unknown
            return JiraError(message, kind="timeout", permanent=False, outcome_unknown=mutating)
        if found(ConnectionResetError, ProtocolError, http.client.RemoteDisconnected):
            reason = "the connection was closed before Jira answered"
        else:
            reason = "the network connection failed"
        return JiraError(
            say.CONNECTION.format(host=self._netloc, reason=reason) + unknown,
            kind="connection",
            permanent=False,
            outcome_unknown=mutating,
        )


# ---------------------------------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------------------------------


def site_origin(url: str | None) -> tuple[str, bool]:
    """(scheme://host[:port], valid) for a pasted site URL: Jira Cloud serves its API at the site root,
    so a page address (…/jira/software/…, …/browse/SEC-1) is reduced to its site. Credentials, a query or
    anything but http(s) make it invalid."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return url, False
    if parts.scheme.lower() not in ("http", "https") or not hostname or "@" in parts.netloc:
        return url, False
    if re.search(r"[\x00-\x20\x7f]", url):
        return url, False
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme.lower()}://{host}{f':{port}' if port else ''}", True


def stable_label(*identity: object) -> str:
    """The label that ties a ticket to our finding or vulnerability identity: `tc-` + 24 hex characters.

    Deterministic (the same identity always gives the same label), free of spaces and short, as Jira
    labels must be.
    """
    digest = hashlib.sha256("\x1f".join(str(part) for part in identity).encode()).hexdigest()
    return LABEL_PREFIX + digest[:24]


def jql_quote(value: str) -> str:
    """`value` as a JQL string literal: double-quoted, with `\\` and `"` escaped, on one line."""
    value = adf.clean(value).replace("\n", " ").replace("\t", " ")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def summary_text(value: str) -> str:
    """`value` as a Jira summary: one line, at most 255 characters."""
    value = re.sub(r"\s+", " ", adf.clean(value)).strip()
    return value if len(value) <= SUMMARY_MAX else value[: SUMMARY_MAX - 1].rstrip() + "…"


def pick_transition(
    transitions: Iterable[Transition], *, status: str | None = None, category: str | None = None
) -> Transition | None:
    """The transition into `status` (by name, case-insensitive), else the first into `category`."""
    transitions = list(transitions)
    if status:
        wanted = status.strip().casefold()
        for transition in transitions:
            if transition.to_status.casefold() == wanted:
                return transition
    if category:
        for transition in transitions:
            if transition.to_category == category:
                return transition
    return None


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def _mutating(method: str | None, url: str | None) -> bool:
    """Whether this request changes Jira (every POST and PUT but search)."""
    path = urlsplit(url or "").path
    return (method or "").upper() in ("POST", "PUT", "DELETE") and path not in _READ_POSTS


def _unsafe_to_repeat(method: str | None, url: str | None) -> bool:
    """Whether doing this request twice could change Jira twice: a POST (create, transition, comment)
    but search. A PUT sets fields to values, so repeating an edit is harmless."""
    return (method or "").upper() == "POST" and _mutating(method, url)


def _issue(data: dict) -> Issue:
    fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
    status = fields.get("status") if isinstance(fields.get("status"), dict) else {}
    category = status.get("statusCategory") if isinstance(status.get("statusCategory"), dict) else {}
    resolution = fields.get("resolution") if isinstance(fields.get("resolution"), dict) else {}
    labels = fields.get("labels") if isinstance(fields.get("labels"), list) else []
    return Issue(
        id=str(data.get("id") or ""),
        key=str(data.get("key") or ""),
        summary=_str_or_none(fields.get("summary")),
        status=_str_or_none(status.get("name")),
        status_category=_str_or_none(category.get("key")),
        labels=tuple(str(label) for label in labels),
        resolution=_str_or_none(resolution.get("name")),
        fields=fields,
    )


def _issue_type(data: dict) -> IssueType:
    return IssueType(
        id=str(data.get("id") or ""), name=str(data.get("name") or ""), subtask=bool(data.get("subtask"))
    )


def _project_key(fields: dict[str, Any]) -> str | None:
    project = fields.get("project")
    if isinstance(project, dict):
        return _str_or_none(project.get("key") or project.get("id"))
    return None


def _origin_of(location: str | None, base: str) -> str:
    """The scheme and host a redirect points to (never its path or query, which we do not echo)."""
    if not location:
        return "another address"
    origin, ok = site_origin(location if "://" in location else base + "/")
    return origin if ok else "another address"


def _bad_response(status: int) -> JiraError:
    return JiraError(
        say.BAD_RESPONSE.format(status=status), kind="bad_response", permanent=False, status=status
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes, contexts, urllib3 reasons and wrapped args, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested = [e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())]
        todo.extend(n for n in nested if isinstance(n, BaseException))


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _ref(value: str) -> str:
    return quote(str(value).strip(), safe="")


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _num(value: float) -> str:
    return f"{value:g}"
