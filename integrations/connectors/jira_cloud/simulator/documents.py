"""Jira's side of Atlassian Document Format: reject what is not a valid document, flatten what is.

Written independently of our `adf` builder so the simulator catches the builder's mistakes. It accepts
the subset of the ADF schema a ticket needs (paragraphs, headings, lists, code blocks, rules, quotes;
text with marks, hard breaks, mentions, emoji, inline cards).
"""

from __future__ import annotations

import json
from typing import Any

from .model import TEXT_LIMIT

NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."

_BLOCKS = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule", "blockquote"}
_INLINES = {"text", "hardBreak", "mention", "emoji", "inlineCard"}
_MARKS = {"strong", "em", "code", "strike", "underline", "link", "subsup", "textColor"}
_CHILDREN = {
    "doc": _BLOCKS,
    "paragraph": _INLINES,
    "heading": _INLINES,
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "codeBlock": {"text"},
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock"},
}
_NEEDS_CONTENT = {"bulletList", "orderedList", "listItem", "blockquote"}


def problem(value: Any) -> str | None:
    """None when `value` is a valid ADF document within Jira's size limit, else Jira's complaint."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return NOT_ADF
    content = value.get("content")
    if not isinstance(content, list) or not all(_valid(child, "doc") for child in content):
        return NOT_ADF
    if len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) > TEXT_LIMIT:
        return TOO_LONG
    return None


def plain_text(value: Any) -> str:
    """The document's text: blocks on their own lines, list items prefixed "- "."""
    if not isinstance(value, dict):
        return ""
    lines: list[str] = []
    _flatten(value, lines, prefix="")
    return "\n".join(line for line in lines)


def _valid(node: Any, parent: str) -> bool:
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    kind = node["type"]
    if kind not in _CHILDREN.get(parent, set()):
        return False
    if kind == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return False
        marks = node.get("marks", [])
        if parent == "codeBlock" and marks:
            return False
        return isinstance(marks, list) and all(_valid_mark(m) for m in marks)
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level")
        if not isinstance(level, int) or not 1 <= level <= 6:
            return False
    if kind == "mention" and not isinstance((node.get("attrs") or {}).get("id"), str):
        return False
    content = node.get("content", [])
    if not isinstance(content, list) or (kind in _NEEDS_CONTENT and not content):
        return False
    if kind in ("rule", "hardBreak", "mention", "emoji", "inlineCard") and content:
        return False
    return all(_valid(child, kind) for child in content)


def _valid_mark(mark: Any) -> bool:
    if not isinstance(mark, dict) or mark.get("type") not in _MARKS:
        return False
    if mark["type"] == "link":
        return isinstance((mark.get("attrs") or {}).get("href"), str)
    return True


def _flatten(node: dict, lines: list[str], prefix: str) -> None:
    kind = node.get("type")
    if kind in ("paragraph", "heading", "codeBlock"):
        lines.append(prefix + _inline_text(node))
        return
    if kind == "rule":
        lines.append(prefix + "---")
        return
    for child in node.get("content", []):
        if isinstance(child, dict):
            _flatten(child, lines, "- " if child.get("type") == "listItem" else prefix)


def _inline_text(node: dict) -> str:
    parts = []
    for child in node.get("content", []):
        if not isinstance(child, dict):
            continue
        if child.get("type") == "text":
            parts.append(str(child.get("text", "")))
        elif child.get("type") == "hardBreak":
            parts.append("\n")
        elif child.get("type") == "mention":
            parts.append("@" + str((child.get("attrs") or {}).get("text") or ""))
    return "".join(parts)
