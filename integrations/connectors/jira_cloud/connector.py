"""Jira Cloud as a ticketing connector: the declaration the UI renders, and the contract over the client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape
from typing import Any

from ..base import (
    Block,
    CredentialField,
    Link,
    ProjectAccess,
    Ticket,
    TicketContent,
    TicketDocument,
    TicketingConnector,
    TicketingError,
    TicketingInfo,
    TicketProject,
    TicketType,
)
from . import adf
from .client import Issue, JiraClient, pick_transition, site_origin, stable_label, summary_text
from .errors import JiraError

TICKET_FIELDS = ("status", "labels")
KEYS_PER_SEARCH = 50  # keys per `key in (…)` search; Jira caps a JQL query's length


class JiraCloudConnector(TicketingConnector):
    """Pushes findings to Jira Cloud as issues (REST v3, an Atlassian account's e-mail and API token)."""

    slug = "jiracloud"
    label = "Jira Cloud"
    category = "ticketing"
    tagline = "Ticketing · issue tracking"
    description = (
        "Create a Jira issue for each vulnerability (or finding) a project's runs find, keep its hosts "
        "current, and close it when Tenable says fixed."
    )
    default_api_url = "https://your-domain.atlassian.net"
    api_url_label = "Site URL"
    api_url_help = (
        "Your Jira Cloud site, e.g. https://your-domain.atlassian.net. Changing it means entering the "
        "API token again."
    )
    api_domain = "atlassian.net"
    hosts_setting = "JIRA_SITE_HOSTS"
    not_allowed = (
        "This is not an allowed Jira Cloud address. Use your site's https://…atlassian.net URL; other "
        "hosts must be listed in this server's JIRA_SITE_HOSTS setting."
    )
    token_instructions = (
        "https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/"
    )
    token_help = (
        "In your Atlassian account: Account settings › Security › Create and manage API tokens › Create API "
        "token. Use a dedicated account with Browse Projects, Create Issues, Edit Issues, Transition Issues "
        "and Add Comments in the projects tickets go to."
    )
    credential_fields = (
        CredentialField(
            "login",
            "E-mail",
            secret=False,
            help_text="The e-mail address of the Atlassian account the API token belongs to.",
        ),
        CredentialField(
            "access_key",
            "API token",
            secret=True,
            help_text="An API token of that Atlassian account (not its password).",
        ),
    )

    def __init__(self, login: str, access_key: str, api_url: str, **options: Any) -> None:
        """`options` go to JiraClient: timeout, budget, max_retries, sleep, clock (others are ignored)."""
        known = {"timeout", "budget", "max_retries", "backoff_factor", "retry_after_max", "sleep", "clock"}
        self.client = JiraClient(
            api_url, login, access_key, **{k: v for k, v in options.items() if k in known}
        )

    def __repr__(self) -> str:
        return f"<JiraCloudConnector {self.client.site_url}>"

    # -- who and where ------------------------------------------------------------------------------

    def test_connection(self, project_keys: Sequence[str] = ()) -> TicketingInfo:
        """`GET /myself`, then for each project its lookup and `GET /mypermissions`."""
        with _errors():
            user = self.client.myself()
        projects = []
        for key in dict.fromkeys(k.strip().upper() for k in project_keys if k and k.strip()):
            try:
                with _errors():
                    project = self.client.project(key)
                    check = self.client.my_permissions(project.key)
            except TicketingError as exc:
                if exc.kind not in ("not_found", "forbidden"):
                    raise
                projects.append(ProjectAccess(key=key, error=exc.message))
                continue
            projects.append(ProjectAccess(key=project.key, name=project.name, missing=tuple(check.missing)))
        return TicketingInfo(username=user.display_name, email=user.email, projects=tuple(projects))

    def project(self, key: str) -> TicketProject:
        """The project, and the issue types this account may create there (sub-tasks left out)."""
        with _errors():
            project = self.client.project(key)
            types = self.client.issue_types(project.key)
        return TicketProject(
            key=project.key,
            name=project.name,
            types=tuple(TicketType(t.id, t.name) for t in types if not t.subtask),
        )

    def missing_permissions(self, project_key: str) -> list[str]:
        with _errors():
            return self.client.my_permissions(project_key).missing

    # -- tickets ------------------------------------------------------------------------------------

    def find(self, project_key: str, stable_key: str) -> list[Ticket]:
        with _errors():
            return [
                _ticket(i) for i in self.client.find_by_label(project_key, stable_key, fields=TICKET_FIELDS)
            ]

    def tickets(self, keys: Sequence[str]) -> dict[str, Ticket]:
        """`key in (…)` searches, a batch at a time, then `GET /issue` for any key the search left out: search
        lags behind writes, and Jira refuses a whole query that names an issue no longer there (that batch is
        read issue by issue). A key answered 404 is absent from the result."""
        found: dict[str, Ticket] = {}
        keys = list(dict.fromkeys(k for k in keys if k))
        for start in range(0, len(keys), KEYS_PER_SEARCH):
            batch = keys[start : start + KEYS_PER_SEARCH]
            jql = "key in (" + ", ".join(_jql_key(k) for k in batch) + ")"
            try:
                with _errors():
                    issues = self.client.search(jql, fields=TICKET_FIELDS)
            except TicketingError as exc:
                if exc.kind != "bad_request":
                    raise
                issues = []
            for issue in issues:
                found[issue.key.upper()] = _ticket(issue)
            for key in batch:
                if key.upper() in found:
                    continue
                try:
                    with _errors():
                        issue = self.client.issue(key, TICKET_FIELDS)
                except TicketingError as missing:
                    if missing.kind != "not_found":
                        raise
                    continue
                found[issue.key.upper()] = _ticket(issue)
        return {key: found[key.upper()] for key in keys if key.upper() in found}

    def create(self, project_key: str, type_id: str, content: TicketContent) -> Ticket:
        fields = {
            "project": {"key": project_key},
            "issuetype": {"id": str(type_id)},
            **self._fields(content),
            "labels": list(content.labels),
        }
        with _errors():
            created = self.client.create_issue(fields)
        status = ""
        try:  # the new issue's status, for the finding page; the issue exists either way
            status = self.client.issue(created.key, ["status"]).status or ""
        except JiraError:
            pass
        return Ticket(id=created.id, key=created.key, status=status, done=False, labels=content.labels)

    def update(self, key: str, content: TicketContent) -> None:
        """`PUT /issue/{key}`: summary, description and priority set; each label added (never removed)."""
        update = {"labels": [{"add": label} for label in content.labels]}
        with _errors():
            self.client.edit_issue(key, self._fields(content), update=update)

    def close_ticket(self, key: str, *, status: str, comment: TicketDocument) -> Ticket:
        """Transition into `status` (else the first Done-category one offered), then the comment."""
        return self._move(key, done=True, status=status, comment=comment)

    def reopen_ticket(self, key: str, *, status: str, comment: TicketDocument) -> Ticket:
        """Transition into `status` (else the first To Do-category one, else In Progress), then the comment."""
        return self._move(key, done=False, status=status, comment=comment)

    def comment(self, key: str, document: TicketDocument) -> None:
        with _errors():
            self.client.add_comment(key, to_adf(document))

    def close(self) -> None:
        self.client.close()

    # -- helpers ------------------------------------------------------------------------------------

    def _fields(self, content: TicketContent) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "summary": summary_text(content.summary),
            "description": to_adf(content.description),
        }
        if content.priority:
            fields["priority"] = {"name": content.priority}
        return fields

    def _move(self, key: str, *, done: bool, status: str, comment: TicketDocument) -> Ticket:
        with _errors():
            issue = self.client.issue(key, TICKET_FIELDS)
            if issue.done == done:
                return _ticket(issue)
            offered = self.client.transitions(key)
            transition = pick_transition(offered, status=status, category="done" if done else "new")
            if transition is None and not done:
                transition = pick_transition(offered, category="indeterminate")
            if transition is None:
                where = issue.status or "its status"
                raise TicketingError(
                    f"No transition of {key}'s workflow leads from “{where}” to "
                    f"{'a Done' if done else 'an open'} status (asked for “{status}”). Check the "
                    f"{'done' if done else 'reopen'} status in the project's Jira settings.",
                    kind="workflow",
                    permanent=True,
                )
            self.client.transition(key, transition.id, comment=to_adf(comment))
        return Ticket(
            id=issue.id,
            key=issue.key,
            status=transition.to_status,
            done=transition.to_category == "done",
            labels=issue.labels,
        )

    # -- declarations -------------------------------------------------------------------------------

    @classmethod
    def stable_key(cls, *identity: object) -> str:
        return stable_label(*identity)

    @classmethod
    def ticket_url(cls, api_url: str, key: str) -> str:
        origin, ok = site_origin(api_url)
        return f"{origin}/browse/{key}" if ok else ""

    @classmethod
    def preview_html(cls, document: TicketDocument) -> str:
        return adf_html(to_adf(document))


