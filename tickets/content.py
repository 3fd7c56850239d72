"""What a ticket says: its subject (one finding, or one vulnerability and its findings), summary, labels,
priority and the description written from the mapping's template.

The template is plain text with two line rules and placeholders. A line starting with "## " is a heading (shown
only when something follows it); a line holding one block placeholder alone ({hosts}, {description}, …) becomes
that block (a list, Tenable's paragraphs, code); any other line is text, with placeholders replaced by plain
values; lines next to each other form one paragraph. Everything Tenable wrote stays text: the connector writes it
into the service's document format as text nodes, never as markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from integrations.connectors import TicketingConnector
from integrations.connectors.base import Inline, Link, TicketContent, TicketDocument
from projects.choices import Severity
from projects.models import Finding, Plugin, Project

from .choices import Grouping
from .models import TicketMapping

# Placeholders and what they stand for (the mapping page lists them).
INLINE_PLACEHOLDERS = {
    "plugin_id": "Tenable plugin id",
    "plugin_name": "vulnerability name",
    "plugin_family": "plugin family",
    "severity": "effective severity (the highest among the hosts)",
    "tenable_severity": "Tenable's severity",
    "cvss3": "CVSS v3 base score",
    "vpr": "VPR score",
    "cves": "CVE ids, comma-separated",
    "host": "host name (grouped: the number of hosts)",
    "ip": "host IP (per finding)",
    "port": "port/protocol (per finding)",
    "host_count": "number of affected hosts",
    "first_seen": "first seen (date)",
    "project": "project name",
    "console_url": "the finding (or the vulnerability's findings) in Tenable Console",
}
BLOCK_PLACEHOLDERS = {
    "synopsis": "Tenable's synopsis",
    "description": "Tenable's description",
    "solution": "Tenable's solution",
    "see_also": "Tenable's references, as a list of links",
    "hosts": "affected hosts, as a list linking to each finding",
    "plugin_output": "the plugin output, as code (per finding)",
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
MISSING = "—"
LABEL_MAX = 255
SUMMARY_PLUGIN = "[{severity}] {name}"
SUMMARY_FINDING = "[{severity}] {name} on {host}"


@dataclass
class Subject:
    """What one ticket is about: one finding, or one vulnerability and its findings that need a ticket."""

    kind: str  # Grouping
    stable_key: str
    plugin: Plugin
    findings: list[Finding] = field(default_factory=list)

    @property
    def finding(self) -> Finding | None:
        return self.findings[0] if self.kind == Grouping.FINDING and self.findings else None

    @property
    def severity(self) -> int:
        return max((f.effective_severity for f in self.findings), default=Severity.INFO)

    def hosts(self) -> list[list]:
        """The affected hosts as stored on the link: [[host, ip, port/protocol, finding id], …], sorted."""
        return sorted(
            [f.asset.name, f.asset.ip, _port(f), f.pk] for f in self.findings if f.asset_id is not None
        )


def stable_key(
    spec: type[TicketingConnector], project: Project, kind: str, plugin_id: int, finding=None
) -> str:
    """Our identity as the ticket's label: the finding's fingerprint (project, host identity, plugin, port,
    protocol: an IP change keeps it), or the project and the plugin."""
    if kind == Grouping.FINDING:
        return spec.stable_key("finding", finding.fingerprint)
    return spec.stable_key("plugin", project.pk, plugin_id)


def build(mapping: TicketMapping, subject: Subject) -> TicketContent:
    """The ticket's summary, description, labels and priority for this subject."""
    severity = Severity(subject.severity).label
    name = subject.plugin.name or f"Plugin {subject.plugin.plugin_id}"
    if subject.kind == Grouping.FINDING and subject.finding is not None:
        finding = subject.finding
        host = finding.asset.name + (f":{finding.port}" if finding.port else "")
        summary = SUMMARY_FINDING.format(severity=severity, name=name, host=host)
    else:
        summary = SUMMARY_PLUGIN.format(severity=severity, name=name)
    return TicketContent(
        summary=summary,
        description=describe(mapping.description_template, subject, mapping.project),
        labels=labels(mapping, subject),
        priority=mapping.priority_for(subject.severity),
    )


