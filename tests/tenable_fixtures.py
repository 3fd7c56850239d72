"""Pytest fixtures for the fake Tenable.io; other test folders use `from tests.tenable_fixtures import *`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.connectors.tenable_io.client import TenableClient
from integrations.connectors.tenable_io.simulator import ROLE_KEYS, SimulatorServer, TenableSimulator

__all__ = [
    "SIM_ACCESS_KEY",
    "SIM_BASIC_ACCESS_KEY",
    "SIM_BASIC_SECRET_KEY",
    "SIM_FORBIDDEN_ACCESS_KEY",
    "SIM_FORBIDDEN_SECRET_KEY",
    "SIM_ROLE_KEYS",
    "SIM_SECRET_KEY",
    "FakeTime",
    "SimClock",
    "fake_time",
    "sim_clock",
    "tenable_client",
    "tenable_simulator",
]

SIM_ACCESS_KEY = "sim-access"
SIM_SECRET_KEY = "sim-secret"
SIM_FORBIDDEN_ACCESS_KEY = "sim-forbidden-access"
SIM_FORBIDDEN_SECRET_KEY = "sim-forbidden-secret"
# One published pair per role: basic, scan_operator, standard, scan_manager, administrator.
SIM_ROLE_KEYS = ROLE_KEYS
SIM_BASIC_ACCESS_KEY, SIM_BASIC_SECRET_KEY = ROLE_KEYS["basic"]  # Basic, Can View on Location: Dallas only


class FakeTime:
    """A monotonic clock that moves only when something sleeps; remembers every sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class SimClock:
    """A wall clock for `TenableSimulator(clock=...)` that moves only when a test moves `now`."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim_clock() -> SimClock:
    """A fixed simulator clock, so export timestamps and the 30-day window are exact."""
    return SimClock()


@pytest.fixture
def fake_time() -> FakeTime:
    """Inject into `TenableClient(sleep=..., clock=...)` so retries and export polling never wait."""
    return FakeTime()


@pytest.fixture
def tenable_simulator() -> Iterator[SimulatorServer]:
    """A fresh default simulator on a free 127.0.0.1 port (`.url`, `.sim`); stopped after the test."""
    server = TenableSimulator(access_key=SIM_ACCESS_KEY, secret_key=SIM_SECRET_KEY).serve()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tenable_client(tenable_simulator: SimulatorServer, fake_time: FakeTime) -> Iterator[TenableClient]:
    """A client with the valid keys pointed at the simulator; retries and polls sleep on `fake_time`."""
    client = TenableClient(
        SIM_ACCESS_KEY,
        SIM_SECRET_KEY,
        tenable_simulator.url,
        timeout=(2.0, 10.0),
        budget=60.0,
        max_retries=3,
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
    )
    try:
        yield client
    finally:
        client.close()
