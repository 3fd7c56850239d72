"""Pytest fixtures for the fake Jira Cloud; other test folders use `from tests.jira_fixtures import *`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.connectors.jira_cloud.client import JiraClient
from integrations.connectors.jira_cloud.simulator import (
    API_TOKEN,
    EMAIL,
    VIEWER_API_TOKEN,
    VIEWER_EMAIL,
    JiraSimulator,
    SimulatorServer,
)
from tests.tenable_fixtures import FakeTime

__all__ = [
    "JIRA_API_TOKEN",
    "JIRA_EMAIL",
    "JIRA_VIEWER_API_TOKEN",
    "JIRA_VIEWER_EMAIL",
    "jira_client",
    "jira_client_for",
    "jira_simulator",
]

JIRA_EMAIL, JIRA_API_TOKEN = EMAIL, API_TOKEN  # every permission
JIRA_VIEWER_EMAIL, JIRA_VIEWER_API_TOKEN = VIEWER_EMAIL, VIEWER_API_TOKEN  # Browse Projects only


def jira_client_for(url: str, fake_time: FakeTime | None = None, **kwargs) -> JiraClient:
    """A client for `url` (the valid account unless `email`/`api_token` say otherwise) that sleeps on `fake_time`."""
    fake_time = fake_time or FakeTime()
    kwargs.setdefault("email", JIRA_EMAIL)
    kwargs.setdefault("api_token", JIRA_API_TOKEN)
    kwargs.setdefault("timeout", (2.0, 5.0))
    return JiraClient(url, sleep=fake_time.sleep, clock=fake_time.monotonic, **kwargs)


@pytest.fixture
def jira_simulator() -> Iterator[SimulatorServer]:
    """A fresh Jira simulator on a free 127.0.0.1 port (`.url`, `.sim`); stopped after the test."""
    server = JiraSimulator().serve()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jira_client(jira_simulator: SimulatorServer, fake_time: FakeTime) -> Iterator[JiraClient]:
    """A client with the valid account pointed at the simulator; retries sleep on `fake_time`."""
    client = jira_client_for(jira_simulator.url, fake_time)
    try:
        yield client
    finally:
        client.close()