def content_hash(mapping: TicketMapping, subject: Subject, content: TicketContent) -> str:
    """What a ticket is updated for when it changes: summary, priority, labels, hosts, the template. (Plugin
    output and Tenable's prose are written at creation and with each such update, not for their own sake.)"""
    key = {
        "summary": content.summary,
        "priority": content.priority,
        "labels": sorted(content.labels),
        "hosts": subject.hosts(),
        "template": mapping.description_template,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------
def labels(mapping: TicketMapping, subject: Subject) -> tuple[str, ...]:
    """The stable key first, then the mapping's labels, the Scan Tags and the Meta Data of the profiles that
    found the findings; spaces become underscores (Jira labels hold none)."""
    found = [subject.stable_key, *split_labels(mapping.extra_labels)]
    profiles = {f.profile_id: f.profile for f in subject.findings if f.profile_id}.values()
    for profile in sorted(profiles, key=lambda p: p.pk):
        if mapping.label_scan_tag and profile.scan_tag:
            found.append(profile.scan_tag)
        if mapping.label_meta_data and profile.meta_data:
            found.extend(split_labels(profile.meta_data))
    cleaned = (re.sub(r"\s+", "_", label.strip())[:LABEL_MAX] for label in found)
    return tuple(dict.fromkeys(label for label in cleaned if label))


def split_labels(value: str) -> list[str]:
    """Labels from "a, b c; d": commas, semicolons and spaces separate them."""
    return [part for part in re.split(r"[\s,;]+", value or "") if part]


# ---------------------------------------------------------------------------------------------------------------
# The description
# ---------------------------------------------------------------------------------------------------------------
def template_problems(template: str) -> list[str]:
    """Sentences about placeholders the template names but nobody knows (empty when it is fine)."""
    known = INLINE_PLACEHOLDERS.keys() | BLOCK_PLACEHOLDERS.keys()
    unknown = sorted({name for name in PLACEHOLDER.findall(template or "") if name not in known})
    if not unknown:
        return []
    names = ", ".join("{" + name + "}" for name in unknown)
    return [
        f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {names}: use the ones listed below the field."
    ]


def describe(template: str, subject: Subject, project: Project) -> TicketDocument:
    """The description for `subject`, written from `template` (see the module docstring for the rules)."""
    blocks, inline = _values(subject, project)
    document = TicketDocument()
    heading: str | None = None
    lines: list[str] = []

    def substitute(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: inline.get(m.group(1), m.group(0)), text)

    def emit() -> None:
        nonlocal heading
        if heading:
            document.heading(heading)
            heading = None

    def flush() -> None:
        if lines:
            text = " ".join(lines).strip()
            lines.clear()
            if text:
                emit()
                document.paragraph(text)

    for raw in (template or "").splitlines():
        line = raw.strip()
        alone = PLACEHOLDER.fullmatch(line)
        if not line:
            flush()
        elif line.startswith("## "):
            flush()
            heading = substitute(line[3:]).strip() or None
        elif alone and alone.group(1) in blocks:
            flush()
            add = blocks[alone.group(1)]
            if add is not None:
                emit()
                add(document)
        else:
            lines.append(substitute(line))
    flush()
    return document


def _values(subject: Subject, project: Project):
    """(block writers by name, inline values by name) for a subject; a missing block is None."""
    plugin, findings, finding = subject.plugin, subject.findings, subject.finding
    site = settings.SITE_URL
    if finding is not None:
        console_url = site + finding.get_absolute_url()
    else:
        console_url = f"{site}{reverse('projects:findings', args=[project.pk])}?q={plugin.plugin_id}"
    see_also = [_reference(item) for item in plugin.see_also or [] if str(item).strip()]
    hosts: list[Inline] = [
        Link(
            f"{f.asset.name}{f' ({f.asset.ip})' if f.asset.ip and f.asset.ip != f.asset.name else ''} · {_port(f)}",
            site + f.get_absolute_url(),
        )
        for f in sorted(findings, key=lambda f: (f.asset.name, f.port, f.protocol))
    ]
    output = finding.plugin_output if finding is not None else ""

    def prose(text: str):
        return (lambda doc: doc.prose(text)) if text and text.strip() else None

    blocks = {
        "synopsis": prose(plugin.synopsis),
        "description": prose(plugin.description),
        "solution": prose(plugin.solution),
        "see_also": (lambda doc: doc.bullets(see_also)) if see_also else None,
        "hosts": (lambda doc: doc.bullets(hosts)) if hosts else None,
        "plugin_output": (lambda doc: doc.code(output)) if output and output.strip() else None,
    }
    first_seen = min((f.first_seen for f in findings if f.first_seen), default=None)
    inline = {
        "plugin_id": str(plugin.plugin_id),
        "plugin_name": plugin.name or f"Plugin {plugin.plugin_id}",
        "plugin_family": plugin.family or MISSING,
        "severity": Severity(subject.severity).label,
        "tenable_severity": Severity(max((f.severity for f in findings), default=0)).label,
        "cvss3": _number(plugin.cvss3_base_score),
        "vpr": _number(plugin.vpr_score),
        "cves": ", ".join(str(c) for c in plugin.cves or []) or MISSING,
        "host": finding.asset.name
        if finding is not None
        else f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}",
        "ip": (finding.asset.ip or MISSING) if finding is not None else MISSING,
        "port": _port(finding) if finding is not None else MISSING,
        "host_count": str(len(hosts)),
        "first_seen": first_seen.date().isoformat() if first_seen else MISSING,
        "project": project.name,
        "console_url": console_url,
        # Block placeholders inside a line of text read as plain text.
        "synopsis": _flat(plugin.synopsis),
        "description": _flat(plugin.description),
        "solution": _flat(plugin.solution),
        "see_also": ", ".join(str(i).strip() for i in plugin.see_also or [] if str(i).strip()) or MISSING,
        "hosts": ", ".join(sorted({f.asset.name for f in findings})) or MISSING,
        "plugin_output": _flat(output),
    }
    return blocks, inline


