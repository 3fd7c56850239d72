"""Fixtures for Jira tickets: the Jira simulator over real HTTP, a Jira connection to it, a project's mapping,
and uploads that import small `.nessus` files as runs."""

from __future__ import annotations

from html import escape

import pytest

from integrations.models import Integration
from projects.choices import RunStatus
from projects.models import Project, ScanRun
from projects.runs.services import import_upload
from tests.jira_fixtures import *  # noqa: F403
from tests.jira_fixtures import JIRA_API_TOKEN, JIRA_EMAIL
from tests.tenable_fixtures import FakeTime
from tickets import services
from tickets.models import TicketMapping, TicketSync

WEB1 = {"name": "web-1", "uuid": "aaaaaaaa-0000-4000-8000-000000000001", "ip": "10.0.0.11"}
WEB2 = {"name": "web-2", "uuid": "bbbbbbbb-0000-4000-8000-000000000002", "ip": "10.0.0.12"}
DB1 = {"name": "db-1", "uuid": "cccccccc-0000-4000-8000-000000000003", "ip": "10.0.0.21"}
# (plugin id, port, protocol, severity, plugin name)
APACHE = (201198, 443, "tcp", 3, "Apache 2.4.x < 2.4.62 Multiple Vulnerabilities")
TLS = (19506, 443, "tcp", 4, "TLS Version 1.0 Protocol Detection")
PING = (10180, 0, "tcp", 0, "Ping the remote host")
SEC_TASK = "10001"  # the simulator's SEC project: Task 10001, Bug 10002, Sub-task 10003; OPS: Task 10004


def nessus(*hosts: dict) -> str:
    """A small `.nessus` v2 file: each host has name, uuid, ip and items (plugin, port, protocol, severity, name)."""
    blocks = []
    for host in hosts:
        props = "".join(
            f'<tag name="{k}">{escape(v)}</tag>'
            for k, v in (("host-uuid", host.get("uuid")), ("host-ip", host.get("ip"))) if v
        )  # fmt: skip
        items = "".join(
            f'<ReportItem port="{port}" svc_name="www" protocol="{proto}" severity="{sev}" pluginID="{plugin}" '
            f'pluginName="{escape(name)}" pluginFamily="Web Servers"><synopsis>The remote {escape(name)}.</synopsis>'
            f"<description>{escape(name)} is affected.\n\nSee the advisory.</description>"
            "<solution>Upgrade.</solution><see_also>https://httpd.apache.org/security/</see_also>"
            f"<cve>CVE-2024-{plugin}</cve><plugin_output>output of {plugin} on {escape(host['name'])}</plugin_output>"
            "</ReportItem>"
            for plugin, port, proto, sev, name in host.get("items", [])
        )
        blocks.append(
            f'<ReportHost name="{escape(host["name"])}"><HostProperties>{props}</HostProperties>{items}</ReportHost>'
        )
    return f'<?xml version="1.0" ?><NessusClientData_v2><Report name="t">{"".join(blocks)}</Report></NessusClientData_v2>'


@pytest.fixture(autouse=True)
def _jira_host_allowed(settings):
    """The simulator's loopback address, listed as an operator would list a proxy."""
    settings.JIRA_SITE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def fake_clock(monkeypatch):
    """Retries inside the Jira door sleep on a fake clock (Retry-After is recorded, not waited)."""
    clock = FakeTime()
    monkeypatch.setattr(
        services,
        "connector_options",
        lambda: {"budget": 60.0, "sleep": clock.sleep, "clock": clock.monotonic},
    )
    return clock


def make_jira(url: str, login: str = JIRA_EMAIL, token: str = JIRA_API_TOKEN, **extra) -> Integration:
    values = {"connector": "jiracloud", "name": "Jira Cloud", "is_active": True, "api_url": url, **extra}
    return Integration.objects.create(login=login, access_key=token, access_key_hint=token[-4:], **values)


def make_mapping(project: Project, integration: Integration, **extra) -> TicketMapping:
    values = {"jira_project": "SEC", "issue_type_id": SEC_TASK, "issue_type_name": "Task", **extra}
    return TicketMapping.objects.create(project=project, integration=integration, **values)


@pytest.fixture
def project(db):
    return Project.objects.create(name="Payments")


def import_file(project: Project, path, *hosts: dict) -> ScanRun:
    """Import a synthetic `.nessus` file into `project` as an upload (the sync row is written in its transaction)."""
    path.write_text(nessus(*hosts))
    run = ScanRun.objects.create(project=project, trigger="upload", source_name=path.name)
    import_upload(run, str(path))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


@pytest.fixture
def upload(project, tmp_path):
    """`upload(*hosts)`: `import_file` into the test's project, a new file each time."""
    counter = iter(range(1, 1000))

    def _upload(*hosts: dict) -> ScanRun:
        return import_file(project, tmp_path / f"scan-{next(counter)}.nessus", *hosts)

    return _upload


def sync_of(run: ScanRun) -> TicketSync:
    return TicketSync.objects.get(run=run)


def process(sync: TicketSync) -> TicketSync:
    """Run the sync as the worker would (claim, lease, reconcile, record) and return its row."""
    TicketSync.objects.filter(pk=sync.pk, status="pending").update(next_attempt_at=sync.created_at)
    services.process(sync.pk)
    sync.refresh_from_db()
    return sync
