"""Tenable.io VM as a connector: the declaration the UI renders, and the contract over the client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...formats import nessus
from ...formats.records import HostRecord
from ..base import (
    AssetChunk,
    AssetExportRequest,
    ConnectionInfo,
    Connector,
    CredentialField,
    ExportJob,
    ExportStatus,
    ScanDetails,
    SourceList,
    VulnChunk,
    VulnExportRequest,
)
from .client import TenableClient


class TenableIOConnector(Connector):
    """Imports findings from Tenable.io (Tenable Vulnerability Management): from existing scans, or from bulk
    vulnerability exports of everything the key may view (the way in for a Basic, Can View key)."""

    slug = "tenableiovm"
    label = "Tenable.io VM"
    category = "infra"
    description = (
        "Tenable.io VM (Vulnerability Management) is a cloud-based vulnerability management platform. "
        "Bind project scanners to existing Tenable.io scans and import their findings."
    )
    default_api_url = "https://cloud.tenable.com"
    api_domain = "tenable.com"
    api_url_help = (
        "Default https://cloud.tenable.com. FedRAMP and other regions use their own tenable.com "
        "URL (e.g. https://fedcloud.tenable.com). Changing it means entering both keys again."
    )
    token_instructions = (
        "https://docs.tenable.com/vulnerability-management/Content/Settings/my-account/GenerateAPIKey.htm"
    )
    token_help = (
        "In Tenable.io: Settings › My Account › API Keys › Generate (or, for a dedicated user, Settings › Users › "
        "the user › API Keys). Copy both keys at once — the Secret Key is shown only once."
    )
    no_scans_resolution = "Ensure at least one completed scan exists in your Tenable.io account and the API key has access to it."
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

    def __init__(self, access_key: str, secret_key: str, api_url: str, **client_options: Any) -> None:
        """`client_options` go to TenableClient: timeout, budget, max_retries, max_download_bytes,
        max_chunk_downloads, sleep, clock."""
        self.client = TenableClient(access_key, secret_key, api_url, **client_options)

    def __repr__(self) -> str:
        return f"<TenableIOConnector {self.client.api_url}>"

    def test_connection(self) -> ConnectionInfo:
        """Who the keys belong to, how many scans they see, their role, what they may view and the checklist of
        what they can do; raises TenableError only when the keys cannot list scans."""
        return self.client.test_connection()

    def list_sources(self) -> SourceList:
        """The scans (and folders) the keys can see, and the export scopes (all assets, each visible tag)."""
        listing = self.client.list_scans()
        return SourceList(listing.folders, listing.scans, self.client.list_export_scopes())

    def describe_source(self, source_id: int | str) -> ScanDetails:
        """Targets, tags, agents, policy, scanner, schedule, history and host count of one scan; agent groups
        this key may not read are flagged (`agent_groups_visible`), not an error."""
        return self.client.describe_scan(source_id)

    def launch(self, source_id: int | str) -> str:
        """Launch the Tenable scan; returns the new run's uuid."""
        return self.client.launch(source_id)

    def latest_status(self, source_id: int | str) -> str:
        """`GET /scans/{id}/latest-status`: the cheap poll while a launched scan runs."""
        return self.client.latest_status(source_id)

    @contextmanager
    def open_findings(
        self, source_id: int | str, history_id: int | None = None, *, deadline: float = 1800
    ) -> Iterator[Iterator[HostRecord]]:
        """The run's `.nessus` export, streamed through the `.nessus` reader: hosts one at a time."""
        with self.client.export_nessus(source_id, history_id, deadline=deadline) as stream:
            yield nessus.iter_hosts(stream)

    # -- bulk exports (the contract's docstrings say what each error kind means) ------------------------

    def start_vuln_export(self, request: VulnExportRequest) -> ExportJob:
        """`POST /vulns/export`; a 409 with `active_job_id` adopts the running job."""
        return self.client.start_vuln_export(request)

    def vuln_export_status(self, job_uuid: str) -> ExportStatus:
        """`GET /vulns/export/{uuid}/status`."""
        return self.client.vuln_export_status(job_uuid)

    def vuln_export_chunk(self, job_uuid: str, chunk_id: int) -> VulnChunk:
        """One chunk, downloaded and decoded with msgspec into `ExportFinding`s."""
        return self.client.vuln_export_chunk(job_uuid, chunk_id)

    def cancel_vuln_export(self, job_uuid: str) -> str:
        """`POST /vulns/export/{uuid}/cancel`."""
        return self.client.cancel_vuln_export(job_uuid)

    def start_asset_export(self, request: AssetExportRequest) -> ExportJob:
        """`POST /assets/v2/export` (since), or v1 (`updated_at`) where v2 is refused."""
        return self.client.start_asset_export(request)

    def asset_export_status(self, job_uuid: str) -> ExportStatus:
        """`GET /assets/export/{uuid}/status`."""
        return self.client.asset_export_status(job_uuid)

    def asset_export_chunk(self, job_uuid: str, chunk_id: int) -> AssetChunk:
        """One asset chunk, downloaded and decoded into `ExportAsset`s."""
        return self.client.asset_export_chunk(job_uuid, chunk_id)

    def cancel_asset_export(self, job_uuid: str) -> str:
        """`POST /assets/export/{uuid}/cancel`."""
        return self.client.cancel_asset_export(job_uuid)

    def close(self) -> None:
        self.client.close()
