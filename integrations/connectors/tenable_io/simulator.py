"""A stateful fake Tenable.io for tests, demos and benchmarks: a plain WSGI app, no Django.

It answers the calls in TENABLE_API.md the way the real service does (bodies, status codes, headers),
keeps scans, runs and exports as state, generates deterministic data from a seed, streams `.nessus`
exports host by host, and injects faults on demand (`set_fault`). `serve()` runs it on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import random
import re
import socketserver
import threading
import time
import uuid as uuidlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from xml.sax.saxutils import escape, quoteattr

FAULTS = frozenset(
    {
        "rate_limit",  # 429 + retry-after (HTML body) on every Nth matching call; retry_after="30"
        "flap",  # answer `status` (default 503) to the next `times` matching calls
        "forbidden",  # 403 on matching calls (e.g. path="/export" for "no permission to export")
        "slow",  # sleep `seconds` before answering
        "export_stuck",  # export status stays "loading"
        "export_error",  # export status is "error"
        "truncated_download",  # mode="length" (short body), "chunked" (cut chunks) or "close" (no length)
        "malformed_xml",  # the download is broken XML
        "no_scans",  # the account has no scans: "scans": null
        "ignore_folder_filter",  # GET /scans ignores folder_id: mode="all" (every folder lists every scan)
        #   or mode="trash" (the trash lists every scan, other folders none)
        "gzip_bomb",  # the download is gzip that decodes to `size` bytes (default 1 GiB) of a valid-looking file
    }
)
ACTIVE_STATUSES = frozenset(
    {
        "initializing",
        "pending",
        "running",
        "pausing",
        "paused",
        "resuming",
        "stopping",
        "processing",
        "publishing",
    }
)
MAX_ACTIVE_SCANS = 25
MAX_ACTIVE_EXPORTS = 10
ARCHIVE_AFTER = 35 * 86400
_JSON = "application/json; charset=utf-8"
_DENIED = {
    "missing": {"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication"},
    "invalid": {"statusCode": 401, "error": "Unauthorized", "message": "Invalid credentials."},
    "forbidden": {"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope"},
}
_MASK = (1 << 64) - 1
_CHUNK_TARGET = 64 * 1024
_HTML_429 = (
    b"<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


def _mix(*values: int) -> int:
    """A fast deterministic 64-bit hash of integers (splitmix64 steps), for per-finding decisions."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = ((x ^ (v & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & _MASK
        x ^= x >> 29
    return x


def _uuid(*values: int) -> str:
    return str(uuidlib.UUID(int=(_mix(*values, 1) << 64) | _mix(*values, 2), version=4))


# ---------------------------------------------------------------------------------------------------
# Plugin catalogue
# ---------------------------------------------------------------------------------------------------

# (plugin id, name, family, severity, service, port, protocol) of plugins every real scan shows.
_KNOWN_PLUGINS = [
    (19506, "Nessus Scan Information", "Settings", 0, "general", 0, "tcp"),
    (11219, "Nessus SYN scanner", "Port scanners", 0, "www", 443, "tcp"),
    (11936, "OS Identification", "General", 0, "general", 0, "tcp"),
    (45590, "Common Platform Enumeration (CPE)", "General", 0, "general", 0, "tcp"),
    (10287, "Traceroute Information", "General", 0, "general", 0, "udp"),
    (22964, "Service Detection", "Service detection", 0, "www", 443, "tcp"),
    (54615, "Device Type", "General", 0, "general", 0, "tcp"),
    (12053, "Host Fully Qualified Domain Name (FQDN) Resolution", "General", 0, "general", 0, "tcp"),
    (10107, "HTTP Server Type and Version", "Web Servers", 0, "www", 80, "tcp"),
    (10267, "SSH Server Type and Version Information", "Service detection", 0, "ssh", 22, "tcp"),
    (25220, "TCP/IP Timestamps Supported", "General", 0, "general", 0, "tcp"),
    (70657, "SSH Algorithms and Languages Supported", "Misc.", 0, "ssh", 22, "tcp"),
    (51192, "SSL Certificate Cannot Be Trusted", "General", 2, "www", 443, "tcp"),
    (57582, "SSL Self-Signed Certificate", "General", 2, "www", 443, "tcp"),
    (104743, "TLS Version 1.0 Protocol Detection", "Service detection", 2, "www", 443, "tcp"),
    (42873, "SSL Medium Strength Cipher Suites Supported (SWEET32)", "General", 3, "www", 443, "tcp"),
    (10114, "ICMP Timestamp Request Remote Date Disclosure", "General", 1, "general", 0, "icmp"),
    (90317, "SSH Weak Algorithms Supported", "Misc.", 2, "ssh", 22, "tcp"),
    (156164, "Apache Log4Shell CVE-2021-45046 Bypass Remote Code Execution", "Misc.", 4, "www", 8080, "tcp"),
    (97833, "MS17-010: Security Update for Microsoft Windows SMB Server (4013389) (ETERNALBLUE)", "Windows", 4,
     "cifs", 445, "tcp"),
]  # fmt: skip

