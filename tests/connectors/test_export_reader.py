"""The bulk export chunk reader (`integrations.formats.tenable_export`): schema drift, caps, bad chunks.

Shapes follow TENABLE_API.md › Bulk exports; the connector tests (test_exports.py) cover what the simulator
serves. Here: what it does not — odd types, missing parts, huge fields, chunks that are not JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from integrations.connectors.base import ConnectorError, VulnExportRequest
from integrations.formats.records import PLUGIN_OUTPUT_MAX, TRUNCATED_MARKER, FormatError
from integrations.formats.tenable_export import read_asset_chunk, read_vuln_chunk
from tests.connectors.example_scanner import TOKEN, ExampleScanConnector

ASSET = {"uuid": "a-1", "ipv4": "10.0.0.5", "hostname": "web01", "operating_system": ["Linux", "Debian"]}
PLUGIN = {
    "id": 19506,
    "name": "Nessus Scan Information",
    "family": "Settings",
    "cve": ["CVE-2021-0001"],
    "xrefs": [{"type": "CWE", "id": "CWE-79"}, {"type": "OWASP", "id": "2017-A7"}, {"type": "cwe", "id": 89}],
    "see_also": "https://a.example\nhttps://b.example\n",
    "cvss3_vector": {"raw": "CVSS:3.0/AV:N"},
    "cvss_base_score": "5.0",
    "risk_factor": "MEDIUM",
    "publication_date": "2010-12-15T00:00:00Z",
}


def finding(**overrides) -> dict:
    record = {
        "asset": ASSET,
        "plugin": PLUGIN,
        "port": {"port": 443, "protocol": "TCP", "service": "www"},
        "severity": "medium",
        "severity_id": 2,
        "severity_default_id": 3,
        "severity_modification_type": "RECASTED",
        "state": "OPEN",
        "first_found": "2025-01-02T03:04:05.000Z",
        "last_found": "2025-01-03T03:04:05Z",
        "finding_id": "f-1",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def chunk(*records) -> bytes:
    return json.dumps(list(records)).encode()


def test_a_finding_is_normalised():
    (f,) = read_vuln_chunk(chunk(finding())).findings
    assert (f.plugin_id, f.plugin_name, f.plugin_family, f.port, f.protocol, f.service) == (
        19506,
        "Nessus Scan Information",
        "Settings",
        443,
        "tcp",
        "www",
    )
    assert (f.severity, f.severity_default, f.severity_modification, f.state) == (2, 3, "RECASTED", "OPEN")
    assert f.first_found == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) and f.last_fixed is None
    assert (f.cves, f.cwes, f.see_also) == (
        ["CVE-2021-0001"],
        ["79", "89"],
        ["https://a.example", "https://b.example"],
    )
    assert (f.cvss_base_score, f.cvss3_vector, f.risk_factor) == (5.0, "CVSS:3.0/AV:N", "Medium")
    assert f.publication_date.isoformat() == "2010-12-15" and f.plugin_output is None
    assert (f.host.name, f.host.ip, f.host.fqdn, f.host.os, f.host.host_uuid) == (
        "web01",
        "10.0.0.5",
        "web01",
        "Linux\nDebian",
        "a-1",
    )
    assert f.key == "f-1"


def test_missing_parts_get_the_nessus_defaults():
    bare = {"asset": {"uuid": "a-2"}, "plugin": {"id": 10}, "state": "fixed", "severity": "critical"}
    (f,) = read_vuln_chunk(chunk(bare)).findings
    assert (f.port, f.protocol, f.service, f.severity, f.severity_default) == (0, "tcp", "", 4, 4)
    assert (f.state, f.severity_modification, f.risk_factor, f.finding_id) == (
        "FIXED",
        "NONE",
        "Critical",
        None,
    )
    assert f.key == "a-2:10:0:tcp" and f.host.name == "a-2"


def test_naive_dates_are_read_as_utc_and_epoch_indexed_too():
    (f,) = read_vuln_chunk(chunk(finding(last_fixed="2025-02-01T00:00:00", indexed=1735790000))).findings
    assert f.last_fixed == datetime(2025, 2, 1, tzinfo=UTC)
    assert f.indexed == datetime.fromtimestamp(1735790000, UTC)


def test_fields_are_capped_like_nessus_items():
    huge = "x" * (PLUGIN_OUTPUT_MAX + 10)
    plugin = {
        **PLUGIN,
        "name": "n" * 900,
        "synopsis": "s" * 200_000,
        "cve": [f"CVE-{n}" for n in range(2000)],
    }
    (f,) = read_vuln_chunk(chunk(finding(output=huge, plugin=plugin))).findings
    assert len(f.plugin_output) == PLUGIN_OUTPUT_MAX and f.plugin_output.endswith(TRUNCATED_MARKER)
    assert len(f.plugin_name) == 500 and f.synopsis.endswith(TRUNCATED_MARKER) and len(f.cves) == 1000


def test_findings_of_one_asset_share_one_host_and_plugins_are_read_once():
    records = [finding(finding_id=f"f-{n}", port={"port": n, "protocol": "UDP"}) for n in range(3)]
    records.append(finding(finding_id="other", asset={**ASSET, "uuid": "a-9"}))
    findings = read_vuln_chunk(chunk(*records)).findings
    assert findings[0].host is findings[2].host and findings[3].host is not findings[0].host
    assert findings[0].cves is findings[3].cves  # the same plugin object: decoded once
    assert [f.protocol for f in findings] == ["udp", "udp", "udp", "tcp"]


def test_records_that_do_not_fit_are_set_aside_with_the_reason():
    records = [
        finding(finding_id="good-1"),
        finding(finding_id="bad-date", first_found="yesterday"),
        finding(finding_id="bad-state", state="CLOSED"),
        finding(finding_id="bad-asset", asset=["not", "an", "object"]),
        finding(finding_id="good-2"),
    ]
    read = read_vuln_chunk(chunk(*records))
    assert [f.finding_id for f in read.findings] == ["good-1", "good-2"]
    assert [r.index for r in read.rejected] == [1, 2, 3]
    assert "first_found" in read.rejected[0].reason and "CLOSED" in read.rejected[1].reason
    assert "asset" in read.rejected[2].reason or "object" in read.rejected[2].reason


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "The chunk is empty."),
        (b"   ", "The chunk is empty."),
        (b'[{"asset": {"uuid": "a"}, "plugin": {"id": 1}', "cut short"),
        (b'{{"asset": 1}]', "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'{"findings": []}', "JSON but not an array"),
        (b'[{"asset": {"uuid": "a"}}, tru]', "not valid JSON"),
    ],
)
def test_a_chunk_that_is_not_a_json_array_is_an_error_never_empty(data, says):
    with pytest.raises(FormatError) as caught:
        read_vuln_chunk(data)
    assert says in caught.value.message


def test_an_empty_array_is_an_empty_chunk():
    read = read_vuln_chunk(b"[]")
    assert (read.findings, read.rejected) == ([], [])


def test_asset_records_v1_and_v2():
    v1 = {
        "id": "a-1",
        "ipv4s": ["10.0.0.1"],
        "fqdns": ["a.example"],
        "deleted_at": "2025-03-01T00:00:00.000Z",
    }
    v2 = {"uuid": "a-2", "hostnames": "host-2", "terminated_at": "2025-03-02T00:00:00Z", "updated_at": None}
    read = read_asset_chunk(chunk(v1, v2, {"ipv4s": ["10.0.0.9"]}, {"id": "a-4", "created_at": 5}))
    first, second = read.assets
    assert (first.uuid, first.ipv4s, first.fqdns, first.gone) == (
        "a-1",
        ["10.0.0.1"],
        ["a.example"],
        datetime(2025, 3, 1, tzinfo=UTC),
    )
    assert (second.uuid, second.hostnames, second.deleted_at, second.gone) == (
        "a-2",
        ["host-2"],
        None,
        datetime(2025, 3, 2, tzinfo=UTC),
    )
    assert (read.rejected[0].index, read.rejected[0].reason) == (2, "The asset has no id.")
    assert read.rejected[1].index == 3 and "created_at" in read.rejected[1].reason
    with pytest.raises(FormatError):
        read_asset_chunk(b'[{"id": "a-1"')


def test_a_connector_without_exports_says_so():
    connector = ExampleScanConnector(access_key=TOKEN, api_url="https://scanner.example.test")
    for call in (
        lambda: connector.start_vuln_export(VulnExportRequest(since=0)),
        lambda: connector.vuln_export_status("x"),
        lambda: connector.vuln_export_chunk("x", 1),
        lambda: connector.asset_export_chunk("x", 1),
    ):
        with pytest.raises(ConnectorError) as caught:
            call()
        assert (caught.value.kind, caught.value.permanent) == ("unsupported", True)
        assert caught.value.message.startswith("Example DAST does not support bulk")
    assert connector.list_sources().scopes == []
