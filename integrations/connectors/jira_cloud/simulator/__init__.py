"""A stateful fake Jira Cloud site (REST v3) for tests and demos: a plain WSGI app, no Django.

It answers the calls the Jira door makes the way Jira Cloud does (bodies, status codes, headers), keeps
accounts, projects, a workflow, issues and comments as state, validates what a create or edit sends
(required fields, screens, ADF, labels), searches with a JQL subset and `nextPageToken` paging, and
injects faults on demand (`set_fault`). `serve()` runs it on 127.0.0.1.

Parts: `model` (state), `documents` (ADF validation), `jql` (the query subset), `routes` (endpoints),
`faults`, `responses`, `server`, and `app` (the WSGI callable and test hooks).
"""

from __future__ import annotations

from .app import API_TOKEN, EMAIL, VIEWER_API_TOKEN, VIEWER_EMAIL, JiraSimulator
from .faults import FAULTS
from .model import ALL_PERMISSIONS, BROWSE_ONLY, PERMISSIONS, IssueView, RecordedRequest, User
from .server import SimulatorServer

__all__ = [
    "ALL_PERMISSIONS",
    "API_TOKEN",
    "BROWSE_ONLY",
    "EMAIL",
    "FAULTS",
    "PERMISSIONS",
    "VIEWER_API_TOKEN",
    "VIEWER_EMAIL",
    "IssueView",
    "JiraSimulator",
    "RecordedRequest",
    "SimulatorServer",
    "User",
]
