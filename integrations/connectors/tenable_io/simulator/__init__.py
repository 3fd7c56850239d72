"""A stateful fake Tenable.io for tests, demos and benchmarks: a plain WSGI app, no Django.

It answers the calls in TENABLE_API.md the way the real service does (bodies, status codes, headers), keeps
scans, runs, assets and export jobs as state, generates deterministic data from a seed, streams `.nessus`
exports host by host, serves the bulk vulnerability and asset exports in chunks, enforces the role of each
key pair, and injects faults on demand (`set_fault`). `serve()` runs it on 127.0.0.1.

Parts: `catalogue` (hashing, plugins), `data` (scans, runs, hosts), `documents` (`.nessus`), `access`
(roles, keys, tags), `findings` and `records` (the vulnerability universe and its JSON), `exports` (bulk
export jobs), `scan_routes`, `faults`, `responses`, `server`, and `app` (the WSGI callable).
"""

from __future__ import annotations

from .access import ROLE_KEYS, ROLE_NAMES, User
from .app import TenableSimulator
from .exports import PreparedExport
from .faults import FAULTS
from .model import ACTIVE_STATUSES, MAX_ACTIVE_EXPORTS, MAX_ACTIVE_SCANS, RecordedRequest
from .server import SimulatorServer

__all__ = [
    "ACTIVE_STATUSES",
    "FAULTS",
    "MAX_ACTIVE_EXPORTS",
    "MAX_ACTIVE_SCANS",
    "ROLE_KEYS",
    "ROLE_NAMES",
    "PreparedExport",
    "RecordedRequest",
    "SimulatorServer",
    "TenableSimulator",
    "User",
]
