"""Atlassian Document Format (ADF) built from our text, node by node: nothing we send is ever parsed as markup.

Jira Cloud's REST v3 takes descriptions and comments as ADF, a JSON tree. Tenable's text goes in as text
nodes, so `{code}`, `[~accountid:…]`, `<script>` or `*bold*` stay literal characters; the only marks we
add are links (http/https only), strong and code, and only where our code asks for them.

Jira caps a rich-text field at 32,767 characters; a `Document` stops at `max_chars` (counted on the JSON
we send, in UTF-16 units as Jira's Java does) and ends with a note saying the text was cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

MAX_CHARS = 30_000  # under Jira's 32,767-character limit for a rich-text field, with room to spare
MAX_HREF = 2048
TRUNCATED_NOTE = "[Truncated: the full text is too long for Jira.]"
MORE_ITEMS = "… and {count} more"

Node = dict[str, Any]

# Characters XML 1.0 forbids (Jira stores text where they break things), lone surrogates, and non-characters.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^]+", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s+")


# ---------------------------------------------------------------------------------------------------
# Inline nodes
# ---------------------------------------------------------------------------------------------------


def text(value: str, *, strong: bool = False, code: bool = False) -> Node | None:
    """A text node (None for empty text: ADF forbids empty text nodes)."""
    value = clean(value).replace("\n", " ").replace("\t", " ")
    if not value:
        return None
    marks = [{"type": "strong"}] * strong + [{"type": "code"}] * code
    return {"type": "text", "text": value, **({"marks": marks} if marks else {})}


def link(label: str, href: str) -> Node | None:
    """A link when `href` is a plain http(s) URL; otherwise just the label as text (never a link)."""
    safe = safe_href(href)
    node = text(label or href)
    if node is None or safe is None:
        return node
    return {**node, "marks": [{"type": "link", "attrs": {"href": safe}}]}


def safe_href(href: str) -> str | None:
    """`href` when it is an absolute http(s) URL with a host, no credentials and nothing unprintable."""
    href = (href or "").strip()
    if not href or len(href) > MAX_HREF or _UNSAFE.search(href) or re.search(r"\s", href):
        return None
    try:
        parts = urlsplit(href)
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname or "@" in parts.netloc:
        return None
    return href


def linkified(value: str) -> list[Node]:
    """Text nodes for `value`, with each http(s) URL in it made a link."""
    nodes: list[Node | None] = []
    position = 0
    for match in _URL.finditer(value):
        url = _trim_url(match.group())
        nodes.append(text(value[position : match.start()]))
        nodes.append(link(url, url))
        position = match.start() + len(url)
    nodes.append(text(value[position:]))
    return [n for n in nodes if n is not None]


# ---------------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------------


class Document:
    """An ADF document assembled block by block, stopping at `max_chars` with a truncation note.

    Methods return the document so calls chain: `Document().heading("Hosts").bullet_list(hosts).as_dict()`.
    """

    def __init__(self, *, max_chars: int = MAX_CHARS) -> None:
        self.max_chars = max_chars
        self.truncated = False
        self._content: list[Node] = []
        # Room kept for the note and the document's own wrapper.
        self._used = _size({"type": "doc", "version": 1, "content": []}) + _size(_note()) + 1

    # -- blocks ---------------------------------------------------------------------------------------

    def heading(self, value: str, level: int = 3) -> Document:
        """A heading (level clamped to 1–6)."""
        node = text(value)
        if node is not None:
            level = min(max(int(level), 1), 6)
            self._add(
                lambda n: {"type": "heading", "attrs": {"level": level}, "content": [_cut(node, n)]},
                len(node["text"]),
            )
        return self

    def paragraph(self, *parts: str | Node | None) -> Document:
        """One paragraph from strings (URLs in them become links) and inline nodes (`text`, `link`)."""
        inlines: list[Node] = []
        for part in parts:
            if isinstance(part, str):
                inlines.extend(linkified(clean(part).replace("\n", " ")))
            elif part is not None:
                inlines.append(part)
        self._add_inlines(inlines)
        return self

    def paragraphs(self, value: str) -> Document:
        """Plain text as Tenable writes it: blank lines separate paragraphs, single newlines are reflowed,
        and a block whose every line starts with "-", "*" or "•" becomes a bullet list."""
        for block in re.split(r"\n\s*\n", clean(value)):
            lines = [line.strip() for line in block.split("\n") if line.strip()]
            if not lines:
                continue
            if len(lines) > 1 and all(_BULLET.match(line) for line in lines):
                self.bullet_list(_BULLET.sub("", line) for line in lines)
            else:
                self.paragraph(" ".join(lines))
        return self

    def bullet_list(self, items: Iterable[str | Node | None]) -> Document:
        """A bullet list, one paragraph per item; when room runs out it ends with "… and N more"."""
        if self.truncated:
            return self
        items = [item for item in items if item]
        list_items: list[Node] = []
        room = self.max_chars - self._used - _size({"type": "bulletList", "content": []})
        for index, item in enumerate(items):
            node = _list_item(item)
            if node is None:
                continue
            cost = _size(node) + 1
            more = _list_item(MORE_ITEMS.format(count=len(items) - index))
            if cost + (_size(more) + 1 if index < len(items) - 1 else 0) > room:
                if more is not None and _size(more) + 1 <= room:
                    list_items.append(more)
                self.truncated = True
                break
            list_items.append(node)
            room -= cost
        if list_items:
            node = {"type": "bulletList", "content": list_items}
            self._content.append(node)
            self._used += _size(node) + 1
        return self

    def code_block(self, value: str, language: str | None = None) -> Document:
        """Preformatted text (plugin output), kept verbatim apart from unsafe characters."""
        value = clean(value).strip("\n")
        if value:
            attrs = {"language": language} if language else {}
            self._add(
                lambda n: {
                    "type": "codeBlock",
                    **({"attrs": attrs} if attrs else {}),
                    "content": [{"type": "text", "text": _shorten(value, n)}],
                },
                len(value),
            )
        return self

    def rule(self) -> Document:
        """A horizontal rule."""
        self._add(lambda n: {"type": "rule"}, 0)
        return self

    def as_dict(self) -> Node:
        """The ADF document (a fresh copy), with the truncation note last when something was cut."""
        content = list(self._content)
        if self.truncated:
            content.append(_note())
        if not content:
            content = [{"type": "paragraph", "content": []}]
        return json.loads(json.dumps({"type": "doc", "version": 1, "content": content}))

    # -- budget -------------------------------------------------------------------------------------

    def _add_inlines(self, inlines: list[Node]) -> None:
        if not inlines:
            return
        total = sum(len(node["text"]) for node in inlines)

        def make(n: int) -> Node:
            kept, left = [], n
            for node in inlines:
                if left <= 0:
                    break
                kept.append(_cut(node, left))
                left -= len(node["text"])
            return {"type": "paragraph", "content": kept}

        self._add(make, total)

    def _add(self, make: Callable[[int], Node], length: int) -> None:
        """Append `make(length)`, or the longest `make(n)` that fits (then the document is truncated)."""
        if self.truncated:
            return
        room = self.max_chars - self._used
        node = make(length)
        if _size(node) + 1 > room:
            self.truncated = True
            low, high, node = 0, length, None
            while low < high:  # the largest n whose node fits
                middle = (low + high + 1) // 2
                if _size(make(middle)) + 1 <= room:
                    low = middle
                else:
                    high = middle - 1
            if low == 0:
                return
            node = make(low)
        self._content.append(node)
        self._used += _size(node) + 1


def from_text(value: str, *, max_chars: int = MAX_CHARS) -> Node:
    """An ADF document from plain text (comments, short notes): see `Document.paragraphs`."""
    return Document(max_chars=max_chars).paragraphs(value).as_dict()


def clean(value: Any) -> str:
    """`value` as text Jira accepts: newlines normalised, control characters and lone surrogates removed."""
    value = "" if value is None else str(value)
    return _UNSAFE.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def _size(node: Node | None) -> int:
    """Characters `node` takes in the JSON Jira stores, in UTF-16 units (Java string length)."""
    if node is None:
        return 0
    encoded = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
    return len(encoded.encode("utf-16-le")) // 2


def _shorten(value: str, n: int) -> str:
    return value if n >= len(value) else value[: max(n - 1, 0)].rstrip() + "…"


def _cut(node: Node, n: int) -> Node:
    return node if n >= len(node["text"]) else {**node, "text": _shorten(node["text"], n) or "…"}


def _list_item(item: str | Node | None) -> Node | None:
    if isinstance(item, str):
        inlines = linkified(clean(item).replace("\n", " "))
    else:
        inlines = [item] if item else []
    if not inlines:
        return None
    return {"type": "listItem", "content": [{"type": "paragraph", "content": inlines}]}


def _note() -> Node:
    return {
        "type": "paragraph",
        "content": [{"type": "text", "text": TRUNCATED_NOTE, "marks": [{"type": "em"}]}],
    }


def _trim_url(url: str) -> str:
    """A URL without the sentence punctuation that followed it ("see https://x.example/a.")."""
    while url and url[-1] in ".,;:!?'\"":
        url = url[:-1]
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1]
    return url