# (product, family, service, port, protocol, naming style)
_PRODUCTS = [
    ("Apache HTTP Server", "Web Servers", "www", 443, "tcp", "remote"),
    ("nginx", "Web Servers", "www", 80, "tcp", "remote"),
    ("OpenSSH", "Misc.", "ssh", 22, "tcp", "remote"),
    ("OpenSSL", "General", "www", 443, "tcp", "remote"),
    ("PHP", "CGI abuses", "www", 80, "tcp", "remote"),
    ("Apache Tomcat", "Web Servers", "www", 8080, "tcp", "remote"),
    ("Jenkins", "CGI abuses", "www", 8080, "tcp", "remote"),
    ("MySQL Server", "Databases", "mysql", 3306, "tcp", "remote"),
    ("PostgreSQL", "Databases", "postgresql", 5432, "tcp", "remote"),
    ("Redis", "Databases", "redis", 6379, "tcp", "remote"),
    ("ISC BIND", "DNS", "dns", 53, "udp", "remote"),
    ("Exim", "SMTP problems", "smtp", 25, "tcp", "remote"),
    ("Samba", "Misc.", "cifs", 445, "tcp", "remote"),
    ("VMware ESXi", "Misc.", "www", 443, "tcp", "remote"),
    ("Microsoft Exchange Server", "Windows", "www", 443, "tcp", "remote"),
    ("Google Chrome", "Windows", "general", 0, "tcp", "local"),
    ("Mozilla Firefox", "Windows", "general", 0, "tcp", "local"),
    ("Oracle Java SE", "Misc.", "general", 0, "tcp", "local"),
    ("Ubuntu", "Ubuntu Local Security Checks", "general", 0, "tcp", "ubuntu"),
    ("RHEL", "Red Hat Local Security Checks", "general", 0, "tcp", "rhel"),
    ("Windows", "Windows : Microsoft Bulletins", "cifs", 445, "tcp", "kb"),
]
_FLAWS = [
    "Multiple Vulnerabilities",
    "Denial of Service",
    "Remote Code Execution",
    "Information Disclosure",
    "Privilege Escalation",
    "Security Bypass",
    "HTTP Request Smuggling",
    "Buffer Overflow",
]
_PACKAGES = ["linux kernel", "openssl", "curl", "glibc", "sudo", "python3.10", "nss", "libxml2", "git", "vim"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_IMPACTS = [
    "An unauthenticated, remote attacker can exploit this to execute arbitrary code.",
    "A remote attacker can exploit this to cause the service to stop responding.",
    "A local attacker can exploit this to gain elevated privileges.",
    "An attacker can exploit this to disclose potentially sensitive information.",
    "An attacker can exploit this to bypass authentication and access restricted resources.",
    "A man-in-the-middle attacker can exploit this to intercept or modify traffic.",
]
_FILLER = [
    "Note that Nessus has not tested for these issues but has instead relied only on the application's "
    "self-reported version number.",
    "The affected component fails to properly validate user-supplied input before using it.",
    "Exploitation requires the attacker to be able to send specially crafted requests to the service.",
    "The vendor has released a patch and updated packages that address the issue.",
    "Public exploit code is available and the issue is known to be exploited in the wild.",
    "The remote service accepts connections encrypted using legacy protocol versions & weak ciphers.",
]
# Severity 1–4 weights and CVSS v3 ranges; 30 % of generated plugins are informational (severity 0).
_SEVERITY_WEIGHTS = [45, 10, 25, 14, 6]
_SCORE_RANGES = {0: (0.0, 0.0), 1: (1.0, 3.9), 2: (4.0, 6.9), 3: (7.0, 8.9), 4: (9.0, 10.0)}
_RISK = ["None", "Low", "Medium", "High", "Critical"]


@dataclass(slots=True)
class _Plugin:
    id: int
    name: str
    family: str
    severity: int
    open_tag: str  # "<ReportItem ...>" with the plugin's attributes
    body: str  # every child element except plugin_output, pre-rendered and escaped
    output: str  # escaped plugin_output template with {ip} {fqdn} {os}
    port: int
    protocol: str


def _plugin(seed: int, index: int) -> _Plugin:
    """Plugin number `index` of the catalogue, generated from (seed, index) alone."""
    rng = random.Random(_mix(seed, index, 0xC47))
    if index < len(_KNOWN_PLUGINS):
        pid, name, family, severity, svc, port, proto = _KNOWN_PLUGINS[index]
    else:
        product, family, svc, port, proto, style = _PRODUCTS[index % len(_PRODUCTS)]
        pid = 200_000 + index
        informational = rng.random() < 0.3
        severity = 0 if informational else rng.choices(range(1, 5), _SEVERITY_WEIGHTS[1:])[0]
        fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(1, 60)}"
        if informational:
            name = f"{product} {rng.choice(['Detection', 'Version Detection', 'Installed (Linux)', 'Enumeration'])}"
        elif style == "ubuntu":
            name = (
                f"Ubuntu {rng.choice(['20.04', '22.04', '24.04'])} LTS : {rng.choice(_PACKAGES)} "
                f"vulnerabilities (USN-{rng.randint(5000, 7200)}-{rng.randint(1, 3)})"
            )
        elif style == "rhel":
            name = f"RHEL {rng.choice([7, 8, 9])} : {rng.choice(_PACKAGES)} (RHSA-{rng.randint(2019, 2025)}:{rng.randint(1000, 9999)})"
        elif style == "kb":
            name = (
                f"KB{rng.randint(5000000, 5049999)}: Windows Server {rng.choice(['2016', '2019', '2022'])} "
                f"Security Update ({rng.choice(_MONTHS)} {rng.randint(2021, 2025)})"
            )
        else:
            name = f"{product} < {fixed} {rng.choice(_FLAWS)}"
    low, high = _SCORE_RANGES[severity]
    year = rng.randint(2010, 2025)
    children: list[tuple[str, str]] = []
    if severity == 0:
        synopsis = f"It is possible to gather information about the remote host ({name.lower()})."
        description = f"Nessus was able to collect the following information: {name}. " + " ".join(
            rng.sample(_FILLER[:3], 2)
        )
        solution = "n/a"
        output = rng.choice(
            [
                "\nInformation about this scan : \n\nNessus version : 10.7.1\nScanner IP : 10.0.0.5\n"
                "Port scanner(s) : nessus_syn_scanner\nTarget : {ip}\n",
                "\nRemote operating system : {os}\nConfidence level : 95\nMethod : SSH\n",
                "Port " + str(port) + "/" + proto + " was found to be open",
                "\nThe FQDN for the remote host has been determined to be :\n\n  Host : {fqdn}\n",
            ]
        )
    else:
        synopsis = f"The remote host is affected by {rng.choice(_FLAWS).lower()}."
        description = (
            f"The version of the software installed on the remote host is prior to {year}.{rng.randint(1, 12)}. "
            f"It is, therefore, affected by {rng.randint(1, 12)} vulnerabilities as referenced in the advisory. "
            + " ".join(rng.sample(_IMPACTS, 2))
            + " "
            + " ".join(rng.sample(_FILLER, 3))
        )
        solution = "Upgrade to the latest version or apply the vendor-supplied patch."
        installed = f"{rng.randint(0, 8)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        output = (
            f"\n  URL               : https://{{fqdn}}:{port}/\n  Installed version : {installed}\n"
            f"  Fixed version     : {year}.{rng.randint(1, 12)} (or later; versions < {year} are affected)\n"
        )
        cvss3 = round(rng.uniform(low, high), 1)
        cvss2 = round(min(10.0, max(0.1, cvss3 - rng.uniform(0, 1.5))), 1)
        av = rng.choice(["N", "N", "L", "A"])
        children += [
            ("cvss3_base_score", f"{cvss3}"),
            ("cvss3_vector", f"CVSS:3.0/AV:{av}/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:{rng.choice('NLH')}"),
            ("cvss_base_score", f"{cvss2}"),
            ("cvss_vector", f"CVSS2#AV:{av}/AC:L/Au:N/C:P/I:P/A:P"),
        ]
        if rng.random() < 0.8:
            children.append(("vpr_score", f"{round(rng.uniform(0.1, 10.0), 1)}"))
        if rng.random() < 0.6:
            children.append(("epss_score", f"{round(rng.uniform(0.0001, 0.97), 4)}"))
        children.append(("exploit_available", rng.choice(["true", "false"])))
        children.append(
            ("patch_publication_date", f"{year}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}")
        )
        children += [
            ("cve", f"CVE-{year}-{rng.randint(1000, 49999)}") for _ in range(rng.choice([1, 1, 2, 3, 5]))
        ]
        if rng.random() < 0.5:
            cwe = rng.choice([20, 79, 89, 119, 200, 287, 295, 326, 400, 787])
            children += [("cwe", str(cwe)), ("xref", f"CWE:{cwe}")]  # real exports carry both forms
    risk = _RISK[severity]
    if rng.random() < 0.1:
        risk = risk.upper()  # real exports mix the case
    see_also = "\n".join(
        f"https://www.tenable.com/plugins/nessus/{pid}?ref={rng.randint(1, 999)}"
        for _ in range(rng.randint(0, 3))
    )
    children = [
        ("description", description),
        ("fname", f"{re.sub(r'[^a-z0-9]+', '_', name.lower())[:40]}.nasl"),
        ("plugin_modification_date", f"{min(year + 1, 2025)}/03/14"),
        ("plugin_name", name),
        ("plugin_publication_date", f"{year}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}"),
        ("plugin_type", "remote" if port else "local"),
        ("risk_factor", risk),
        ("script_version", f"1.{rng.randint(1, 40)}"),
        *([("see_also", see_also)] if see_also else []),
        ("solution", solution),
        ("synopsis", synopsis),
        *children,
    ]
    open_tag = (
        f'<ReportItem port="{port}" svc_name="{svc}" protocol="{proto}" severity="{severity}" '
        f'pluginID="{pid}" pluginName={quoteattr(name)} pluginFamily={quoteattr(family)}>\n'
    )
    body = "".join(f"<{tag}>{escape(text)}</{tag}>\n" for tag, text in children)
    return _Plugin(pid, name, family, severity, open_tag, body, escape(output), port, proto)


