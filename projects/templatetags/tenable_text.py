"""Tenable's plugin text as readable HTML: `{{ plugin.description|reflow }}`, `{{ plugin.cvss3_vector|cvss_vector }}`.

Tenable hard-wraps its synopsis, description and solution at ~70 columns. Shown with `linebreaksbr` the lines
break mid-sentence, so `reflow` joins the lines of each paragraph, keeps blank-line paragraphs, bullet lists and
indented (column-aligned) blocks, and escapes every piece of the imported text itself. Chromium will not wrap a
CVSS vector at its slashes on its own, so `cvss_vector` marks those places (and only those) with `<wbr>`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

BULLET = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>[-*•+]|\d{1,3}[.)])[ \t]+(?P<text>\S.*)$")
BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass
class _Segment:
    kind: str  # "p" (a reflowed paragraph), "ul"/"ol" (a list), or "pre" (lines kept as they are)
    lines: list[str] = field(default_factory=list)  # p and pre
    items: list[list[str]] = field(default_factory=list)  # ul and ol: each item's lines
    start: int = 1  # ol: the first item's number
    indent: int = 0  # ul and ol: the markers' indentation


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _segments(block: str) -> list[_Segment]:
    """Split one blank-line-separated block into paragraphs, lists and indented blocks."""
    segments: list[_Segment] = []
    for line in block.split("\n"):
        current = segments[-1] if segments else None
        bullet = BULLET.match(line)
        if bullet:
            marker, indent = bullet["marker"], len(bullet["indent"])
            kind = "ol" if marker[0].isdigit() else "ul"
            if current is None or current.kind != kind or indent < current.indent:
                start = int(marker[:-1]) if kind == "ol" else 1
                current = _Segment(kind, start=start, indent=indent)
                segments.append(current)
            current.items.append([bullet["text"]])
        elif current is not None and current.kind in ("ul", "ol") and _indent(line) >= current.indent:
            current.items[-1].append(line.strip())  # a wrapped list item's continuation line
        elif _indent(line) > 0:
            if current is None or current.kind != "pre":
                current = _Segment("pre")
                segments.append(current)
            current.lines.append(line)
        else:
            if current is None or current.kind != "p":
                current = _Segment("p")
                segments.append(current)
            current.lines.append(line.strip())
    return segments


def _join(lines: list[str]) -> str:
    return " ".join(part for part in lines if part)  # plain text: format_html escapes it


def _render(segment: _Segment) -> SafeString:
    if segment.kind == "p":
        return format_html("<p>{}</p>", _join(segment.lines))
    if segment.kind == "pre":
        return format_html('<pre class="tenable-pre">{}</pre>', textwrap.dedent("\n".join(segment.lines)))
    items = format_html_join("", "<li>{}</li>", ((_join(lines),) for lines in segment.items))
    if segment.kind == "ol":
        start = format_html(' start="{}"', segment.start) if segment.start != 1 else ""
        return format_html("<ol{}>{}</ol>", start, items)
    return format_html("<ul>{}</ul>", items)


@register.filter(is_safe=False)
def reflow(text: str | None) -> SafeString:
    """Hard-wrapped text as paragraphs: single newlines become spaces, blank lines separate paragraphs,
    bullet and numbered lines become lists, indented lines keep their layout. Always escaped."""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    text = textwrap.dedent("\n".join(line.rstrip() for line in text.split("\n")))  # indentation shared by all
    segments = [
        segment
        for block in BLANK_LINES.split(text)
        if block.strip()
        for segment in _segments(block.strip("\n"))
    ]
    return format_html_join("", "{}", ((_render(segment),) for segment in segments))


@register.filter(is_safe=False)
def cvss_vector(vector: str | None) -> SafeString:
    """A CVSS vector that may wrap after a slash but never inside a metric: `AV:N/<wbr>AC:L/<wbr>…`, escaped."""
    first, *rest = str(vector or "").split("/")
    html = format_html("{}", first)
    for part in rest:
        html = format_html("{}/<wbr>{}", html, part)
    return html