# ---------------------------------------------------------------------------------------------------
# Our neutral document as ADF, and ADF as HTML (the preview shows exactly what Jira receives)
# ---------------------------------------------------------------------------------------------------


def to_adf(document: TicketDocument) -> dict[str, Any]:
    """The document in Atlassian Document Format, every string a text node (see `adf`)."""
    doc = adf.Document()
    for block in document.blocks:
        if block.kind == Block.HEADING:
            doc.heading(str(block.parts[0]))
        elif block.kind == Block.PARAGRAPH:
            doc.paragraph(*(_inline(part) for part in block.parts))
        elif block.kind == Block.PROSE:
            doc.paragraphs(str(block.parts[0]))
        elif block.kind == Block.BULLETS:
            doc.bullet_list(_inline(item) for item in block.items)
        elif block.kind == Block.CODE:
            doc.code_block(str(block.parts[0]))
    return doc.as_dict()


def _inline(part: str | Link) -> str | dict | None:
    return adf.link(part.label, part.url) if isinstance(part, Link) else part


def adf_html(node: dict[str, Any]) -> str:
    """HTML for the ADF nodes `to_adf` makes; every text escaped, links only to http(s)."""
    kind = node.get("type")
    inner = "".join(adf_html(child) for child in node.get("content") or [])
    if kind == "text":
        value = escape(str(node.get("text", "")))
        for mark in node.get("marks") or []:
            if mark.get("type") == "link":
                href = adf.safe_href(str((mark.get("attrs") or {}).get("href", "")))
                if href:
                    value = f'<a href="{escape(href)}" rel="noopener noreferrer nofollow">{value}</a>'
            elif mark.get("type") in ("strong", "code", "em"):
                tag = {"strong": "strong", "code": "code", "em": "em"}[mark["type"]]
                value = f"<{tag}>{value}</{tag}>"
        return value
    tags = {
        "doc": "div",
        "paragraph": "p",
        "bulletList": "ul",
        "listItem": "li",
        "codeBlock": "pre",
    }
    if kind == "heading":
        level = min(max(int((node.get("attrs") or {}).get("level", 3)), 1), 6)
        return f"<h{level}>{inner}</h{level}>"
    if kind == "rule":
        return "<hr>"
    tag = tags.get(str(kind), "div")
    return f"<{tag}>{inner}</{tag}>"


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


@contextmanager
def _errors() -> Iterator[None]:
    """The client's `JiraError` as the contract's `TicketingError` (same sentence, kind and flags)."""
    try:
        yield
    except JiraError as exc:
        raise TicketingError(
            exc.message,
            kind=exc.kind,
            permanent=exc.permanent,
            status=exc.status,
            retry_after=exc.retry_after,
            outcome_unknown=exc.outcome_unknown,
        ) from exc


def _ticket(issue: Issue) -> Ticket:
    return Ticket(id=issue.id, key=issue.key, status=issue.status or "", done=issue.done, labels=issue.labels)


def _jql_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
