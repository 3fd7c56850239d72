"""Fixtures for the API tests: two projects with profiles, findings and runs, and tokens for each persona."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.models import ApiToken
from projects.models import Project, ScannerProfile, ScanRun
from tests.conftest import make_project
from tests.projects.test_findings import make_asset, make_finding, make_plugin, make_profile, make_run

SENTINEL = "SENTINEL-other-project"
ROOT = Path(__file__).resolve().parents[2]
KDT_PYTHONPATH = str(ROOT / "kdt")  # the directory holding this checkout's `kdt` package


@pytest.fixture(scope="session")
def kdt_installed() -> None:
    """Make `import kdt` and `python -m kdt` (with KDT_PYTHONPATH) run this checkout's kdt/, whatever copy the
    virtualenv holds: a non-editable install is a snapshot of some checkout, and testing it would test old code."""
    sys.path.insert(0, KDT_PYTHONPATH)
    for name in [m for m in sys.modules if m == "kdt" or m.startswith("kdt.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("kdt.cli")
    assert spec and spec.origin and spec.origin.startswith(KDT_PYTHONPATH), spec


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    project: Project
    profile: ScannerProfile
    run: ScanRun
    other: Project
    other_profile: ScannerProfile
    other_run: ScanRun


@pytest.fixture
def world(db, member, viewer, outsider) -> World:
    """Payments (member is a member, viewer a viewer) with findings; Secret (outsider's) with a sentinel."""
    project = make_project("Payments", members=[member], viewers=[viewer])
    profile = make_profile(project, "Nightly")
    run = make_run(project, profile, count_by_severity={"4": 1, "3": 2})
    web = make_asset(project, "web-1", "10.0.0.1")
    make_finding(project, web, make_plugin(1001, "OpenSSL critical"), severity=4)
    make_finding(project, web, make_plugin(1002, "TLS weak"), severity=3)
    make_finding(project, web, make_plugin(1003, "Old fixed"), severity=3, state="fixed", port=22)
    make_finding(project, web, make_plugin(1004, "Accepted"), severity=3, triage="false_positive", port=80)

    other = make_project(SENTINEL, members=[outsider])
    other_profile = make_profile(other, f"{SENTINEL} profile")
    other_run = make_run(other, other_profile)
    db_host = make_asset(other, f"{SENTINEL}-host", "10.9.9.9")
    make_finding(other, db_host, make_plugin(2001, f"{SENTINEL} plugin"), severity=4)
    return World(project, profile, run, other, other_profile, other_run)


def bearer(user, name: str = "ci") -> dict[str, str]:
    """Headers authenticating as `user` with a fresh token."""
    _, raw = ApiToken.issue(user, name)
    return {"Authorization": f"Bearer {raw}"}