# ---------------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    history_id: int
    uuid: str
    creation_date: int
    status: str
    launched_at: float | None = None
    duration: float = 0.0
    alt_targets: list[str] | None = None


@dataclass
class _Scan:
    id: int
    kind: str
    name: str
    schedule_uuid: str
    folder_id: int
    type: str
    policy: str
    policy_id: int
    scanner_name: str
    targets: str | None
    tag_targets: list[str] | None
    hosts: int
    findings_per_host: int
    creation_date: int
    owner: str = "secops@example.com"
    agent_groups: list[str] = field(default_factory=list)
    enabled: bool = False
    control: bool = True
    rrules: str | None = None
    starttime: str | None = None
    timezone: str | None = None
    launch_outcome: str = "completed"
    runs: list[_Run] = field(default_factory=list)  # oldest first; the API shows newest first


@dataclass
class _Export:
    scan_id: int
    run: _Run
    created: float
    polls: int = 0
    done: bool = False


@dataclass
class _Fault:
    name: str
    scan_id: int | None
    key: str | None
    path: str | None
    method: str | None
    times: int | None
    every: int
    after: int
    params: dict[str, Any]
    seen: int = 0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the simulator received (never the keys): `auth` is valid/forbidden/invalid/missing."""

    method: str
    path: str
    query: dict[str, str]
    has_api_keys_header: bool
    body: Any
    auth: str


class _CutStream(Exception):
    """Raised inside a download generator to drop the connection mid-body."""


# Trash first, as real accounts list it (a client that trusts a broken folder filter lands in Trash).
_FOLDERS = [
    {"id": 3, "name": "Trash", "type": "trash", "custom": 0, "default_tag": 0, "unread_count": 0},
    {"id": 2, "name": "My Scans", "type": "main", "custom": 0, "default_tag": 1, "unread_count": 0},
    {"id": 5, "name": "Production", "type": "custom", "custom": 1, "default_tag": 0, "unread_count": 0},
    {"id": 6, "name": "Branch offices", "type": "custom", "custom": 1, "default_tag": 0, "unread_count": 0},
]
_TAGS = [
    ("Location", "Dallas"),
    ("Environment", "Production"),
    ("Business Unit", "Payments"),
    ("Cloud", "AWS"),
]
_AGENT_GROUPS = [("Branch laptops", 2), ("Remote workers", 14), ("Kiosks", 0)]
# (kind, name, folder, type, runs, latest status, policy) — one of each shape the UI must handle.
_ROSTER = [
    ("completed", "Web tier - weekly", 2, "ps", 4, "completed", "Basic Network Scan"),
    ("never_run", "New scan (never run)", 2, "ps", 0, "empty", "Basic Network Scan"),
    ("agent", "Branch laptops (agents)", 6, "agent", 2, "completed", "Basic Agent Scan"),
    ("running", "Datacenter core", 5, "ps", 3, "running", "Advanced Network Scan"),
    ("canceled", "DMZ perimeter", 2, "ps", 2, "canceled", "Basic Network Scan"),
    ("aborted", "PCI quarterly", 5, "ps", 2, "aborted", "PCI Quarterly External Scan"),
    ("imported", "Imported Nessus Pro scan", 2, "ps", 1, "imported", "Basic Network Scan"),
    ("scheduled", "Monday morning scan", 2, "ps", 3, "completed", "Basic Network Scan"),
    ("windows", "Windows servers", 5, "ps", 2, "completed", "Credentialed Patch Audit"),
    ("linux", "Linux servers", 5, "ps", 3, "completed", "Credentialed Patch Audit"),
    ("trash", "Old lab scan", 3, "ps", 1, "completed", "Basic Network Scan"),
    ("cloud", "Cloud VPC (tag targets)", 2, "ps", 2, "completed", "Basic Network Scan"),
]
_ROLES = [
    ("web", "Linux Kernel 5.15.0-91-generic on Ubuntu 22.04"),
    ("db", "Linux Kernel 4.18.0-513.el8.x86_64 on Red Hat Enterprise Linux 8"),
    ("app", "Linux Kernel 5.10.0-26-amd64 on Debian 11"),
    ("dc", "Microsoft Windows Server 2019 Standard"),
    ("fs", "Microsoft Windows Server 2016 Datacenter"),
    ("mail", "Linux Kernel 5.14.0 on Rocky Linux 9"),
    ("vpn", "Cisco ASA 9.12"),
    ("esx", "VMware ESXi 7.0.3"),
]


@dataclass(frozen=True, slots=True)
class _Host:
    index: int
    ip: str
    fqdn: str | None
    netbios: str | None
    os: str
    mac: str
    uuid: str


# ---------------------------------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------------------------------


class TenableSimulator:
    """A fake Tenable.io as a WSGI callable; deterministic from `seed`, stateful, with injectable faults."""

    def __init__(
        self,
        *,
        access_key: str = "sim-access",
        secret_key: str = "sim-secret",  # noqa: S107 - the simulator's published demo key
        forbidden_access_key: str = "sim-forbidden-access",
        forbidden_secret_key: str = "sim-forbidden-secret",  # noqa: S107
        seed: int = 1,
        scans: int = 12,
        hosts_per_scan: int = 20,
        findings_per_host: int = 15,
        launch_seconds: float = 6.0,
        churn: float = 0.05,
        clock: Callable[[], float] = time.time,
        export_seconds: float = 0.0,
        export_loading_polls: int = 1,
        hosts_down: int = 1,
        gzip_downloads: bool = False,
        faults: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.keys = (access_key, secret_key)
        self.forbidden_keys = (forbidden_access_key, forbidden_secret_key)
        self.seed = seed
        self.hosts_per_scan = hosts_per_scan
        self.findings_per_host = findings_per_host
        self.launch_seconds = launch_seconds
        self.churn = churn
        self.clock = clock
        self.export_seconds = export_seconds
        self.export_loading_polls = export_loading_polls
        self.hosts_down = hosts_down
        self.gzip_downloads = gzip_downloads
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._exports: dict[str, _Export] = {}
        self._catalogue: list[_Plugin] = []
        self._summary_cache: dict[tuple[int, int], tuple[list, list]] = {}
        self._scans: dict[int, _Scan] = {}
        self._next_history_id = 15_184_619
        self._now = int(clock())
        rng = random.Random(seed)
        self.tag_values = {
            _uuid(seed, 0x7A6, i): {"category_name": c, "value": v} for i, (c, v) in enumerate(_TAGS)
        }
        self.agent_groups = [
            {"id": 102_009 + i, "uuid": _uuid(seed, 0xA6, i), "name": name, "agents_count": count}
            for i, (name, count) in enumerate(_AGENT_GROUPS)
        ]
        for n in range(scans):
            extra = ("segment", f"Network segment {n + 1}", 2, "ps", 2, "completed", "Basic Network Scan")
            self._add(*(_ROSTER[n] if n < len(_ROSTER) else extra), rng)
        for name, params in (faults or {}).items():
            self.set_fault(name, **params)

    # -- building data ------------------------------------------------------------------------------

    def _add(
        self,
        kind: str,
        name: str,
        folder: int,
        scan_type: str,
        runs: int,
        status: str,
        policy: str,
        rng: random.Random,
        *,
        hosts: int | None = None,
        findings_per_host: int | None = None,
    ) -> _Scan:
        scan_id = 101 + 3 * len(self._scans)
        hosts = self.hosts_per_scan if hosts is None else hosts
        net = scan_id % 200
        scan = _Scan(
            id=scan_id,
            kind=kind,
            name=name,
            schedule_uuid=f"template-{_uuid(self.seed, scan_id, 5)}{_mix(self.seed, scan_id) & 0xFFFFFFFFFFFF:012x}",
            folder_id=folder,
            type=scan_type,
            policy=policy,
            policy_id=170 + len(self._scans),
            scanner_name="US Cloud Scanner" if scan_type == "ps" else "Agent Scanner",
            targets=f"10.{net}.0.0/{24 if hosts <= 250 else 16},gateway{net}.corp.example.com",
            tag_targets=None,
            hosts=hosts,
            findings_per_host=self.findings_per_host if findings_per_host is None else findings_per_host,
            creation_date=self._now - 120 * 86400,
        )
        if kind == "agent":
            scan.targets = None
            scan.agent_groups = [g["uuid"] for g in self.agent_groups[:2]]
        elif kind == "cloud":
            scan.targets = None
            scan.tag_targets = list(self.tag_values)[2:4]
        elif kind == "completed":
            scan.tag_targets = list(self.tag_values)[:2]
        elif kind == "scheduled":
            scan.enabled, scan.rrules = True, "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO"
            scan.starttime, scan.timezone = "20181003T010000", "US/Central"
        elif kind == "imported":
            scan.control = False
        elif kind in ("canceled", "aborted"):
            scan.launch_outcome = kind
        for k in range(runs):
            age = (runs - 1 - k) * 14 * 86400 + rng.randint(1, 6) * 3600
            run_status = status if k == runs - 1 else "completed"
            run_uuid = (
                "".join(f"{_mix(self.seed, scan_id, k, n):016x}" for n in range(4))[:52]
                if kind == "imported"
                else _uuid(self.seed, scan_id, k, 0x70)
            )
            scan.runs.append(_Run(self._new_history_id(), run_uuid, self._now - age, run_status))
        self._scans[scan_id] = scan
        return scan

    def _new_history_id(self) -> int:
        self._next_history_id += 7
        return self._next_history_id

    def add_scan(
        self,
        name: str,
        *,
        hosts: int | None = None,
        findings_per_host: int | None = None,
        runs: int = 1,
        status: str = "completed",
        scan_type: str = "ps",
        folder_id: int = 2,
        launch_outcome: str = "completed",
    ) -> int:
        """Add a scan with `runs` runs (the latest in `status`); returns its id."""
        with self._lock:
            scan = self._add(
                "custom", name, folder_id, scan_type, runs, status, "Basic Network Scan",
                random.Random(self.seed + len(self._scans)), hosts=hosts, findings_per_host=findings_per_host,
            )  # fmt: skip
            scan.launch_outcome = launch_outcome
            return scan.id

    def big_scan(self, hosts: int, findings_per_host: int, name: str = "Benchmark scan") -> int:
        """A completed one-run scan of hosts × findings_per_host items, for benchmarks."""
        return self.add_scan(name, hosts=hosts, findings_per_host=findings_per_host)

    def scan_id(self, kind: str) -> int:
        """The id of the first default scan of a kind (completed, never_run, agent, running, …)."""
        return next(s.id for s in self._scans.values() if s.kind == kind)

    def history_ids(self, scan_id: int) -> list[int]:
        """The scan's run ids, oldest first."""
        return [run.history_id for run in self._scans[scan_id].runs]

    def export_document(self, scan_id: int, history_id: int | None = None) -> Iterator[bytes]:
        """The `.nessus` export of a run as the download streams it (for writing benchmark files)."""
        scan = self._scans[scan_id]
        return self._document(scan, self._run(scan, history_id) if history_id is not None else scan.runs[-1])

    def set_launch_outcome(self, scan_id: int, outcome: str) -> None:
        """How launched runs of this scan end: completed, canceled or aborted."""
        with self._lock:
            self._scans[scan_id].launch_outcome = outcome

    # -- faults and recorded requests ---------------------------------------------------------------

    def set_fault(
        self,
        name: str,
        scan_id: int | None = None,
        *,
        key: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = None,
        every: int = 1,
        after: int = 0,
        **params: Any,
    ) -> None:
        """Inject a fault (see FAULTS), limited to a scan, an access key, a path substring or a method.

        It fires on every `every`-th matching call after the first `after`, at most `times` times.
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if name == "flap" and times is None:
            times = 1
        with self._lock:
            self._faults.append(_Fault(name, scan_id, key, path, method, times, max(every, 1), after, params))

    def clear_faults(self, name: str | None = None) -> None:
        """Remove every fault, or those with this name."""
        with self._lock:
            self._faults = [f for f in self._faults if name is not None and f.name != name]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def _fault(self, name: str, ctx: dict[str, Any]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name != name:
                    continue
                if fault.scan_id is not None and fault.scan_id != ctx["scan_id"]:
                    continue
                if fault.key is not None and fault.key != ctx["access_key"]:
                    continue
                if fault.path is not None and fault.path not in ctx["path"]:
                    continue
                if fault.method is not None and fault.method.upper() != ctx["method"]:
                    continue
                fault.seen += 1
                if fault.seen <= fault.after or (fault.seen - fault.after) % fault.every:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    # -- serving ------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Serve on a background thread; returns the running server (`.url`, `.port`, `.stop()`)."""
        return SimulatorServer(self, host, port)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = "/" + environ.get("PATH_INFO", "").strip("/")  # wsgiref has already unquoted it
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) if method == "POST" else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        header = environ.get("HTTP_X_APIKEYS")
        auth, access_key = self._auth(header)
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, header is not None, body, auth))
        match = re.match(r"^/scans/([^/]+)", path)
        scan = self._lookup(match.group(1)) if match else None
        ctx = {"method": method, "path": path, "access_key": access_key, "scan_id": scan.id if scan else None}
        slow = self._fault("slow", ctx)
        if slow:
            time.sleep(float(slow.params.get("seconds", 1.0)))
        denied = _DENIED.get(auth) or (_DENIED["forbidden"] if self._fault("forbidden", ctx) else None)
        if denied:
            return _json(start_response, denied["statusCode"], denied)
        limited = self._fault("rate_limit", ctx)
        if limited:
            return _rate_limited(start_response, limited.params.get("retry_after", "1"))
        flap = self._fault("flap", ctx)
        if flap:
            status = int(flap.params.get("status", 503))
            return _json(start_response, status, _error_body(status))
        for route_method, pattern, handler in self._routes:
            found = re.match(pattern, path)
            if found and route_method == method:
                return handler(
                    self,
                    start_response,
                    ctx=ctx,
                    query=query,
                    body=body,
                    environ=environ,
                    **found.groupdict(),
                )
        return _json(start_response, 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

    def _auth(self, header: str | None) -> tuple[str, str | None]:
        if not header:
            return "missing", None
        parts = {}
        for piece in header.split(";"):
            name, sep, value = piece.strip().partition("=")
            if sep:
                parts[name.strip().lower()] = value.strip()
        pair = (parts.get("accesskey"), parts.get("secretkey"))
        if pair == self.keys:
            return "valid", pair[0]
        if pair == self.forbidden_keys:
            return "forbidden", pair[0]
        return "invalid", None

    def _lookup(self, ref: str) -> _Scan | None:
        if self._fault_active("no_scans"):
            return None
        if ref.isdigit():
            return self._scans.get(int(ref))
        return next((s for s in self._scans.values() if s.schedule_uuid == ref), None)

    def _fault_active(self, name: str) -> bool:
        with self._lock:
            return any(f.name == name and (f.times is None or f.times > 0) for f in self._faults)

    # -- run state ----------------------------------------------------------------------------------

    def _status(self, scan: _Scan, run: _Run) -> str:
        if run.launched_at is None:
            return run.status
        elapsed = self.clock() - run.launched_at
        if elapsed >= run.duration:
            return scan.launch_outcome
        fraction = elapsed / run.duration if run.duration else 1.0
        return "pending" if fraction < 0.1 else "running" if fraction < 0.7 else "publishing"

    def _modified(self, run: _Run) -> int:
        if run.launched_at is None:
            return run.creation_date + 3600
        return run.creation_date + int(min(max(self.clock() - run.launched_at, 0), run.duration))

    def _host(self, scan: _Scan, i: int) -> _Host:
        h = _mix(self.seed, scan.id, i, 0x4057)
        if scan.type == "agent":
            role, os_name = "lt", ("Microsoft Windows 11 Enterprise" if h & 1 else "macOS 14.4")
        else:
            role, os_name = _ROLES[h % len(_ROLES)]
        short = f"{role}{i + 1:03d}"
        return _Host(
            index=i,
            ip=f"10.{scan.id % 200}.{i // 250}.{i % 250 + 1}",
            fqdn=None if h % 9 == 4 else f"{short}.corp.example.com",
            netbios=short.upper() if "Windows" in os_name or h % 3 == 0 else None,
            os=os_name,
            mac=f"00:50:56:{(h >> 8) & 255:02x}:{(h >> 16) & 255:02x}:{(h >> 24) & 255:02x}",
            uuid=_uuid(self.seed, scan.id, i, 0x0D),
        )

    def _hosts_in(self, scan: _Scan, run: _Run) -> list[int]:
        k = scan.runs.index(run)
        status = self._status(scan, run)
        count = scan.hosts
        if status in ACTIVE_STATUSES or status in ("aborted", "canceled", "stopped"):
            count = math.ceil(count / 2)  # partial results
        down = set()
        if k >= 1 and scan.hosts >= 2:  # a host that was down for this run (not "fixed")
            down = {(_mix(self.seed, scan.id, k) + d) % scan.hosts for d in range(self.hosts_down)}
        return [i for i in range(count) if i not in down]

    def _plugin_at(self, index: int) -> _Plugin:
        catalogue = self._catalogue
        if index >= len(catalogue):
            with self._lock:
                while len(catalogue) <= index:
                    catalogue.append(_plugin(self.seed, len(catalogue)))
        return catalogue[index]

    def _plugins_for(self, scan: _Scan, k: int, i: int) -> list[int]:
        """Catalogue indices on host i in run k: distinct, and each slot changes once every 1/churn runs."""
        per_host = scan.findings_per_host
        size = max(400, 2 * per_host)
        lanes = size // per_host
        h = _mix(self.seed, scan.id, i)
        offset = h % size
        period = round(1 / self.churn) if self.churn > 0 else 0
        if not period:
            return [(offset + j) % size for j in range(per_host)]
        out = []
        for j in range(per_host):
            phase = ((((h ^ (j * 0x9E3779B97F4A7C15)) * 0xBF58476D1CE4E5B9) & _MASK) >> 40) % period
            out.append((offset + j + per_host * (((k + phase) // period) % lanes)) % size)
        return out

    def findings(
        self, scan_id: int, history_id: int | None = None
    ) -> Iterator[tuple[str, int, int, str, int]]:
        """(host ip, plugin id, port, protocol, severity) of a run, as its export will contain them."""
        scan = self._scans[scan_id]
        run = self._run(scan, history_id) if history_id is not None else scan.runs[-1]
        k = scan.runs.index(run)
        for i in self._hosts_in(scan, run):
            ip = self._host(scan, i).ip
            for index in self._plugins_for(scan, k, i):
                p = self._plugin_at(index)
                yield ip, p.id, p.port, p.protocol, p.severity

    def _run(self, scan: _Scan, ref: Any) -> _Run | None:
        ref = str(ref)
        return next((r for r in scan.runs if str(r.history_id) == ref or r.uuid == ref), None)

    # -- endpoints ----------------------------------------------------------------------------------

    def _list_scans(self, start_response: Callable, *, query: dict, ctx: dict, **_: Any) -> list[bytes]:
        with self._lock:
            if self._fault("no_scans", ctx):
                return _json(
                    start_response, 200, {"folders": _FOLDERS, "scans": None, "timestamp": int(self.clock())}
                )
            scans = list(self._scans.values())
            ignored = self._fault("ignore_folder_filter", ctx) if "folder_id" in query else None
            if ignored is not None and ignored.params.get("mode", "all") == "trash":
                trash = next(str(f["id"]) for f in _FOLDERS if f["type"] == "trash")
                scans = scans if query["folder_id"] == trash else []
            elif "folder_id" in query and ignored is None:
                scans = [s for s in scans if str(s.folder_id) == query["folder_id"]]
            if query.get("last_modification_date", "").isdigit():
                since = int(query["last_modification_date"])
                scans = [s for s in scans if s.runs and self._modified(s.runs[-1]) > since]
            items = [self._list_item(s) for s in scans]
        return _json(
            start_response, 200, {"folders": _FOLDERS, "scans": items, "timestamp": int(self.clock())}
        )

    def _list_item(self, scan: _Scan) -> dict[str, Any]:
        latest = scan.runs[-1] if scan.runs else None
        return {
            "id": scan.id,
            "uuid": latest.uuid if latest else None,
            "schedule_uuid": scan.schedule_uuid,
            "name": scan.name,
            "status": self._status(scan, latest) if latest else "empty",
            "type": scan.type if latest else None,
            "owner": scan.owner,
            "enabled": scan.enabled,
            "control": scan.control,
            "read": True,
            "shared": False,
            "permissions": 128,
            "user_permissions": 128,
            "creation_date": scan.creation_date if latest else 0,
            "last_modification_date": self._modified(latest) if latest else 0,
            "rrules": scan.rrules,
            "starttime": scan.starttime,
            "timezone": scan.timezone,
            "policy_id": scan.policy_id,
            "template_uuid": "731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65",
            "wizard_uuid": "731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65",
        }

    def _folders(self, start_response: Callable, **_: Any) -> list[bytes]:
        return _json(start_response, 200, {"folders": _FOLDERS})

    def _session(self, start_response: Callable, **_: Any) -> list[bytes]:
        return _json(
            start_response,
            200,
            {
                "id": 2_309_095,
                "username": "secops@example.com",
                "email": "secops@example.com",
                "name": "SecOps Integration",
                "type": "local",
                "permissions": 64,
                "container_id": 7012,
                "container_uuid": _uuid(self.seed, 0xC0),
                "container_name": "Example Corp",
                "enabled": True,
                "lastlogin": self._now - 3600,
            },
        )

    def _scan_details(self, start_response: Callable, *, scan: str, query: dict, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            ref = query.get("history_id") or query.get("history_uuid")
            run = (self._run(found, ref) if ref else found.runs[-1]) if found.runs else None
            if ref and run is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            info: dict[str, Any] = {
                "name": found.name,
                "owner": found.owner,
                "status": self._status(found, run) if run else "empty",
                "uuid": run.uuid if run else None,
                "object_id": found.id,
                "schedule_uuid": found.schedule_uuid,
                "folder_id": found.folder_id,
                "policy": found.policy,
                "scanner_name": found.scanner_name,
                "targets": ",".join(run.alt_targets) if run and run.alt_targets else found.targets,
                "tag_targets": found.tag_targets,
                "scan_type": found.type if found.runs else None,
                "scan_start": run.creation_date if run else None,
                "scan_end": self._modified(run) if run else None,
                "timestamp": int(self.clock()),
                "control": found.control,
                "edit_allowed": False,
                "user_permissions": 128,
                "is_archived": bool(run and self._archived(run)),
                "haskb": True,
                "alt_targets_used": bool(run and run.alt_targets),
            }
            hosts: list = []
            vulns: list = []
            if run:
                host_ids = self._hosts_in(found, run)
                if found.control:
                    info["hostcount"] = len(host_ids)  # imported scans have no hostcount
                if not self._archived(run):
                    hosts, vulns = self._summaries(found, run)
            history = [
                {
                    "history_id": r.history_id,
                    "uuid": r.uuid,
                    "status": self._status(found, r),
                    "type": found.type,
                    "scheduler": 1 if found.rrules else 0,
                    "creation_date": r.creation_date,
                    "last_modification_date": self._modified(r),
                    "owner_id": 2_309_095,
                    "alt_targets_used": bool(r.alt_targets),
                    "is_archived": self._archived(r),
                }
                for r in reversed(found.runs)
            ]
        body = {
            "info": info,
            "hosts": hosts,
            "vulnerabilities": vulns,
            "history": history,
            "comphosts": [],
            "compliance": [],
            "notes": [],
            "filters": [],
            "remediations": {
                "remediations": [],
                "num_hosts": len(hosts),
                "num_cves": 0,
                "num_impacted_hosts": 0,
            },
        }
        return _json(start_response, 200, body)

    def _archived(self, run: _Run) -> bool:
        return self.clock() - run.creation_date > ARCHIVE_AFTER

    def _summaries(self, scan: _Scan, run: _Run) -> tuple[list, list]:
        key = (scan.id, run.history_id)
        status = self._status(scan, run)
        if key in self._summary_cache and status not in ACTIVE_STATUSES:
            return self._summary_cache[key]
        k = scan.runs.index(run)
        hosts, plugin_counts = [], {}
        for i in self._hosts_in(scan, run):
            counts = [0] * 5
            for index in self._plugins_for(scan, k, i):
                p = self._plugin_at(index)
                counts[p.severity] += 1
                plugin_counts[index] = plugin_counts.get(index, 0) + 1
            host = self._host(scan, i)
            hosts.append(
                {
                    "host_id": i + 1,
                    "asset_id": i + 1,
                    "uuid": host.uuid,
                    "hostname": host.ip,
                    "critical": counts[4],
                    "high": counts[3],
                    "medium": counts[2],
                    "low": counts[1],
                    "info": counts[0],
                    "severity": sum(counts),
                    "score": counts[4] * 10000
                    + counts[3] * 1000
                    + counts[2] * 100
                    + counts[1] * 10
                    + counts[0],
                    "progress": "100-100/200-200",
                    "scanprogresscurrent": 100,
                    "scanprogresstotal": 100,
                }
            )
        vulns = [
            {
                "plugin_id": self._plugin_at(index).id,
                "plugin_name": self._plugin_at(index).name,
                "plugin_family": self._plugin_at(index).family,
                "severity": self._plugin_at(index).severity,
                "severity_index": n,
                "count": count,
                "vuln_index": n,
            }
            for n, (index, count) in enumerate(sorted(plugin_counts.items()))
        ]
        if status not in ACTIVE_STATUSES:
            self._summary_cache[key] = (hosts, vulns)
        return hosts, vulns

    def _latest_status(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            status = self._status(found, found.runs[-1]) if found.runs else "empty"
        return _json(start_response, 200, {"status": status})

    def _launch(self, start_response: Callable, *, scan: str, body: Any, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            if not found.control:
                return _json(start_response, 403, {"error": "You are not authorized to perform this request"})
            if found.runs and self._status(found, found.runs[-1]) in ACTIVE_STATUSES:
                # (inferred) Tenable does not document this answer; 409 is what clients must handle.
                return _json(
                    start_response,
                    409,
                    {"statusCode": 409, "error": "Conflict", "message": "Scan is already running"},
                )
            active = sum(
                1 for s in self._scans.values() if s.runs and self._status(s, s.runs[-1]) in ACTIVE_STATUSES
            )
            if active >= MAX_ACTIVE_SCANS:
                return _rate_limited(start_response, "60")
            alt = body.get("alt_targets") if isinstance(body, dict) else None
            run = _Run(
                history_id=self._new_history_id(),
                uuid=_uuid(self.seed, found.id, len(found.runs), 0x70),
                creation_date=int(self.clock()),
                status="pending",
                launched_at=self.clock(),
                duration=self.launch_seconds,
                alt_targets=list(alt) if alt else None,
            )
            found.runs.append(run)
        return _json(start_response, 200, {"scan_uuid": run.uuid})

    def _stop(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            run = found.runs[-1] if found.runs else None
            if run is None or self._status(found, run) not in ACTIVE_STATUSES:
                return _json(
                    start_response,
                    409,
                    {"statusCode": 409, "error": "Conflict", "message": "Scan is not active"},
                )
            run.launched_at, run.status = None, "canceled"
        return _json(start_response, 200, {})

    def _export(
        self, start_response: Callable, *, scan: str, query: dict, body: Any, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            if found is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            fmt = body.get("format") if isinstance(body, dict) else None
            if fmt != "nessus":
                return _json(
                    start_response, 400, {"error": f"Invalid 'format' field: {fmt!r} (only nessus here)"}
                )
            ref = query.get("history_id") or query.get("history_uuid")
            run = (self._run(found, ref) if ref else found.runs[-1]) if found.runs else None
            if run is None:
                return _json(start_response, 404, {"error": "Scan not found"})
            loading = sum(1 for e in self._exports.values() if not e.done)
            if loading >= MAX_ACTIVE_EXPORTS:
                return _rate_limited(start_response, "30")
            file_id = f"SSE-{run.uuid}-nessus"
            self._exports[file_id] = _Export(found.id, run, self.clock())
        return _json(start_response, 200, {"file": file_id, "temp_token": _uuid(self.seed, found.id, 0xE7)})

    def _export_status(
        self, start_response: Callable, *, scan: str, file: str, ctx: dict, **_: Any
    ) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
            export = self._exports.get(file)
            if found is None or export is None or export.scan_id != found.id:
                return _json(start_response, 404, {"error": "The requested file was not found"})
            if self._fault("export_error", ctx):
                export.done = True
                return _json(start_response, 200, {"status": "error"})
            export.polls += 1
            waiting = (
                export.polls <= self.export_loading_polls
                or self.clock() < export.created + self.export_seconds
            )
            if waiting or self._fault("export_stuck", ctx):
                return _json(start_response, 200, {"status": "loading"})
            export.done = True
        return _json(start_response, 200, {"status": "ready"})

    def _download(
        self, start_response: Callable, *, scan: str, file: str, ctx: dict, environ: dict, **_: Any
    ) -> Iterable[bytes]:
        with self._lock:
            found = self._lookup(scan)
            export = self._exports.get(file)
            if found is None or export is None or export.scan_id != found.id:
                return _json(start_response, 404, {"error": "The requested file was not found"})
            export.done = True
            truncated = self._fault("truncated_download", ctx)
            malformed = self._fault("malformed_xml", ctx)
            bomb = self._fault("gzip_bomb", ctx)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", found.name).strip("_") or "scan"
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", f'attachment; filename="{safe}_{export.run.history_id}.nessus"'),
            ("Cache-Control", "no-store"),
        ]
        mode = truncated.params.get("mode", "chunked") if truncated else None
        body = self._document(found, export.run, cut=mode, malformed=bool(malformed))
        if bomb:
            headers += [("Content-Encoding", "gzip"), ("X-Sim-Chunked", "1")]
            start_response("200 OK", headers)
            return _gzip(_bomb(int(bomb.params.get("size", 1 << 30))), level=9)
        if mode == "length":
            headers.append(("Content-Length", str(10**9)))  # promises far more than will come
        elif mode != "close":
            headers.append(("X-Sim-Chunked", "1"))  # the server frames it as Transfer-Encoding: chunked
        if self.gzip_downloads and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "") and mode is None:
            headers.append(("Content-Encoding", "gzip"))
            body = _gzip(body)
        start_response("200 OK", headers)
        return body

    def _document(
        self, scan: _Scan, run: _Run, *, cut: str | None = None, malformed: bool = False
    ) -> Iterator[bytes]:
        """The `.nessus` v2 export of a run, generated host by host (never whole in memory)."""
        k = scan.runs.index(run)
        host_ids = self._hosts_in(scan, run)
        if cut:
            host_ids = host_ids[: max(1, len(host_ids) // 2)]
        yield (
            '<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>'
            f"{escape(scan.policy)}</policyName><Preferences><ServerPreferences><preference><name>TARGET</name>"
            f"<value>{escape(scan.targets or '')}</value></preference></ServerPreferences></Preferences>"
            f'</Policy>\n<Report name={quoteattr(scan.name)} xmlns:cm="http://www.nessus.org/cm">\n'
        ).encode()
        parts: list[str] = []
        size = 0
        for n, i in enumerate(host_ids):
            host = self._host(scan, i)
            start = run.creation_date + 60 + 3 * i
            values = {"ip": host.ip, "fqdn": host.fqdn or host.ip, "os": escape(host.os)}
            tags = [
                ("HOST_END_TIMESTAMP", str(start + 600)),
                ("HOST_END", time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(start + 600))),
                ("operating-system", host.os),
                ("mac-address", host.mac),
                ("host-ip", host.ip),
                ("host-uuid", host.uuid),
                ("host-fqdn", host.fqdn),
                ("netbios-name", host.netbios),
                ("HOST_START_TIMESTAMP", str(start)),
                ("HOST_START", time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(start))),
            ]
            mark = len(parts)
            parts.append(f'<ReportHost name="{host.ip}"><HostProperties>\n')
            parts.extend(f'<tag name="{name}">{escape(value)}</tag>\n' for name, value in tags if value)
            parts.append("</HostProperties>\n")
            for index in self._plugins_for(scan, k, i):
                p = self._plugin_at(index)
                parts.append(p.open_tag)
                parts.append(p.body)
                parts.append(f"<plugin_output>{p.output.format_map(values)}</plugin_output>\n</ReportItem>\n")
            if malformed and n == 0:
                parts.append('<ReportItem port="80" severity="2"><description>unclosed</ReportItem>\n')
            parts.append("</ReportHost>\n")
            size += sum(len(part) for part in parts[mark:])
            if size >= _CHUNK_TARGET or len(parts) > 4096:
                yield "".join(parts).encode()
                parts, size = [], 0
        if parts:
            yield "".join(parts).encode()
        if cut == "chunked":
            raise _CutStream
        if cut:
            return
        yield b"</Report>\n</NessusClientData_v2>\n"

    def _tag_value(self, start_response: Callable, *, value: str, **_: Any) -> list[bytes]:
        tag = self.tag_values.get(value)
        if tag is None:
            return _json(start_response, 404, {"error": "Tag value not found"})
        body = {
            "uuid": value,
            "category_uuid": _uuid(self.seed, 0xCA7, [c for c, _ in _TAGS].index(tag["category_name"])),
            "category_name": tag["category_name"],
            "value": tag["value"],
            "description": "",
            "type": "static",
            "created_at": "2023-01-01T00:00:00.000Z",
            "created_by": "secops@example.com",
        }
        return _json(start_response, 200, body)

    def _editor(self, start_response: Callable, *, scan: str, **_: Any) -> list[bytes]:
        with self._lock:
            found = self._lookup(scan)
        if found is None:
            return _json(start_response, 404, {"error": "Scan not found"})
        inputs = [
            {"type": "entry", "name": "Name", "id": "name", "default": found.name, "required": True},
            {"type": "textarea", "name": "Description", "id": "description", "default": ""},
            {"type": "select", "name": "Folder", "id": "folder_id", "default": found.folder_id},
        ]
        if found.type == "agent":
            inputs.append(
                {
                    "type": "multiselect",
                    "name": "Agent Groups",
                    "id": "agent_group_id",
                    "default": found.agent_groups,
                }
            )
        else:
            inputs.append(
                {"type": "textarea", "name": "Targets", "id": "text_targets", "default": found.targets or ""}
            )
        body = {
            "uuid": "731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65",
            "name": "basic" if found.type != "agent" else "agent_basic",
            "title": found.policy,
            "owner": found.owner,
            "settings": {"basic": {"title": "Basic", "inputs": inputs}, "discovery": {"title": "Discovery"}},
        }
        return _json(start_response, 200, body)

    def _agent_groups(self, start_response: Callable, **_: Any) -> list[bytes]:
        groups = [
            {**g, "owner": "secops@example.com", "shared": 1, "user_permissions": 128}
            for g in self.agent_groups
        ]
        return _json(start_response, 200, {"groups": groups})

    def _filters(self, start_response: Callable, **_: Any) -> list[bytes]:
        return _json(start_response, 200, {"filters": []})

    _routes: list[tuple[str, str, Callable[..., Iterable[bytes]]]] = [
        ("GET", r"^/scans$", _list_scans),
        ("GET", r"^/folders$", _folders),
        ("GET", r"^/session$", _session),
        ("GET", r"^/scans/(?P<scan>[^/]+)$", _scan_details),
        ("GET", r"^/scans/(?P<scan>[^/]+)/latest-status$", _latest_status),
        ("POST", r"^/scans/(?P<scan>[^/]+)/launch$", _launch),
        ("POST", r"^/scans/(?P<scan>[^/]+)/stop$", _stop),
        ("POST", r"^/scans/(?P<scan>[^/]+)/export$", _export),
        ("GET", r"^/scans/(?P<scan>[^/]+)/export/(?P<file>[^/]+)/status$", _export_status),
        ("GET", r"^/scans/(?P<scan>[^/]+)/export/(?P<file>[^/]+)/download$", _download),
        ("GET", r"^/tags/values/(?P<value>[^/]+)$", _tag_value),
        ("GET", r"^/editor/scan/(?P<scan>[^/]+)$", _editor),
        ("GET", r"^/scanners/[^/]+/agent-groups$", _agent_groups),
        ("GET", r"^/filters/scans/reports$", _filters),
    ]


def _json(
    start_response: Callable, status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", _JSON), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


def _rate_limited(start_response: Callable, retry_after: str | None) -> list[bytes]:
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(_HTML_429)))]
    if retry_after is not None:
        headers.append(("retry-after", str(retry_after)))
    start_response("429 Too Many Requests", headers)
    return [_HTML_429]


def _error_body(status: int) -> dict[str, Any]:
    if status == 500:
        return {
            "statusCode": 500,
            "error": "Internal Server Error",
            "message": "An internal server error occurred. Please wait a moment and try your request again.",
        }
    phrase = HTTPStatus(status).phrase
    return {"statusCode": status, "error": phrase, "message": phrase}


def _gzip(chunks: Iterable[bytes], level: int = 1) -> Iterator[bytes]:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _bomb(size: int) -> Iterator[bytes]:
    """About `size` bytes of a `.nessus` file padded with comments after its root tag: compresses ~1000:1."""
    yield b"<NessusClientData_v2>"
    block = (b"<!--" + b" " * 1017 + b"-->") * 1024  # 1 MiB; comments, so no parser limit stops it first
    for start in range(0, size, len(block)):
        yield block[: size - start]


# ---------------------------------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------------------------------


class _Handler(ServerHandler):
    """wsgiref's handler, plus chunked framing when the app asks for it (wsgiref forbids the header)."""

    http_version = "1.1"
    _chunked = False
    _framing = False

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        if "X-Sim-Chunked" in self.headers:
            del self.headers["X-Sim-Chunked"]
            self.headers["Transfer-Encoding"] = "chunked"
            self._chunked = True
        self.headers["Connection"] = "close"

    def send_headers(self) -> None:
        super().send_headers()
        self._framing = self._chunked

    def _write(self, data: bytes) -> None:
        if self._framing:
            if not data:
                return
            data = b"%x\r\n%b\r\n" % (len(data), data)
        super()._write(data)

    def finish_content(self) -> None:
        super().finish_content()
        if self._framing:
            self._framing = False
            self._write(b"0\r\n\r\n")

    def log_exception(self, exc_info: Any) -> None:
        if not isinstance(exc_info[1], (_CutStream, ConnectionError)):
            super().log_exception(exc_info)

    def close(self) -> None:
        if self.status:
            super().close()  # logs the request (quietly) then closes
        else:
            SimpleHandler.close(self)


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet request logging
        pass

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _Handler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self) -> None:
        # Skips HTTPServer's reverse-DNS lookup of the bind address (slow without a resolver).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


class SimulatorServer:
    """A simulator served on a background thread: `.url`, `.port`, `.sim`, `.stop()`; a context manager."""

    def __init__(self, sim: TenableSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self._server = _Server((host, port), _RequestHandler)
        self._server.set_app(sim)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="tenable-simulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
