"""The ADF builder: Tenable's text becomes nodes, never markup; links only for http(s); Jira's size limit holds."""

from __future__ import annotations

import json

import pytest

from integrations.connectors.jira_cloud import adf
from integrations.connectors.jira_cloud.simulator import documents


def blocks(doc: dict) -> list[dict]:
    assert documents.problem(doc) is None  # Jira's side accepts every document we build
    return doc["content"]


def texts(node: dict) -> list[str]:
    """Every text node's text, depth first."""
    if node.get("type") == "text":
        return [node["text"]]
    return [t for child in node.get("content", []) for t in texts(child)]


def marks(node: dict) -> list[dict]:
    found = list(node.get("marks", []))
    return found + [m for child in node.get("content", []) for m in marks(child)]


def test_blank_lines_make_paragraphs_and_single_newlines_are_reflowed():
    doc = adf.from_text("The remote web server is\naffected by a flaw.\n\n\nUpgrade to 2.4.62\nor later.\n")
    assert blocks(doc) == [
        {
            "type": "paragraph",
            "content": [{"type": "text", "text": "The remote web server is affected by a flaw."}],
        },
        {"type": "paragraph", "content": [{"type": "text", "text": "Upgrade to 2.4.62 or later."}]},
    ]


def test_a_block_of_dashed_lines_becomes_a_bullet_list():
    doc = adf.from_text("Affected:\n\n- 10.0.0.1\n- web01.example.com\n* 10.0.0.3")
    paragraph, bullets = blocks(doc)
    assert texts(paragraph) == ["Affected:"] and bullets["type"] == "bulletList"
    assert texts(bullets) == ["10.0.0.1", "web01.example.com", "10.0.0.3"]


@pytest.mark.parametrize(
    "hostile",
    [
        "{code}rm -rf /{code}",
        "[~accountid:5b10ac8d82e05b22cc7d4ef5] please look",
        "<script>alert(1)</script>",
        "*bold* _em_ -strike- {{mono}} h1. Title !image.png! [link|javascript:alert(1)]",
        '"><img src=x onerror=alert(1)>',
        "@here {panel:title=x}y{panel} ||a||b||",
    ],
)
def test_markup_in_tenable_text_stays_literal_text(hostile):
    doc = adf.Document().paragraphs(hostile).bullet_list([hostile]).heading(hostile).as_dict()
    assert all(t == hostile for t in texts(doc))
    assert marks(doc) == []  # no link, no mention, no formatting came out of the text
    assert {n["type"] for n in blocks(doc)} == {"paragraph", "bulletList", "heading"}


def test_urls_in_text_become_links_without_their_trailing_punctuation():
    doc = adf.from_text("See https://www.tenable.com/plugins/nessus/19506. Also (http://x.example/a_(b)).")
    [paragraph] = blocks(doc)
    assert [(n["text"], n.get("marks")) for n in paragraph["content"]] == [
        ("See ", None),
        (
            "https://www.tenable.com/plugins/nessus/19506",
            [{"type": "link", "attrs": {"href": "https://www.tenable.com/plugins/nessus/19506"}}],
        ),
        (". Also (", None),
        ("http://x.example/a_(b)", [{"type": "link", "attrs": {"href": "http://x.example/a_(b)"}}]),
        (").", None),
    ]


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "javascript://evil.example/%0Aalert(1)",
        "ftp://files.example/x",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox",
        "https://user:secret@evil.example/",
        "https://",
        "//evil.example/x",
        "https://evil.example/a b",
        "https://evil.example/\x00",
        "https://evil.example/" + "a" * 3000,
    ],
)
def test_links_are_made_only_for_plain_http_urls(href):
    node = adf.link("Tenable", href)
    assert node == {"type": "text", "text": "Tenable"}


def test_a_safe_link_keeps_its_label():
    node = adf.link("CVE-2024-38476", "https://www.cve.org/CVERecord?id=CVE-2024-38476")
    assert node["marks"] == [
        {"type": "link", "attrs": {"href": "https://www.cve.org/CVERecord?id=CVE-2024-38476"}}
    ]
    assert adf.link("", "https://x.example")["text"] == "https://x.example"


def test_control_characters_and_lone_surrogates_are_removed():
    doc = adf.from_text("a\x00b\x07c\x1bd\ud800e\ufffff\r\ng")
    assert texts(doc) == ["abcdef g"]
    json.dumps(doc).encode("utf-8")  # encodable: no lone surrogate survived


def test_code_block_keeps_plugin_output_verbatim_and_unmarked():
    output = "Port 443/tcp\n  Version : 2.4.49\n  {code}<b>x</b>"
    [block] = blocks(adf.Document().code_block(output, language="text").as_dict())
    assert block == {
        "type": "codeBlock",
        "attrs": {"language": "text"},
        "content": [{"type": "text", "text": output}],
    }


def test_inline_parts_and_heading_levels():
    doc = (
        adf.Document()
        .heading("Affected hosts", level=9)
        .paragraph("Severity: ", adf.text("High", strong=True))
    )
    heading, paragraph = blocks(doc.as_dict())
    assert heading["attrs"] == {"level": 6}
    assert paragraph["content"][1] == {"type": "text", "text": "High", "marks": [{"type": "strong"}]}


def test_an_empty_document_is_still_valid():
    assert blocks(adf.Document().paragraphs(" \n\n ").bullet_list([]).as_dict()) == [
        {"type": "paragraph", "content": []}
    ]


def test_very_long_text_is_capped_with_a_note():
    doc = adf.Document().paragraphs("word " * 200_000).code_block("x" * 100_000).as_dict()
    size = len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    assert adf.MAX_CHARS - 200 < size <= adf.MAX_CHARS
    assert texts(doc)[-1] == adf.TRUNCATED_NOTE and texts(doc)[0].endswith("…")
    assert documents.problem(doc) is None  # within Jira's 32,767 characters


def test_a_long_host_list_ends_with_how_many_were_left_out():
    hosts = [f"10.0.{n // 256}.{n % 256} (host-{n}.example.com)" for n in range(10_000)]
    doc = adf.Document().heading("Affected hosts").bullet_list(hosts).as_dict()
    heading, bullets, note = blocks(doc)
    items = texts(bullets)
    assert texts(heading) == ["Affected hosts"]
    assert items[0] == hosts[0] and items[-1] == f"… and {10_000 - len(items) + 1} more"
    assert texts(note) == [adf.TRUNCATED_NOTE]
    assert len(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) <= adf.MAX_CHARS


def test_the_cap_counts_utf16_units_like_jira():
    doc = adf.from_text("🔥" * 40_000, max_chars=1_000)
    encoded = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    assert len(encoded.encode("utf-16-le")) // 2 <= 1_000
    assert documents.problem(doc) is None


def test_everything_after_the_cap_is_dropped():
    doc = adf.Document(max_chars=400).paragraphs("a" * 1000).heading("late").bullet_list(["late"]).as_dict()
    assert "late" not in texts(doc) and texts(doc)[-1] == adf.TRUNCATED_NOTE


def test_the_simulator_refuses_what_is_not_adf():
    assert documents.problem("plain text") == documents.NOT_ADF
    assert documents.problem({"type": "doc", "version": 1, "content": [{"type": "text", "text": "x"}]})
    assert documents.problem(
        {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}],
        }
    )
    assert documents.problem({"type": "doc", "version": 1, "content": [{"type": "doc", "version": 1}]})
