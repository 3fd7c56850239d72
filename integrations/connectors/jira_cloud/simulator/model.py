"""The simulator's state as plain dataclasses: accounts, projects, the workflow, issues, recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every project permission the simulator knows, with Jira's names (GET /mypermissions).
PERMISSIONS = {
    "BROWSE_PROJECTS": "Browse Projects",
    "CREATE_ISSUES": "Create Issues",
    "EDIT_ISSUES": "Edit Issues",
    "TRANSITION_ISSUES": "Transition Issues",
    "ADD_COMMENTS": "Add Comments",
    "RESOLVE_ISSUES": "Resolve Issues",
    "SCHEDULE_ISSUES": "Schedule Issues",
    "ASSIGN_ISSUES": "Assign Issues",
    "CLOSE_ISSUES": "Close Issues",
    "DELETE_ISSUES": "Delete Issues",
}
ALL_PERMISSIONS = frozenset(PERMISSIONS)
BROWSE_ONLY = frozenset({"BROWSE_PROJECTS"})

# Status categories: (id, key, name, colour) as Jira ships them.
CATEGORIES = {
    "new": (2, "new", "To Do", "blue-gray"),
    "indeterminate": (4, "indeterminate", "In Progress", "yellow"),
    "done": (3, "done", "Done", "green"),
}
PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")]
# Fields a create screen can hold; a project lists the ones its screens show.
SCREEN_FIELDS = frozenset({"summary", "description", "labels", "priority", "duedate"})
TEXT_LIMIT = 32_767  # characters in a rich-text field
LABEL_LIMIT = 255
SUMMARY_LIMIT = 255


@dataclass(frozen=True, slots=True)
class User:
    """An Atlassian account: e-mail + API token, its project permissions, and the projects it may browse."""

    email: str
    token: str
    account_id: str
    display_name: str
    permissions: frozenset[str]
    projects: frozenset[str] | None = None  # None: every project

    def may(self, permission: str, project_key: str) -> bool:
        return permission in self.permissions and (self.projects is None or project_key in self.projects)


@dataclass(frozen=True, slots=True)
class Status:
    id: str
    name: str
    category: str  # new, indeterminate or done


@dataclass(frozen=True, slots=True)
class WorkflowTransition:
    """A transition into `to` from any status in `sources`; `has_screen` decides whether a comment sticks."""

    id: str
    name: str
    sources: frozenset[str]
    to: str
    has_screen: bool = False


@dataclass(frozen=True, slots=True)
class IssueTypeDef:
    id: str
    name: str
    subtask: bool = False
    description: str = ""


@dataclass
class Project:
    id: str
    key: str
    name: str
    issue_types: list[IssueTypeDef]
    screen_fields: frozenset[str] = SCREEN_FIELDS
    simplified: bool = False
    next_number: int = 1


@dataclass
class Comment:
    id: str
    body: dict[str, Any]
    author: str  # account id
    created: float


@dataclass
class Issue:
    id: str
    key: str
    project: str  # key
    issue_type: str  # id
    summary: str
    description: dict[str, Any] | None
    labels: list[str]
    status: str  # status id
    priority: str | None  # priority id
    duedate: str | None
    resolution: str | None
    reporter: str  # account id
    created: float
    updated: float
    comments: list[Comment] = field(default_factory=list)
    resolution_date: float | None = None


@dataclass(frozen=True, slots=True)
class IssueView:
    """Ground truth for tests: one issue as Jira holds it, with its rich text flattened."""

    key: str
    id: str
    project: str
    issue_type: str
    summary: str
    description: dict[str, Any] | None
    description_text: str
    labels: tuple[str, ...]
    status: str
    status_category: str
    resolution: str | None
    priority: str | None
    duedate: str | None
    comments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the simulator received (never the token): `auth` is valid, invalid or missing."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str
    user: str | None  # the e-mail that authenticated
    has_auth_header: bool


class DropConnection(Exception):
    """Raised by a handler to close the connection without answering (the answer is lost)."""