def _reference(item: object) -> Inline:
    text = str(item).strip()
    return Link(text, text) if text.lower().startswith(("http://", "https://")) else text


def _port(finding: Finding) -> str:
    return f"{finding.port}/{finding.protocol}"


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:g}"


def _flat(text: str, limit: int = 500) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    if not text:
        return MISSING
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sample_subject(mapping: TicketMapping, kind: str) -> Subject | None:
    """A subject from the project's own findings for the preview: its most severe open finding (and, grouped,
    the others of that vulnerability); None when the project has no finding yet."""
    project = mapping.project
    first = (
        Finding.objects.filter(project=project)
        .open()
        .select_related("asset", "plugin", "profile")
        .order_by("-effective_severity", "pk")
        .first()
    ) or Finding.objects.filter(project=project).select_related("asset", "plugin", "profile").first()
    if first is None:
        return None
    spec = mapping.integration.spec
    if kind == Grouping.FINDING:
        return Subject(kind, stable_key(spec, project, kind, first.plugin_id, first), first.plugin, [first])
    findings = list(
        Finding.objects.filter(project=project, plugin=first.plugin)
        .open()
        .select_related("asset", "plugin", "profile")
        .order_by("pk")[:200]
    ) or [first]
    return Subject(kind, stable_key(spec, project, kind, first.plugin_id), first.plugin, findings)


def preview(mapping: TicketMapping, subject: Subject) -> tuple[TicketContent, str]:
    """The content for `subject` and its description as the escaped HTML the connector renders."""
    content = build(mapping, subject)
    return content, mapping.integration.spec.preview_html(content.description)


def iter_texts(document: TicketDocument) -> Iterable[str]:
    """Every string in a document (tests and the audit read them)."""
    for block in document.blocks:
        for part in (*block.parts, *block.items):
            yield part.label if isinstance(part, Link) else str(part)
