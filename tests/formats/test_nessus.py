"""The streaming `.nessus` parser: real fixture files, hostile XML (P1–P6) and normalisation."""

from __future__ import annotations

import io
import os
import socket
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from integrations.connectors.base import ConnectorError
from integrations.formats.nessus import (
    CSV_NOT_SUPPORTED,
    NAME_MAX,
    PLUGIN_NAME_MAX,
    PLUGIN_OUTPUT_MAX,
    TEXT_MAX,
    TRUNCATED_MARKER,
    NessusParseError,
    iter_hosts,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "nessus"

# file: (hosts, ReportItems, distinct (host, plugin, port, protocol), items by severity 0..4) — the README table.
EXPECTED = {
    "nessus_with_cvssv3.nessus": (1, 49, 48, [23, 1, 13, 10, 2]),
    "nessus_many_vuln.xml": (1, 7, 7, [7, 0, 0, 0, 0]),
    "nessus_was_many_vuln.xml": (1, 5, 5, [1, 3, 0, 1, 0]),
    "nessus_was_no_vuln.xml": (1, 0, 0, [0, 0, 0, 0, 0]),
    "issue_6992.nessus": (1, 1, 1, [0, 0, 1, 0, 0]),
}


def fixture_file(name: str) -> Path:
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{FIXTURES} is missing (mandatory under CI)")
        pytest.skip(f"real .nessus fixtures not found at {FIXTURES} (../shared is not beside the checkout)")
    return FIXTURES / name


def doc(*items: str, host: str = "10.0.0.1", properties: str = "") -> bytes:
    body = "".join(
        f'<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="{1000 + n}" '
        f'pluginName="P{n}" pluginFamily="General">{item}</ReportItem>'
        for n, item in enumerate(items)
    )
    return (
        f'<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="r"><ReportHost name="{host}">'
        f"<HostProperties>{properties}</HostProperties>{body}</ReportHost></Report></NessusClientData_v2>"
    ).encode()


def parse(data: bytes) -> list:
    return list(iter_hosts(io.BytesIO(data)))


# -- real files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture_counts(name):
    hosts_expected, items_expected, distinct_expected, by_severity = EXPECTED[name]
    hosts = list(iter_hosts(fixture_file(name)))
    items = [(h, i) for h in hosts for i in h.items]
    severity = Counter(i.severity for _, i in items)
    assert len(hosts) == hosts_expected
    assert len(items) == items_expected
    assert len({(h.name, i.plugin_id, i.port, i.protocol) for h, i in items}) == distinct_expected
    assert [severity[n] for n in range(5)] == by_severity


def test_issue_6992_keeps_tenables_severity_despite_cvss():
    (host,) = iter_hosts(fixture_file("issue_6992.nessus"))
    (item,) = host.items
    assert (item.severity, item.risk_factor, item.cvss3_base_score) == (2, "Medium", 7.5)
    assert item.plugin_id == 142591 and item.patch_date == date(2020, 10, 29)


def test_real_host_properties():
    (host,) = iter_hosts(fixture_file("nessus_with_cvssv3.nessus"))
    assert (host.name, host.ip, host.fqdn, host.os) == (
        "testphp.vulnweb.com",
        "44.228.249.3",
        "testphp.vulnweb.com",
        "Linux Kernel 2.6",
    )
    assert host.start == datetime(2022, 3, 23, 13, 31, 51, tzinfo=UTC)  # from HOST_START_TIMESTAMP
    cvss3 = [i for i in host.items if i.cvss3_base_score is not None]
    assert cvss3 and all(i.cvss3_vector.startswith("CVSS:3") for i in cvss3 if i.cvss3_vector)


def test_web_app_scanning_export_reads_its_own_fields():
    (host,) = iter_hosts(fixture_file("nessus_was_many_vuln.xml"))
    assert host.fqdn == "http://google.com/" and host.ip is None
    assert host.start == datetime(2021, 3, 12, 12, 34, 30, 120310, tzinfo=UTC)
    xss = next(i for i in host.items if i.plugin_id == 98104)
    assert (xss.protocol, xss.cvss_base_score, xss.cvss3_base_score, xss.risk_factor) == (
        "tcp",
        7.5,
        7.1,
        "High",
    )
    assert xss.publication_date == date(2017, 3, 31)


def test_parses_a_binary_stream_and_leaves_it_open():
    stream = io.BytesIO(fixture_file("nessus_many_vuln.xml").read_bytes())
    assert sum(len(h.items) for h in iter_hosts(stream)) == 7
    assert not stream.closed


# -- hostile and broken input ----------------------------------------------------------------------


def test_p1_malformed_xml_reports_line_and_column():
    data = (
        b"<NessusClientData_v2>\n<Report name='r'>\n<ReportHost name='a'>\n</Report>\n</NessusClientData_v2>"
    )
    with pytest.raises(NessusParseError) as caught:
        parse(data)
    error = caught.value
    assert error.message.startswith(
        "The .nessus file is not well-formed XML: Opening and ending tag mismatch"
    )
    assert (error.line, error.column) == (4, 10)
    assert error.message.endswith("(line 4, column 10).") and str(error) == error.message


@pytest.mark.parametrize(
    "page",
    [
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><br></body></html>",
        b"<html><body><form action='/login'></form></body></html>",
        b'<?xml version="1.0"?>\n<NessusClientData><Report/></NessusClientData>',
    ],
)
def test_p1_wrong_root_is_not_a_nessus_v2_export(page):
    with pytest.raises(NessusParseError) as caught:
        parse(page)
    assert caught.value.message.startswith("Not a Nessus v2 export: the root element is <")
    assert caught.value.message.endswith(", expected <NessusClientData_v2>.")


def test_p1_html_root_named():
    with pytest.raises(NessusParseError, match=r"the root element is <html>"):
        parse(b"<!DOCTYPE html><html></html>")


def test_p1_pdf_renamed_to_nessus():
    with pytest.raises(NessusParseError, match="not well-formed"):
        parse(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")


def test_empty_file_is_a_clear_error():
    for data in (b"", b"   \n  "):
        with pytest.raises(NessusParseError, match="empty"):
            parse(data)


def test_truncated_document_fails_after_the_complete_hosts():
    data = doc("<synopsis>s</synopsis>")
    cut = data[: data.index(b"</ReportHost>") + len(b"</ReportHost>")]
    seen = []
    with pytest.raises(NessusParseError, match="not well-formed"):
        for host in iter_hosts(io.BytesIO(cut)):
            seen.append(host)
    assert len(seen) == 1  # callers must stage and commit only at the end


def test_p2_billion_laughs_is_rejected_fast():
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + b"".join(b' <!ENTITY lol%d "%s">\n' % (n, b"&lol%d;" % (n - 1) * 10) for n in range(1, 10)).replace(
            b"&lol0;", b"&lol;"
        )
        + b"]>\n<NessusClientData_v2>&lol9;</NessusClientData_v2>"
    )
    started = time.monotonic()
    with pytest.raises(NessusParseError) as caught:
        parse(bomb)
    assert time.monotonic() - started < 1
    assert caught.value.message == (
        "The file contains a DTD or entity declaration, which is not allowed (line 2, column 1)."
    )


def test_p3_xxe_makes_no_connection_and_leaks_nothing():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    attacks = [
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/">]>',
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        f'<!DOCTYPE NessusClientData_v2 SYSTEM "http://127.0.0.1:{port}/evil.dtd">',
    ]
    try:
        for attack in attacks:
            data = (
                f'<?xml version="1.0"?>\n{attack}\n<NessusClientData_v2><Report name="r"><ReportHost name="h">'
                "<ReportItem pluginID='1' port='0' protocol='tcp' severity='0'><plugin_output>&x;</plugin_output>"
                "</ReportItem></ReportHost></Report></NessusClientData_v2>"
            ).encode()
            with pytest.raises(NessusParseError, match="DTD or entity declaration"):
                parse(data)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_doctype_hidden_behind_a_long_prolog_is_refused():
    data = b"<!--" + b"x" * 70_000 + b'-->\n<!DOCTYPE r [<!ENTITY a "b">]>\n<NessusClientData_v2/>'
    with pytest.raises(NessusParseError, match="no <NessusClientData_v2> root element in the first 64 KB"):
        parse(data)


ENTITY_DOC = (
    '<!DOCTYPE NessusClientData_v2 [<!ENTITY x "EVIL">]>\n<NessusClientData_v2><Report name="r">'
    '<ReportHost name="h"><HostProperties><tag name="host-ip">10.0.0.1</tag></HostProperties>'
    '<ReportItem port="0" protocol="tcp" severity="1" pluginID="1" pluginName="&x;">'
    "<description>a&x;b</description></ReportItem></ReportHost></Report></NessusClientData_v2>"
)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("declaration", ['<?xml version="1.0" encoding="UTF-16"?>\n', ""])
def test_a_dtd_in_utf16_or_utf32_without_a_byte_order_mark_is_refused(encoding, declaration):
    """Issue 12 §6: libxml2 reads these encodings without a BOM; the DTD check must read them too."""
    data = (declaration.replace("UTF-16", encoding.upper()[:6]) + ENTITY_DOC).encode(encoding)
    with pytest.raises(NessusParseError) as caught:
        parse(data)
    assert caught.value.message.startswith(
        "The file contains a DTD or entity declaration, which is not allowed"
    )
    assert (caught.value.line, caught.value.column) == ((2, 1) if declaration else (1, 1))


def test_a_dtd_behind_a_declared_encoding_is_refused():
    # UTF-7 hides "<" as "+ADw-"; libxml2 decodes it, so the check must too.
    data = b'<?xml version="1.0" encoding="UTF-7"?>\n' + ENTITY_DOC.encode("utf-7").replace(b"<", b"+ADw-")
    with pytest.raises(NessusParseError, match="DTD or entity declaration"):
        parse(data)


def test_a_dtd_the_prolog_check_missed_is_still_refused_while_parsing(monkeypatch):
    # Defence in depth: whatever the encoding, a DOCTYPE seen by the parser stops the file before any host.
    monkeypatch.setattr("integrations.formats.nessus.check_head", lambda head: None)
    for data in (ENTITY_DOC.encode(), b'<!DOCTYPE NessusClientData_v2 SYSTEM "x.dtd"><NessusClientData_v2/>'):
        with pytest.raises(NessusParseError) as caught:
            parse(data)
        assert caught.value.message == "The file contains a DTD or entity declaration, which is not allowed."


def test_a_utf16_export_without_a_dtd_still_parses():
    data = doc("<synopsis>s</synopsis>").decode().replace("?>", 'encoding="UTF-16"?>')
    for encoding in ("utf-16-le", "utf-16-be", "utf-16"):
        (host,) = parse(data.encode(encoding))
        assert host.name == "10.0.0.1" and host.items[0].synopsis == "s"


@pytest.mark.parametrize(
    "head",
    [
        b"Plugin ID,CVE,CVSS v2.0 Base Score,Risk,Host,Protocol,Port,Name,Synopsis,Description,Solution\n"
        b"19506,,,None,10.0.0.1,tcp,0,Nessus Scan Information,,,\n",
        b'\xef\xbb\xbf"Plugin ID","CVE","CVSS v2.0 Base Score","Risk","Host"\r\n"19506","","","None","10.0.0.1"\r\n',
    ],
)
def test_a_csv_export_is_named_and_the_way_to_a_nessus_export_given(head):
    with pytest.raises(NessusParseError) as caught:
        parse(head)
    assert caught.value.message == CSV_NOT_SUPPORTED
    assert (
        "CSV exports are not supported" in CSV_NOT_SUPPORTED
        and "Export › Nessus (.nessus)" in CSV_NOT_SUPPORTED
    )


@pytest.mark.parametrize(("bad", "column"), [(b"\xff\xfe", 6), (b"\x01", 6)])
def test_p5_invalid_bytes_and_control_characters(bad, column):
    data = doc("<plugin_output>\nline two\nabcde" + "X" + "</plugin_output>").replace(b"X", bad)
    with pytest.raises(NessusParseError) as caught:
        parse(data)
    assert caught.value.message.startswith("The .nessus file is not well-formed XML: ")
    assert (caught.value.line, caught.value.column) == (4, column)


def test_errors_from_the_stream_pass_through_unchanged():
    class Cut:
        def __init__(self):
            self.calls = 0

        def read(self, size=-1):
            self.calls += 1
            if self.calls == 1:
                return doc("<synopsis>s</synopsis>")[:200]
            raise ConnectorError("cut", kind="truncated", permanent=False)

    with pytest.raises(ConnectorError, match="cut"):
        list(iter_hosts(Cut()))


# -- normalisation ---------------------------------------------------------------------------------


def test_risk_factor_is_normalised():
    values = ["NONE", "info", "MEDIUM", "high", "Critical", "bogus", None]
    items = [f"<risk_factor>{v}</risk_factor>" if v else "" for v in values]
    (host,) = parse(doc(*items))
    assert [i.risk_factor for i in host.items] == [
        "None",
        "None",
        "Medium",
        "High",
        "Critical",
        "Medium",
        "Medium",
    ]


def test_item_fields():
    item = (
        "<synopsis> S </synopsis><description>D</description><solution>Fix</solution>"
        "<plugin_output>\n  out &lt;x&gt;\n</plugin_output><cvss_base_score>6.4</cvss_base_score>"
        "<cvss_vector>CVSS2#AV:N</cvss_vector><cvss3_base_score>bad</cvss3_base_score><cve>CVE-2021-0001</cve>"
        "<cve>CVE-2021-0002</cve><cwe>295</cwe><see_also>https://a\n\n  https://b  \n</see_also>"
        "<vpr_score>5.1</vpr_score><epss_score>0.0123</epss_score><plugin_publication_date>2010/12/15"
        "</plugin_publication_date><patch_publication_date>nonsense</patch_publication_date>"
        "<exploit_available>true</exploit_available>"
    )
    (host,) = parse(doc(item).replace(b'protocol="tcp"', b'protocol="TCP"'))
    (i,) = host.items
    assert (i.plugin_id, i.plugin_name, i.plugin_family, i.severity, i.port, i.protocol, i.service) == (
        1000,
        "P0",
        "General",
        2,
        443,
        "tcp",
        "www",
    )
    assert (i.synopsis, i.description, i.solution, i.plugin_output) == ("S", "D", "Fix", "  out <x>")
    assert (i.cvss_base_score, i.cvss_vector, i.cvss3_base_score) == (6.4, "CVSS2#AV:N", None)
    assert (i.cves, i.cwes, i.see_also) == (
        ["CVE-2021-0001", "CVE-2021-0002"],
        ["295"],
        ["https://a", "https://b"],
    )
    assert (i.vpr_score, i.epss_score, i.publication_date, i.patch_date, i.exploit_available) == (
        5.1,
        0.0123,
        date(2010, 12, 15),
        None,
        True,
    )


def test_cwe_from_xref_and_cwe_elements_is_stored_once_in_one_form():
    # Tenable.io exports give CWE as <xref>CWE:79</xref>; older ones as <cwe>79</cwe>; both mean CWE-79.
    item = (
        "<cwe>79</cwe><xref>CWE:79</xref><xref>OWASP:2017-A7</xref><xref>cwe:352</xref><cwe>CWE-20</cwe>"
        "<xref>WASC:Cross-Site Scripting</xref><xref>CWE:0020</xref><cwe>NVD-CWE-Other</cwe>"
    )
    (host,) = parse(doc(item))
    assert host.items[0].cwes == ["79", "352", "20", "NVD-CWE-Other"]


def test_repeated_see_also_elements_are_all_kept():
    item = (
        "<see_also>https://a</see_also><see_also>https://b\nhttps://c</see_also><synopsis>s</synopsis>"
        "<see_also>https://d</see_also><see_also>https://a</see_also>"
    )
    (host,) = parse(doc(item))
    assert host.items[0].see_also == ["https://a", "https://b", "https://c", "https://d"]


def test_real_tenable_export_keeps_every_see_also_and_its_xref_cwes():
    (host,) = iter_hosts(fixture_file("nessus_was_many_vuln.xml"))
    by_plugin = {i.plugin_id: i for i in host.items}
    xss = next(i for i in host.items if "projects.webappsec.org" in " ".join(i.see_also))
    assert len(xss.see_also) == 2 and xss.cwes == ["79"]
    assert any(len(i.see_also) == 5 and i.cwes == ["693"] for i in by_plugin.values())
    (host,) = iter_hosts(fixture_file("nessus_with_cvssv3.nessus"))  # <cwe>20</cwe> and <xref>CWE:20</xref>
    assert all(len(set(i.cwes)) == len(i.cwes) for i in host.items)
    assert sum("20" in i.cwes for i in host.items) == 8


def test_host_properties_and_fallbacks():
    properties = (
        '<tag name="host-ip"> 10.0.0.9 </tag><tag name="hostname">box</tag><tag name="os">linux</tag>'
        '<tag name="tenable-uuid">u-1</tag><tag name="HOST_START">Thu Jun 10 11:24:12 2021</tag>'
        '<tag name="HOST_END">not a date</tag><tag name="mac-address">00:16:3e:00:00:01</tag>'
    )
    (host,) = parse(doc(properties=properties))
    assert (host.ip, host.fqdn, host.netbios, host.os, host.host_uuid, host.mac) == (
        "10.0.0.9",
        "box",
        None,
        "linux",
        "u-1",
        "00:16:3e:00:00:01",
    )
    assert host.start == datetime(2021, 6, 10, 11, 24, 12, tzinfo=UTC) and host.end is None


def test_p6_field_caps():
    huge = "A" * (PLUGIN_OUTPUT_MAX + 500_000)
    item = f"<plugin_output>{huge}</plugin_output><description>{'d' * (TEXT_MAX * 2)}</description>"
    data = doc(item, host="h" * 10_000).replace(b'pluginName="P0"', b'pluginName="' + b"n" * 5_000 + b'"')
    (host,) = parse(data)
    (i,) = host.items
    assert len(i.plugin_output) == PLUGIN_OUTPUT_MAX and i.plugin_output.endswith(TRUNCATED_MARKER)
    assert len(i.description) == TEXT_MAX and i.description.endswith(TRUNCATED_MARKER)
    assert len(i.plugin_name) == PLUGIN_NAME_MAX and len(host.name) == NAME_MAX


def test_p6_a_text_field_over_libxml2s_10_mb_limit_is_refused_clearly():
    with pytest.raises(NessusParseError, match="text field over 10 MB"):
        parse(doc(f"<plugin_output>{'x' * 10_500_000}</plugin_output>"))


def test_on_report_and_incremental_yield():
    hosts = "".join(
        f'<ReportHost name="10.0.{n // 250}.{n % 250}"><HostProperties/>'
        f'<ReportItem port="0" protocol="tcp" severity="0" pluginID="19506"><plugin_output>{"x" * 500}'
        "</plugin_output></ReportItem></ReportHost>"
        for n in range(2000)
    )
    data = f'<NessusClientData_v2><Report name="Web tier">{hosts}</Report></NessusClientData_v2>'.encode()
    stream = io.BytesIO(data)
    names = []
    first = next(iter_hosts(stream, on_report=names.append))
    assert names == ["Web tier"] and first.name == "10.0.0.0"
    assert stream.tell() < len(data) / 4  # yielded long before the end was read
