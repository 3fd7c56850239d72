"""Tenable.io VM as a connector: the declaration the UI renders, and our interface over the client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from ..base import Connector, CredentialField


class TenableIOConnector(Connector):
    """Imports findings from Tenable.io (Tenable Vulnerability Management) by binding to existing scans."""

    slug = "tenableiovm"
    label = "Tenable.io VM"
    category = "infra"
    description = (
        "Tenable.io VM (Vulnerability Management) is a cloud-based vulnerability management platform. "
        "Bind project scanners to existing Tenable.io scans and import their findings."
    )
    default_api_url = "https://cloud.tenable.com"
    token_instructions = (
        "https://docs.tenable.com/vulnerability-management/Content/Settings/my-account/GenerateAPIKey.htm"
    )
    credential_fields = (
        # Labels are the Invicti seed's; the help also names NopSec's words ("Access Token", "Secret Token").
        CredentialField(
            "access_key",
            "User Key",
            secret=True,
            help_text="Tenable.io API Access Key (user key; some guides call it the Access Token).",
        ),
        CredentialField(
            "secret_key",
            "Secret Key",
            secret=True,
            help_text="Tenable.io API Secret Key paired with the User Key (also called the Secret Token).",
        ),
    )

    def __init__(self, access_key: str, secret_key: str, api_url: str, **client_options):
        """`client_options` go to TenableClient: timeout, budget, max_retries, sleep, clock."""
        from .client import TenableClient

        self.client = TenableClient(access_key, secret_key, api_url, **client_options)

    def __repr__(self) -> str:
        return f"<TenableIOConnector {self.client.api_url}>"

    def test_connection(self):
        """Who the keys belong to and how many scans they can see; raises TenableError with the reason."""
        return self.client.test_connection()

    def list_scans(self):
        """The scans (and folders) the keys can see, for the Bind to dropdown."""
        return self.client.list_scans()

    def describe_scan(self, scan_id):
        """Targets, tags, agents, policy, scanner, schedule, history and host count of one scan."""
        return self.client.describe_scan(scan_id)

    def start_scan(self, scan_id) -> str:
        """Launch the Tenable scan; returns the new run's uuid."""
        return self.client.launch(scan_id)

    def latest_status(self, scan_id) -> str:
        return self.client.latest_status(scan_id)

    @contextmanager
    def open_run(self, scan_id, history_id: int | None = None, **kwargs) -> Iterator[IO[bytes]]:
        """The run's `.nessus` export as a binary stream, never held in memory."""
        with self.client.export_nessus(scan_id, history_id, **kwargs) as stream:
            yield stream
