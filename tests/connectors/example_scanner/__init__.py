"""A second connector that exists only in tests: it proves the contract is the only door into projects.

It speaks `integrations.connectors.base` and reads its scans from `scans.json` beside it; a fixture puts it in
the registry for one test (`monkeypatch.setitem(CONNECTORS, ...)`), and nothing in `projects/` knows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from integrations.connectors.base import (
    ConnectionInfo,
    Connector,
    ConnectorError,
    CredentialField,
    Folder,
    HistoryEntry,
    ScanDetails,
    ScanSummary,
    SourceList,
)
from integrations.formats.records import FindingRecord, HostRecord

DATA = Path(__file__).with_name("scans.json")
TOKEN = "example-token-1234"


class ExampleScanConnector(Connector):
    """Example DAST: one API token, scans and their findings from a JSON file."""

    slug = "examplescan"
    label = "Example DAST"
    category = "dast"
    description = "A scanner that exists only in the test suite."
    default_api_url = "https://scanner.example.test"
    api_domain = "example.test"
    api_url_help = "The Example DAST API address."
    token_help = "Create an API token under Example DAST › Settings › Tokens."
    no_scans_resolution = "Run a scan in Example DAST first."
    credential_fields = (
        CredentialField("access_key", "API Token", secret=True, help_text="Example DAST token."),
    )

    def __init__(self, access_key: str, api_url: str, **options: Any) -> None:
        self.access_key, self.api_url, self.options = access_key, api_url, options
        self.data = json.loads(DATA.read_text())
        self.closed = False

    def _check_key(self) -> None:
        if self.access_key != TOKEN:
            raise ConnectorError(
                "Example DAST refused the API token.", kind="auth", permanent=True, status=401
            )

    def _scan(self, source_id: int | str) -> dict:
        self._check_key()
        scan = next((s for s in self.data["scans"] if str(s["id"]) == str(source_id)), None)
        if scan is None:
            raise ConnectorError("No such Example DAST scan.", kind="not_found", permanent=True, status=404)
        return scan

    def test_connection(self) -> ConnectionInfo:
        self._check_key()
        return ConnectionInfo(username="ci-bot", container=None, scan_count=len(self.data["scans"]))

    def list_sources(self) -> SourceList:
        self._check_key()
        folder = Folder(id=1, name="Web apps", type="main")
        scans = [
            ScanSummary(
                id=s["id"],
                schedule_uuid=None,
                uuid=s["history"][0]["uuid"],
                name=s["name"],
                status=s["status"],
                type=None,
                folder_id=1,
                owner="ci-bot",
                enabled=True,
                control=True,
                last_modification_date=s["history"][0]["finished"],
                rrules=None,
                starttime=None,
                timezone=None,
                policy_id=None,
            )
            for s in self.data["scans"]
        ]
        return SourceList(folders=[folder], scans=scans)

    def describe_source(self, source_id: int | str) -> ScanDetails:
        scan = self._scan(source_id)
        history = [
            HistoryEntry(
                history_id=h["history_id"],
                uuid=h["uuid"],
                status=h["status"],
                creation_date=h["finished"],
                last_modification_date=h["finished"],
                is_archived=False,
            )
            for h in scan["history"]
        ]
        return ScanDetails(
            id=scan["id"], name=scan["name"], status=scan["status"], policy="Example DAST baseline",
            scanner="example-cloud", targets=scan["targets"], tags=[], agent_groups=[], schedule=None,
            host_count=len(scan["hosts"]), scan_type="webapp", history=history, schedule_uuid=None,
            last_run_uuid=history[0].uuid, folder_id=1,
        )  # fmt: skip

    def launch(self, source_id: int | str) -> str:
        return self._scan(source_id)["history"][0]["uuid"]

    def latest_status(self, source_id: int | str) -> str:
        return self._scan(source_id)["status"]

    @contextmanager
    def open_findings(
        self, source_id: int | str, history_id: int | None = None, *, deadline: float = 1800
    ) -> Iterator[Iterator[HostRecord]]:
        scan = self._scan(source_id)
        yield (self._host(host) for host in scan["hosts"])

    @staticmethod
    def _host(host: dict) -> HostRecord:
        items = [
            FindingRecord(
                plugin_id=f["id"],
                plugin_name=f["name"],
                plugin_family="Web Servers",
                severity=f["severity"],
                port=f["port"],
                protocol="tcp",
                service="www",
                synopsis=f["name"],
                description=None,
                solution="Upgrade.",
                plugin_output=f["evidence"],
                risk_factor="High",
                cvss_base_score=None,
                cvss_vector=None,
                cvss3_base_score=None,
                cvss3_vector=None,
                cves=f.get("cves", []),
            )
            for f in host["findings"]
        ]
        return HostRecord(
            name=host["name"], ip=host["ip"], fqdn=host["name"], netbios=None, os=None, mac=None,
            host_uuid=None, start=None, end=None, items=items,
        )  # fmt: skip

    def close(self) -> None:
        self.closed = True
