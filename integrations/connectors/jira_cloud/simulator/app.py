"""The simulator as one WSGI callable: parse, authenticate, record, apply faults, route; plus test hooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from . import documents
from .faults import FaultInjection
from .model import (
    ALL_PERMISSIONS,
    BROWSE_ONLY,
    PRIORITIES,
    SCREEN_FIELDS,
    DropConnection,
    Issue,
    IssueTypeDef,
    IssueView,
    Project,
    RecordedRequest,
    Status,
    User,
    WorkflowTransition,
)
from .responses import error_collection, html, json_response, rate_limited, redirect, unauthorized
from .routes import API, JiraRoutes
from .server import SimulatorServer

# The published accounts: one that may do everything, one that may only browse (403 on every write).
EMAIL = "jira-bot@example.com"
API_TOKEN = "sim-jira-token"  # the simulator's published demo token
VIEWER_EMAIL = "jira-viewer@example.com"
VIEWER_API_TOKEN = "sim-jira-viewer-token"
EPOCH = 1_735_689_600.0  # 2025-01-01T00:00:00Z: the simulated clock starts here
_ISSUE_KEY = r"(?P<key>[^/]+)"


class JiraSimulator(FaultInjection, JiraRoutes):
    """A fake Jira Cloud site (REST v3) as a WSGI callable: deterministic, stateful, with injectable faults.

    Accounts: `EMAIL`/`API_TOKEN` (every permission) and `VIEWER_EMAIL`/`VIEWER_API_TOKEN` (Browse
    Projects only); any other pair gets 401; `add_user` adds more. Projects: SEC "Security
    Vulnerabilities" (company-managed; Task, Bug, Sub-task) and OPS "Operations" (team-managed, no
    Priority on its screens); `add_project` adds more. Workflow: To Do → In Progress → Done (also To Do →
    Done), In Progress → To Do, Done → To Do ("Reopen"); only "Done" has a screen.

    Hooks for tests: `seed_issue`, `transition_by_hand`, `edit_by_hand`, `comment_by_hand`,
    `delete_by_hand`, `set_fault`/`clear_faults`. Ground truth: `issues`, `issue(key)`.
    Counters: `requests`, `peak_requests(email)`.
    """

    def __init__(
        self,
        *,
        email: str = EMAIL,
        api_token: str = API_TOKEN,
        viewer_email: str = VIEWER_EMAIL,
        viewer_api_token: str = VIEWER_API_TOKEN,
        page_cap: int = 100,
        clock: Callable[[], float] | None = None,
        base_url: str = "https://example.atlassian.net",
        faults: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.page_cap = page_cap
        self.base_url = base_url
        self._clock = clock
        self._ticks = 0
        self._lock = threading.RLock()
        self._faults = []
        self._requests: list[RecordedRequest] = []
        self._inflight: dict[str, int] = {}
        self._peaks: dict[str, int] = {}
        self._users: dict[str, User] = {}
        self._projects: dict[str, Project] = {}
        self._issues: dict[str, Issue] = {}
        self._next_issue_id = 10_000
        self._next_comment_id = 10_000
        self.statuses = {
            "10000": Status("10000", "To Do", "new"),
            "3": Status("3", "In Progress", "indeterminate"),
            "10001": Status("10001", "Done", "done"),
        }
        self.workflow = [
            WorkflowTransition("11", "Start Progress", frozenset({"10000"}), "3"),
            WorkflowTransition("21", "Done", frozenset({"10000", "3"}), "10001", has_screen=True),
            WorkflowTransition("31", "Stop Progress", frozenset({"3"}), "10000"),
            WorkflowTransition("41", "Reopen", frozenset({"10001"}), "10000"),
        ]
        self.add_user(email, api_token, display_name="Tenable Console")
        self.add_user(
            viewer_email, viewer_api_token, permissions=BROWSE_ONLY, display_name="Read-only viewer"
        )
        self.add_project(
            "SEC",
            "Security Vulnerabilities",
            issue_types=[("Task", False), ("Bug", False), ("Sub-task", True)],
        )
        self.add_project(
            "OPS",
            "Operations",
            issue_types=[("Task", False)],
            screen_fields=SCREEN_FIELDS - {"priority"},
            simplified=True,
        )
        for name, params in (faults or {}).items():
            self.set_fault(name, **params)

    # -- setup hooks --------------------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        api_token: str,
        *,
        permissions: Iterable[str] = ALL_PERMISSIONS,
        display_name: str | None = None,
        projects: Iterable[str] | None = None,
    ) -> User:
        """An account with these project permissions, in every project or only in `projects`."""
        account_id = "712020:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]
        user = User(
            email=email,
            token=api_token,
            account_id=account_id,
            display_name=display_name or email.split("@")[0],
            permissions=frozenset(permissions),
            projects=frozenset(projects) if projects is not None else None,
        )
        with self._lock:
            self._users[email.lower()] = user
        return user

    def add_project(
        self,
        key: str,
        name: str,
        *,
        issue_types: Iterable[tuple[str, bool]] = (("Task", False), ("Bug", False)),
        screen_fields: frozenset[str] = SCREEN_FIELDS,
        simplified: bool = False,
    ) -> Project:
        """A project with issue types `(name, is_subtask)` and the fields its screens show."""
        with self._lock:
            first_type = 10_001 + sum(len(p.issue_types) for p in self._projects.values())
            types = [IssueTypeDef(str(first_type + n), t, sub) for n, (t, sub) in enumerate(issue_types)]
            project = Project(
                str(10_000 + len(self._projects)), key.upper(), name, types, screen_fields, simplified
            )
            self._projects[project.key] = project
        return project

    def seed_issue(
        self,
        project: str,
        summary: str,
        *,
        labels: Iterable[str] = (),
        status: str = "To Do",
        issue_type: str = "Task",
        description: str | None = None,
    ) -> str:
        """Create an issue directly (no HTTP), as someone did in Jira; returns its key."""
        with self._lock:
            target = self._projects[project.upper()]
            type_id = next(t.id for t in target.issue_types if t.name == issue_type)
            now = self._now()
            key = f"{target.key}-{target.next_number}"
            target.next_number += 1
            doc = None
            if description is not None:
                content = [{"type": "text", "text": description}] if description else []
                doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": content}]}
            issue = Issue(
                str(self._next_issue_id),
                key,
                target.key,
                type_id,
                summary,
                doc,
                list(labels),
                self._initial_status(),
                None,
                None,
                None,
                "",
                now,
                now,
            )
            self._next_issue_id += 1
            self._issues[key] = issue
            if status != "To Do":
                self._move(issue, self._status_id(status))
        return key

    def transition_by_hand(self, key: str, status: str, comment: str | None = None) -> None:
        """Move an issue to `status` as a person would in Jira (any status, workflow or not)."""
        with self._lock:
            issue = self._issues[key.upper()]
            self._move(issue, self._status_id(status))
            if comment:
                self.comment_by_hand(key, comment)

    def edit_by_hand(
        self, key: str, *, labels: Iterable[str] | None = None, summary: str | None = None
    ) -> None:
        """Change an issue's labels or summary as a person would (e.g. remove our stable label)."""
        with self._lock:
            issue = self._issues[key.upper()]
            if labels is not None:
                issue.labels = list(labels)
            if summary is not None:
                issue.summary = summary
            issue.updated = self._now()

    def comment_by_hand(self, key: str, text: str) -> None:
        """Add a plain-text comment as a person would."""
        with self._lock:
            body = {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
            }
            self._add_comment(self._issues[key.upper()], body, "557058:human")

    def delete_by_hand(self, key: str) -> None:
        """Delete an issue (later calls on it answer 404)."""
        with self._lock:
            del self._issues[key.upper()]

    # -- ground truth -------------------------------------------------------------------------------

    @property
    def issues(self) -> list[IssueView]:
        """Every issue, in creation order, as Jira holds it."""
        with self._lock:
            return [self._view(issue) for issue in sorted(self._issues.values(), key=lambda i: int(i.id))]

    def issue(self, key: str) -> IssueView | None:
        """One issue as Jira holds it, or None."""
        with self._lock:
            issue = self._issues.get(key.upper())
            return self._view(issue) if issue else None

    def user(self, email: str) -> User | None:
        """A published account (for tests: its account id and permissions)."""
        return self._users.get(email.lower())

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def peak_requests(self, email: str) -> int:
        """The most requests this account ever had in flight at once."""
        with self._lock:
            return self._peaks.get(email.lower(), 0)

    # -- serving ------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Serve on a background thread; returns the running server (`.url`, `.port`, `.stop()`)."""
        server = SimulatorServer(self, host, port)
        self.base_url = server.url
        return server

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = "/" + environ.get("PATH_INFO", "").strip("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        raw = (
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            if method in ("POST", "PUT")
            else b""
        )
        try:
            body = json.loads(raw) if raw else None
            body_ok = True
        except ValueError:
            body, body_ok = raw.decode("utf-8", "replace"), False
        header = environ.get("HTTP_AUTHORIZATION")
        auth, user = self._auth(header)
        email = user.email.lower() if user else None
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method, path, query, body, auth, user.email if user else None, header is not None
                )
            )
        ctx = {"method": method, "path": path, "email": email}
        self._track(email, +1)
        try:
            result = self._answer(
                start_response,
                ctx,
                auth,
                user,
                query=query,
                body=body,
                body_ok=body_ok,
                content_type=environ.get("CONTENT_TYPE", ""),
            )
        except BaseException:
            self._track(email, -1)
            raise
        return _Tracked(result, lambda: self._track(email, -1))

    def _answer(
        self, start_response: Callable, ctx: dict, auth: str, user: User | None, **request: Any
    ) -> Iterable[bytes]:
        """Faults first (slow, 401, 403, 404, 429, flap, garbage, redirect), then the route."""
        slow = self._fault("slow", ctx)
        if slow:
            time.sleep(float(slow.params.get("seconds", 1.0)))
        if auth != "valid" or self._fault("unauthorized", ctx):
            return unauthorized(start_response)
        if self._fault("forbidden", ctx):
            return error_collection(
                start_response, 403, ["You do not have permission to perform this operation."]
            )
        if self._fault("not_found", ctx):
            return error_collection(
                start_response, 404, ["Issue does not exist or you do not have permission to see it."]
            )
        limited = self._fault("rate_limit", ctx)
        if limited:
            return rate_limited(start_response, limited.params.get("retry_after", "1"), self._wall())
        flap = self._fault("flap", ctx)
        if flap:
            status = int(flap.params.get("status", 503))
            extra = (
                [("Retry-After", str(flap.params["retry_after"]))] if flap.params.get("retry_after") else []
            )
            return json_response(
                start_response, status, {"errorMessages": ["Internal server error"], "errors": {}}, extra
            )
        if self._fault("garbage", ctx):
            return html(start_response)
        moved = self._fault("redirect", ctx)
        if moved:
            return redirect(
                start_response, str(moved.params.get("location", "https://id.atlassian.example/login"))
            )
        if ctx["method"] in ("POST", "PUT") and request["body"] is not None:
            if not request["content_type"].startswith("application/json"):
                return error_collection(start_response, 415, ["Unsupported Media Type"])
            if not request["body_ok"]:
                return error_collection(
                    start_response,
                    400,
                    ["Invalid request payload. Refer to the REST API documentation and try again."],
                )
        known_path = False
        for route_method, pattern, handler in self._routes:
            found = re.match(pattern, ctx["path"])
            if not found:
                continue
            known_path = True
            if route_method == ctx["method"]:
                result = handler(
                    self,
                    start_response,
                    ctx=ctx,
                    user=user,
                    query=request["query"],
                    body=request["body"],
                    **found.groupdict(),
                )
                return self._deliver(ctx, result)
        if known_path:
            return error_collection(start_response, 405, ["Method Not Allowed"])
        body = {"message": f"null for uri: {self.base_url}{ctx['path']}", "status-code": 404}
        return json_response(start_response, 404, body)

    def _deliver(self, ctx: dict, result: list[bytes]) -> list[bytes]:
        """The handler's answer, unless a `lost_response` fault eats it (the work is done either way)."""
        lost = self._fault("lost_response", ctx)
        if lost is None:
            return result
        if lost.params.get("mode", "drop") == "stall":
            time.sleep(float(lost.params.get("seconds", 2.0)))
            return result
        raise DropConnection

    _routes: list[tuple[str, str, Callable[..., list[bytes]]]] = [
        ("GET", rf"^{API}/myself$", JiraRoutes._myself),
        ("GET", rf"^{API}/project/(?P<project>[^/]+)$", JiraRoutes._project),
        ("GET", rf"^{API}/issue/createmeta/(?P<project>[^/]+)/issuetypes$", JiraRoutes._create_meta_types),
        ("GET", rf"^{API}/mypermissions$", JiraRoutes._my_permissions),
        ("POST", rf"^{API}/issue$", JiraRoutes._create_issue),
        ("GET", rf"^{API}/issue/{_ISSUE_KEY}$", JiraRoutes._get_issue),
        ("PUT", rf"^{API}/issue/{_ISSUE_KEY}$", JiraRoutes._edit_issue),
        ("GET", rf"^{API}/issue/{_ISSUE_KEY}/transitions$", JiraRoutes._get_transitions),
        ("POST", rf"^{API}/issue/{_ISSUE_KEY}/transitions$", JiraRoutes._do_transition),
        ("GET", rf"^{API}/issue/{_ISSUE_KEY}/comment$", JiraRoutes._get_comments),
        ("POST", rf"^{API}/issue/{_ISSUE_KEY}/comment$", JiraRoutes._post_comment),
        ("GET", rf"^{API}/search/jql$", JiraRoutes._search),
        ("POST", rf"^{API}/search/jql$", JiraRoutes._search),
        ("GET", rf"^{API}/search$", JiraRoutes._search_removed),
        ("GET", rf"^/browse/{_ISSUE_KEY}$", JiraRoutes._browse),
        ("POST", rf"^{API}/search$", JiraRoutes._search_removed),
    ]

    # -- internals ----------------------------------------------------------------------------------

    def _auth(self, header: str | None) -> tuple[str, User | None]:
        """(valid/invalid/missing, user) for an Authorization header (Basic e-mail:token)."""
        if not header:
            return "missing", None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return "invalid", None
        try:
            email, _, token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "invalid", None
        user = self._users.get(email.lower())
        if user is None or user.token != token:
            return "invalid", None
        return "valid", user

    def _track(self, email: str | None, delta: int) -> None:
        if email is None:
            return
        with self._lock:
            self._inflight[email] = self._inflight.get(email, 0) + delta
            self._peaks[email] = max(self._peaks.get(email, 0), self._inflight[email])

    def _now(self) -> float:
        """The simulated time of a change: the injected clock, else one minute per change from EPOCH."""
        if self._clock is not None:
            return self._clock()
        with self._lock:
            self._ticks += 1
            return EPOCH + 60 * self._ticks

    def _wall(self) -> float:
        return self._clock() if self._clock is not None else EPOCH + 60 * self._ticks

    def _issue_counter(self) -> int:
        return self._next_issue_id

    def _status_id(self, name: str) -> str:
        return next(s.id for s in self.statuses.values() if s.name.casefold() == name.casefold())

    def _view(self, issue: Issue) -> IssueView:
        project = self._projects[issue.project]
        status = self.statuses[issue.status]
        return IssueView(
            key=issue.key,
            id=issue.id,
            project=issue.project,
            issue_type=next(t.name for t in project.issue_types if t.id == issue.issue_type),
            summary=issue.summary,
            description=issue.description,
            description_text=documents.plain_text(issue.description),
            labels=tuple(issue.labels),
            status=status.name,
            status_category=status.category,
            resolution=issue.resolution,
            priority=dict(PRIORITIES).get(issue.priority or ""),
            duedate=issue.duedate,
            comments=tuple(documents.plain_text(c.body) for c in issue.comments),
        )


class _Tracked:
    """A response body that tells the simulator when the server is done with it (for peak concurrency)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body, self._done, self._closed = body, done, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._done()
