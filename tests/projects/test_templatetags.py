"""Template filters for first-time readers (issue 12 §8, §9): Tenable's hard-wrapped text reflowed into
paragraphs (always escaped), CVSS vectors that wrap only at slashes, "just now", and tab titles with a separator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils.safestring import mark_safe

from accounts.templatetags.ago import ago
from accounts.templatetags.page_title import page_title
from projects.templatetags.tenable_text import cvss_vector, reflow

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# As Tenable sends it: hard-wrapped at ~70 columns, lists indented with hanging continuation lines.
TENABLE_DESCRIPTION = (
    "The X.509 certificate chain for this service is not signed by a\n"
    "recognized certificate authority.  If the remote host is a public host\n"
    "in production, this nullifies the use of SSL.\n"
    "\n"
    "  - An information disclosure vulnerability exists in the\n"
    "    handling of renegotiation. (CVE-2023-0001)\n"
    "\n"
    "  - A denial of service flaw exists in the record\n"
    "    layer. (CVE-2023-0002)\n"
    "\n"
    "  Path              : /usr/lib/ssl\n"
    "  Installed version : 1.0.2\n"
    "\n"
    "Note that Nessus has not tested for this issue but has instead relied\n"
    "only on the application's self-reported version number."
)


def test_reflow_joins_hard_wrapped_lines_into_paragraphs():
    html = reflow(TENABLE_DESCRIPTION)
    assert "<br" not in html
    assert html.startswith(
        "<p>The X.509 certificate chain for this service is not signed by a recognized certificate "
        "authority.  If the remote host is a public host in production, this nullifies the use of SSL.</p>"
    )
    assert html.endswith(
        "<p>Note that Nessus has not tested for this issue but has instead relied only on the "
        "application&#x27;s self-reported version number.</p>"
    )


def test_reflow_keeps_lists_and_aligned_blocks_readable():
    html = reflow(TENABLE_DESCRIPTION)
    assert (
        "<ul><li>An information disclosure vulnerability exists in the handling of renegotiation. "
        "(CVE-2023-0001)</li></ul><ul><li>A denial of service flaw exists in the record layer. "
        "(CVE-2023-0002)</li></ul>"
    ) in html
    assert (
        '<pre class="tenable-pre">Path              : /usr/lib/ssl\nInstalled version : 1.0.2</pre>' in html
    )
    solution = reflow("Upgrade to one of:\n- OpenSSL 1.1.1w\n- OpenSSL 3.0.12\n1. Stop the service\n2. Patch")
    assert solution == (
        "<p>Upgrade to one of:</p><ul><li>OpenSSL 1.1.1w</li><li>OpenSSL 3.0.12</li></ul>"
        "<ol><li>Stop the service</li><li>Patch</li></ol>"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ""),
        (None, ""),
        ("one line", "<p>one line</p>"),
        ("a\r\nb\r\n\r\nc", "<p>a b</p><p>c</p>"),
        ("  indented\n  as a whole\n  paragraph", "<p>indented as a whole paragraph</p>"),
        ("a\n\n\n\n   \nb", "<p>a</p><p>b</p>"),
        ("Version 2.4.58\nor later", "<p>Version 2.4.58 or later</p>"),
    ],
)
def test_reflow_edge_cases(text, expected):
    assert reflow(text) == expected


def test_reflow_always_escapes_imported_text():
    hostile = '<script>alert(1)</script>\n- <img src=x onerror="alert(2)">\n\n  <b>pre</b>'
    html = reflow(hostile)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;pre&lt;/b&gt;" in html
    # Even text someone marked safe is escaped: it came from Tenable.
    assert "<i>" not in reflow(mark_safe("<i>x</i>"))
    rendered = Template("{% load tenable_text %}{{ text|reflow }}").render(Context({"text": "<u>x</u>"}))
    assert rendered == "<p>&lt;u&gt;x&lt;/u&gt;</p>"


def test_cvss_vector_may_wrap_only_after_a_slash():
    assert cvss_vector("CVSS:3.0/AV:N/AC:L") == "CVSS:3.0/<wbr>AV:N/<wbr>AC:L"
    assert cvss_vector('AV:N/"><script>') == "AV:N/<wbr>&quot;&gt;&lt;script&gt;"
    assert cvss_vector("") == ""


@pytest.mark.parametrize(
    "delta, expected",
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=-20), "just now"),
        (timedelta(minutes=5), "5 minutes ago"),
        (timedelta(days=2, hours=3), "2 days, 3 hours ago"),
        (timedelta(hours=-2), "in 2 hours"),
    ],
)
def test_ago_says_just_now_instead_of_zero_minutes(delta, expected):
    assert ago(NOW - delta, NOW).replace("\xa0", " ") == expected  # Django's timesince uses no-break spaces


def test_ago_of_nothing_is_empty():
    assert ago(None) == "" and ago("") == ""


def test_page_title_has_a_separator_only_when_the_page_has_a_title():
    assert page_title(mark_safe("Sign in")) == "Sign in · Tenable Console"
    assert page_title(mark_safe("  ")) == "Tenable Console"
    assert page_title(mark_safe("Tom &amp; Jerry")) == "Tom &amp; Jerry · Tenable Console"  # not re-escaped
    assert page_title("<b>") == "&lt;b&gt; · Tenable Console"


def test_every_tab_title_has_its_separator(client, member):
    html = client.get("/login/").content.decode()
    assert "<title>Sign in · Tenable Console</title>" in html
    client.force_login(member)
    html = client.get("/projects/").content.decode()
    assert "<title>Projects · Tenable Console</title>" in html


def test_a_signed_in_user_gets_the_404_page_for_an_address_that_matches_nothing(client, member):
    """The sidebar read `request.resolver_match.url_name` in a filter argument, which raises when nothing matched."""
    client.force_login(member)
    response = client.get("/integrations/no-such-page/")
    assert response.status_code == 404 and "Page not found · Tenable Console" in response.content.decode()
