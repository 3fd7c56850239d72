"""The REST v3 endpoints: myself, projects and issue types, permissions, issues, transitions, comments, search."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from . import documents, jql
from .model import (
    CATEGORIES,
    LABEL_LIMIT,
    PERMISSIONS,
    PRIORITIES,
    SUMMARY_LIMIT,
    Comment,
    Issue,
    Project,
    Status,
    User,
    WorkflowTransition,
)
from .responses import browse_page, error_collection, html_page, json_response, no_content, timestamp

API = "/rest/api/3"
NOT_ON_SCREEN = "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
PROJECT_NOT_FOUND = "No project could be found with key '{key}'."
BAD_PAYLOAD = "Invalid request payload. Refer to the REST API documentation and try again."
BAD_TOKEN = "The provided next page token is invalid or expired."
SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID_ONLY = {"id", "key"}


class JiraRoutes:
    """The endpoint handlers; state lives on the simulator (see `app.JiraSimulator`)."""

    base_url: str
    page_cap: int
    statuses: dict[str, Status]
    workflow: list[WorkflowTransition]
    _lock: threading.RLock
    _projects: dict[str, Project]
    _issues: dict[str, Issue]
    _users: dict[str, User]
    _next_issue_id: int
    _next_comment_id: int
    _now: Callable[[], float]
    _fault: Callable[..., Any]

    # -- who and where ------------------------------------------------------------------------------

    def _myself(self, start_response: Callable, *, user: User, **_: Any) -> list[bytes]:
        return json_response(start_response, 200, {**self._user_json(user), "locale": "en_US"})

    def _project(self, start_response: Callable, *, user: User, project: str, **_: Any) -> list[bytes]:
        found = self._visible_project(user, project)
        if found is None:
            return error_collection(start_response, 404, [PROJECT_NOT_FOUND.format(key=project)])
        body = {
            **self._project_json(found),
            "description": "",
            "projectTypeKey": "software",
            "simplified": found.simplified,
            "style": "next-gen" if found.simplified else "classic",
            "isPrivate": False,
            "issueTypes": [self._type_json(t) for t in found.issue_types],
        }
        return json_response(start_response, 200, body)

    def _create_meta_types(
        self, start_response: Callable, *, user: User, project: str, query: dict, **_: Any
    ) -> list[bytes]:
        """Issue types the user may create in the project; none without Create Issues."""
        found = self._visible_project(user, project)
        if found is None:
            return error_collection(start_response, 404, [PROJECT_NOT_FOUND.format(key=project)])
        types = found.issue_types if user.may("CREATE_ISSUES", found.key) else []
        start, size = _int(query.get("startAt"), 0), min(max(_int(query.get("maxResults"), 50), 1), 200)
        page = types[start : start + size]
        body = {
            "issueTypes": [self._type_json(t) for t in page],
            "maxResults": size,
            "startAt": start,
            "total": len(types),
        }
        return json_response(start_response, 200, body)

    def _my_permissions(self, start_response: Callable, *, user: User, query: dict, **_: Any) -> list[bytes]:
        keys = [k.strip() for k in (query.get("permissions") or "").split(",") if k.strip()]
        if not keys:
            return error_collection(start_response, 400, ["The 'permissions' query parameter is required."])
        unknown = [k for k in keys if k not in PERMISSIONS]
        if unknown:
            return error_collection(
                start_response, 400, [f"Unrecognized permission keys: {', '.join(unknown)}"]
            )
        project_key = query.get("projectKey")
        project = None
        if project_key:
            project = self._visible_project(user, project_key)
            if project is None:
                return error_collection(start_response, 404, [PROJECT_NOT_FOUND.format(key=project_key)])
        permissions = {
            key: {
                "id": str(10 + n),
                "key": key,
                "name": PERMISSIONS[key],
                "type": "PROJECT",
                "description": f"Ability to {PERMISSIONS[key].lower()}.",
                "havePermission": key in user.permissions
                and (project is None or user.projects is None or project.key in user.projects),
            }
            for n, key in enumerate(keys)
        }
        return json_response(start_response, 200, {"permissions": permissions})

    # -- issues -------------------------------------------------------------------------------------

    def _create_issue(self, start_response: Callable, *, user: User, body: Any, **_: Any) -> list[bytes]:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return error_collection(start_response, 400, [BAD_PAYLOAD])
        errors: dict[str, str] = {}
        with self._lock:
            project = _project_of(self, user, fields.get("project"))
            if project is None:
                errors["project"] = "Specify a valid project ID or key"
                return error_collection(start_response, 400, errors=errors)
            if not user.may("CREATE_ISSUES", project.key):
                return error_collection(
                    start_response, 403, ["You do not have permission to create issues in this project."]
                )
            issue_type = _issue_type_of(project, fields.get("issuetype"))
            if issue_type is None:
                errors["issuetype"] = (
                    "Specify an issue type"
                    if not fields.get("issuetype")
                    else "The issue type selected is invalid."
                )
            values = self._field_values(project, user, fields, errors, creating=True)
            if errors:
                return error_collection(start_response, 400, errors=errors)
            now = self._now()
            number = project.next_number
            project.next_number += 1
            issue = Issue(
                id=str(self._next_issue_id),
                key=f"{project.key}-{number}",
                project=project.key,
                issue_type=issue_type.id,
                summary=values["summary"],
                description=values.get("description"),
                labels=values.get("labels", []),
                status=self._initial_status(),
                priority=values.get("priority", "3" if "priority" in project.screen_fields else None),
                duedate=values.get("duedate"),
                resolution=None,
                reporter=user.account_id,
                created=now,
                updated=now,
            )
            self._next_issue_id += 1
            self._issues[issue.key] = issue
        body = {"id": issue.id, "key": issue.key, "self": f"{self.base_url}{API}/issue/{issue.id}"}
        return json_response(start_response, 201, body)

    def _edit_issue(
        self, start_response: Callable, *, user: User, body: Any, key: str, **_: Any
    ) -> list[bytes]:
        if not isinstance(body, dict) or not isinstance(body.get("fields", {}), dict):
            return error_collection(start_response, 400, [BAD_PAYLOAD])
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            project = self._projects[issue.project]
            if not user.may("EDIT_ISSUES", project.key):
                return error_collection(
                    start_response, 403, ["You do not have permission to edit issues in this project."]
                )
            fields = dict(body.get("fields") or {})
            errors: dict[str, str] = {}
            for name, operations in (body.get("update") or {}).items():
                if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
                    errors[name] = BAD_PAYLOAD
                elif name == "labels":
                    fields["labels"] = _apply_label_verbs(fields.get("labels", issue.labels), operations)
                elif len(operations) == 1 and "set" in operations[0]:
                    fields[name] = operations[0]["set"]
                else:
                    errors[name] = NOT_ON_SCREEN.format(name=name)
            values = self._field_values(project, user, fields, errors, creating=False)
            if errors:
                return error_collection(start_response, 400, errors=errors)
            for name, value in values.items():
                setattr(issue, name, value)
            issue.updated = self._now()
        return no_content(start_response)

    def _get_issue(
        self, start_response: Callable, *, user: User, key: str, query: dict, **_: Any
    ) -> list[bytes]:
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            wanted = [f.strip() for f in (query.get("fields") or "*all").split(",") if f.strip()]
            body = self._issue_json(issue, wanted)
        return json_response(start_response, 200, body)

    def _get_transitions(self, start_response: Callable, *, user: User, key: str, **_: Any) -> list[bytes]:
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            allowed = user.may("TRANSITION_ISSUES", issue.project)
            transitions = [self._transition_json(t) for t in self._available(issue)] if allowed else []
        return json_response(start_response, 200, {"expand": "transitions", "transitions": transitions})

    def _do_transition(
        self, start_response: Callable, *, user: User, key: str, body: Any, **_: Any
    ) -> list[bytes]:
        wanted = body.get("transition") if isinstance(body, dict) else None
        if not isinstance(wanted, dict) or not (wanted.get("id") or wanted.get("name")):
            return error_collection(start_response, 400, ["Missing 'transition' identifier"])
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            if not user.may("TRANSITION_ISSUES", issue.project):
                return error_collection(
                    start_response, 403, ["You do not have permission to transition this issue."]
                )
            transition = next(
                (
                    t
                    for t in self._available(issue)
                    if str(wanted.get("id") or "") == t.id
                    or (not wanted.get("id") and str(wanted.get("name")) == t.name)
                ),
                None,
            )
            if transition is None:
                return error_collection(
                    start_response,
                    400,
                    [
                        f"Transition id '{wanted.get('id') or wanted.get('name')}' is not valid for this issue."
                    ],
                )
            errors: dict[str, str] = {}
            resolution = None
            for name, value in (body.get("fields") or {}).items():
                if (
                    name == "resolution"
                    and transition.has_screen
                    and isinstance(value, dict)
                    and value.get("name")
                ):
                    resolution = str(value["name"])
                else:
                    errors[name] = NOT_ON_SCREEN.format(name=name)
            comments = ((body.get("update") or {}).get("comment")) or []
            bodies = [
                c["add"].get("body")
                for c in comments
                if isinstance(c, dict) and isinstance(c.get("add"), dict)
            ]
            if transition.has_screen and any(documents.problem(b) for b in bodies):
                errors["comment"] = documents.NOT_ADF
            if errors:
                return error_collection(start_response, 400, errors=errors)
            self._move(issue, transition.to, resolution)
            if transition.has_screen:  # Jira Cloud drops a transition's comment when it has no screen
                for adf_body in bodies:
                    self._add_comment(issue, adf_body, user.account_id)
        return no_content(start_response)

    def _get_comments(self, start_response: Callable, *, user: User, key: str, **_: Any) -> list[bytes]:
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            body = self._comments_json(issue)
        return json_response(start_response, 200, body)

    def _post_comment(
        self, start_response: Callable, *, user: User, key: str, body: Any, **_: Any
    ) -> list[bytes]:
        adf_body = body.get("body") if isinstance(body, dict) else None
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            if not user.may("ADD_COMMENTS", issue.project):
                return error_collection(
                    start_response, 403, ["You do not have permission to add comments to this issue."]
                )
            if adf_body is None:
                return error_collection(
                    start_response, 400, errors={"comment": "Comment body can not be empty!"}
                )
            problem = documents.problem(adf_body)
            if problem:
                return error_collection(start_response, 400, errors={"comment": problem})
            comment = self._add_comment(issue, adf_body, user.account_id)
            answer = self._comment_json(comment)
        return json_response(start_response, 201, answer)

    # -- search -------------------------------------------------------------------------------------

    def _search(
        self, start_response: Callable, *, user: User, query: dict, body: Any, ctx: dict, **_: Any
    ) -> list[bytes]:
        """`/search/jql` (GET or POST): bounded JQL, `nextPageToken` paging, IDs only unless `fields` given."""
        if ctx["method"] == "POST":
            if not isinstance(body, dict):
                return error_collection(start_response, 400, [BAD_PAYLOAD])
            request = body
        else:
            request = {
                **query,
                "fields": query["fields"].split(",") if query.get("fields") else None,
                "reconcileIssues": query["reconcileIssues"].split(",")
                if query.get("reconcileIssues")
                else None,
            }
        text = request.get("jql")
        fields = [f.strip() for f in request.get("fields") or ["id"] if isinstance(f, str) and f.strip()]
        reconcile = {str(i) for i in request.get("reconcileIssues") or []}
        with self._lock:
            try:
                parsed = jql.parse(
                    str(text or ""), check_project=lambda v: self._visible_project(user, v) is not None
                )
            except jql.JqlError as exc:
                return error_collection(start_response, 400, [str(exc)])
            stale = self._fault("stale_search", ctx)
            matches = [
                issue
                for issue in self._issues.values()
                if self._visible_issue(user, issue.key) is not None
                and (stale is None or int(issue.id) < stale.params["since"] or issue.id in reconcile)
                and parsed.where(self._jql_values(issue))
            ]
            matches = _sorted(matches, parsed.order)
            fingerprint = hashlib.sha1(f"{text}\x1f{fields}".encode()).hexdigest()[:12]  # noqa: S324 - a token, not a secret
            offset = _offset(request.get("nextPageToken"), fingerprint)
            if offset is None:
                return error_collection(start_response, 400, [BAD_TOKEN])
            cap = 5000 if set(fields) <= _ID_ONLY else self.page_cap
            size = min(max(_int(request.get("maxResults"), 50), 1), cap)
            page = matches[offset : offset + size]
            issues = [self._issue_json(issue, fields) for issue in page]
        answer: dict[str, Any] = {"issues": issues, "isLast": offset + size >= len(matches)}
        if not answer["isLast"]:
            token = json.dumps({"o": offset + size, "q": fingerprint}).encode()
            answer["nextPageToken"] = base64.urlsafe_b64encode(token).decode().rstrip("=")
        return json_response(start_response, 200, answer)

    def _browse(self, start_response: Callable, *, user: User, key: str, **_: Any) -> list[bytes]:
        """`/browse/{key}`: the issue as a plain, escaped page, so demo links from the console lead somewhere."""
        with self._lock:
            issue = self._visible_issue(user, key)
            if issue is None:
                return error_collection(start_response, 404, [ISSUE_NOT_FOUND])
            status = self.statuses[issue.status]
            comments = [documents.plain_text(c.body) for c in issue.comments]
            page = browse_page(
                issue.key,
                issue.summary,
                status.name,
                issue.labels,
                documents.plain_text(issue.description),
                comments,
            )
        return html_page(start_response, page)

    def _search_removed(self, start_response: Callable, **_: Any) -> list[bytes]:
        return error_collection(start_response, 410, [SEARCH_REMOVED])

    # -- state helpers ------------------------------------------------------------------------------

    def _visible_project(self, user: User, value: str) -> Project | None:
        value = str(value or "").strip()
        for project in self._projects.values():
            if (
                value.upper() == project.key
                or value == project.id
                or value.casefold() == project.name.casefold()
            ):
                if user.may("BROWSE_PROJECTS", project.key):
                    return project
        return None

    def _visible_issue(self, user: User, value: str) -> Issue | None:
        value = str(value or "").strip()
        issue = self._issues.get(value.upper()) or next(
            (i for i in self._issues.values() if i.id == value), None
        )
        if issue is None or not user.may("BROWSE_PROJECTS", issue.project):
            return None
        return issue

    def _initial_status(self) -> str:
        return next(s.id for s in self.statuses.values() if s.category == "new")

    def _available(self, issue: Issue) -> list[WorkflowTransition]:
        return [t for t in self.workflow if issue.status in t.sources]

    def _move(self, issue: Issue, status_id: str, resolution: str | None = None) -> None:
        issue.status = status_id
        now = self._now()
        if self.statuses[status_id].category == "done":
            issue.resolution = resolution or "Done"
            issue.resolution_date = now
        else:
            issue.resolution = issue.resolution_date = None
        issue.updated = now

    def _add_comment(self, issue: Issue, body: dict, author: str) -> Comment:
        comment = Comment(id=str(self._next_comment_id), body=body, author=author, created=self._now())
        self._next_comment_id += 1
        issue.comments.append(comment)
        issue.updated = comment.created
        return comment

    def _field_values(
        self, project: Project, user: User, fields: dict, errors: dict[str, str], *, creating: bool
    ) -> dict[str, Any]:
        """Validated values of settable fields (summary, description, labels, priority, duedate)."""
        values: dict[str, Any] = {}
        settable = set(project.screen_fields)
        if not user.may("SCHEDULE_ISSUES", project.key):
            settable.discard("duedate")  # the Due Date field needs Schedule Issues
        for name, value in fields.items():
            if name in ("project", "issuetype"):
                if not creating:
                    errors[name] = NOT_ON_SCREEN.format(name=name)
                continue
            if name not in settable:
                errors[name] = NOT_ON_SCREEN.format(name=name)
            elif name == "summary":
                if not isinstance(value, str) or not value.strip():
                    errors[name] = "You must specify a summary of the issue."
                elif "\n" in value or "\r" in value:
                    errors[name] = "The summary is invalid because it contains newline characters."
                elif len(value) > SUMMARY_LIMIT:
                    errors[name] = "Summary must be less than 255 characters."
                else:
                    values[name] = value
            elif name == "description":
                problem = None if value is None else documents.problem(value)
                if problem:
                    errors[name] = problem
                else:
                    values[name] = value
            elif name == "labels":
                if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
                    errors[name] = BAD_PAYLOAD
                else:
                    for label in value:
                        if re.search(r"\s", label) or not label:
                            errors[name] = f"The label '{label}' contains spaces which is invalid."
                        elif len(label) > LABEL_LIMIT:
                            errors[name] = f"The label '{label[:20]}…' exceeds the 255 character limit."
                    values[name] = list(dict.fromkeys(value))
            elif name == "priority":
                wanted = value if isinstance(value, dict) else {}
                match = next(
                    (
                        pid
                        for pid, pname in PRIORITIES
                        if wanted.get("id") == pid or wanted.get("name") == pname
                    ),
                    None,
                )
                if match is None:
                    errors[name] = "The priority selected is invalid."
                else:
                    values[name] = match
            elif name == "duedate":
                if value is not None and not (isinstance(value, str) and _DATE.match(value)):
                    errors[name] = f"Error parsing date string: {value}"
                else:
                    values[name] = value
        if creating and "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        return values

    def _jql_values(self, issue: Issue) -> jql.Values:
        project = self._projects[issue.project]
        status = self.statuses[issue.status]
        category = CATEGORIES[status.category]
        issue_type = next(t for t in project.issue_types if t.id == issue.issue_type)
        return {
            "project": {project.key.lower(), project.id, project.name.lower()},
            "labels": {label.lower() for label in issue.labels},
            "status": {status.name.lower(), status.id},
            "statuscategory": {category[1], category[2].lower(), str(category[0])},
            "issuetype": {issue_type.name.lower(), issue_type.id},
            "key": {issue.key.lower()},
            "id": {issue.id},
            "summary": {issue.summary.lower()},
            "resolution": {issue.resolution.lower()} if issue.resolution else set(),
        }

    # -- JSON shapes --------------------------------------------------------------------------------

    def _user_json(self, user: User) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}{API}/user?accountId={user.account_id}",
            "accountId": user.account_id,
            "accountType": "atlassian",
            "emailAddress": user.email,
            "displayName": user.display_name,
            "active": True,
            "timeZone": "Etc/UTC",
        }

    def _project_json(self, project: Project) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}{API}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
        }

    def _type_json(self, issue_type: Any) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}{API}/issuetype/{issue_type.id}",
            "id": issue_type.id,
            "name": issue_type.name,
            "description": issue_type.description,
            "subtask": issue_type.subtask,
            "hierarchyLevel": -1 if issue_type.subtask else 0,
        }

    def _status_json(self, status: Status) -> dict[str, Any]:
        category_id, key, name, colour = CATEGORIES[status.category]
        return {
            "self": f"{self.base_url}{API}/status/{status.id}",
            "id": status.id,
            "name": status.name,
            "statusCategory": {"id": category_id, "key": key, "name": name, "colorName": colour},
        }

    def _transition_json(self, transition: WorkflowTransition) -> dict[str, Any]:
        return {
            "id": transition.id,
            "name": transition.name,
            "to": self._status_json(self.statuses[transition.to]),
            "hasScreen": transition.has_screen,
            "isGlobal": False,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        author = next((u for u in self._users.values() if u.account_id == comment.author), None)
        return {
            "id": comment.id,
            "author": self._user_json(author) if author else {"accountId": comment.author},
            "body": comment.body,
            "created": timestamp(comment.created),
            "updated": timestamp(comment.created),
        }

    def _comments_json(self, issue: Issue) -> dict[str, Any]:
        comments = [self._comment_json(c) for c in issue.comments]
        return {"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0}

    def _issue_json(self, issue: Issue, wanted: list[str]) -> dict[str, Any]:
        project = self._projects[issue.project]
        issue_type = next(t for t in project.issue_types if t.id == issue.issue_type)
        reporter = next((u for u in self._users.values() if u.account_id == issue.reporter), None)
        priority = dict(PRIORITIES).get(issue.priority or "")
        every = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "status": self._status_json(self.statuses[issue.status]),
            "issuetype": self._type_json(issue_type),
            "project": self._project_json(project),
            "priority": {"id": issue.priority, "name": priority} if priority else None,
            "duedate": issue.duedate,
            "resolution": {"id": "10000", "name": issue.resolution} if issue.resolution else None,
            "resolutiondate": timestamp(issue.resolution_date) if issue.resolution_date else None,
            "created": timestamp(issue.created),
            "updated": timestamp(issue.updated),
            "reporter": self._user_json(reporter) if reporter else None,
            "comment": self._comments_json(issue),
        }
        chosen: dict[str, Any] = {}
        for name in wanted:
            if name in ("*all", "*navigable"):
                chosen.update(every)
            elif name.startswith("-"):
                chosen.pop(name[1:], None)
            elif name in every:
                chosen[name] = every[name]
        answer = {"id": issue.id, "key": issue.key, "self": f"{self.base_url}{API}/issue/{issue.id}"}
        if set(wanted) - _ID_ONLY:
            answer["fields"] = chosen
        return answer


def _project_of(routes: JiraRoutes, user: User, value: Any) -> Project | None:
    if not isinstance(value, dict):
        return None
    return routes._visible_project(user, str(value.get("key") or value.get("id") or ""))


def _issue_type_of(project: Project, value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for issue_type in project.issue_types:
        if not issue_type.subtask and (
            str(value.get("id")) == issue_type.id or value.get("name") == issue_type.name
        ):
            return issue_type
    return None


def _apply_label_verbs(labels: list[str], operations: list[dict]) -> list[str]:
    """Labels after `update` verbs: `{"add": x}`, `{"remove": x}`, `{"set": [...]}`, in order."""
    labels = list(labels)
    for operation in operations:
        if "set" in operation:
            labels = list(operation["set"] or [])
        if "add" in operation and operation["add"] not in labels:
            labels.append(operation["add"])
        if "remove" in operation and operation["remove"] in labels:
            labels.remove(operation["remove"])
    return labels


def _sorted(issues: list[Issue], order: list[tuple[str, bool]]) -> list[Issue]:
    """Sorted by the ORDER BY keys (last key first, stable), newest key first when there is none."""
    issues = sorted(issues, key=lambda i: int(i.id), reverse=True)
    for name, descending in reversed(order):
        if name == "key":
            issues.sort(key=lambda i: (i.project, int(i.key.rsplit("-", 1)[1])), reverse=descending)
        elif name == "id":
            issues.sort(key=lambda i: int(i.id), reverse=descending)
        elif name == "summary":
            issues.sort(key=lambda i: i.summary.lower(), reverse=descending)
        else:
            issues.sort(key=lambda i: (getattr(i, name), int(i.id)), reverse=descending)
    return issues


def _offset(token: Any, fingerprint: str) -> int | None:
    """The offset a `nextPageToken` stands for (0 without one); None when it is not ours for this query."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4)))
        if data["q"] != fingerprint:
            return None
        return max(int(data["o"]), 0)
    except (ValueError, KeyError, TypeError):
        return None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
