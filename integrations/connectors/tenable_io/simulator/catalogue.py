"""Deterministic building blocks: a fast integer hash, uuids from integers, and the plugin catalogue.

Every plugin is generated from (seed, index) alone, so the same seed always yields the same catalogue; the
order of random draws below is part of that contract (changing it changes every simulated finding).
"""

from __future__ import annotations

import random
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

MASK = (1 << 64) - 1


def mix(*values: int) -> int:
    """A fast deterministic 64-bit hash of integers (splitmix64 steps), for per-finding decisions."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = ((x ^ (v & MASK)) * 0xBF58476D1CE4E5B9) & MASK
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & MASK
        x ^= x >> 29
    return x


def uuid_of(*values: int) -> str:
    """A version-4-shaped uuid string determined by the integers."""
    return str(uuidlib.UUID(int=(mix(*values, 1) << 64) | mix(*values, 2), version=4))


def fast_uuid(h: int) -> str:
    """A uuid-shaped string from one 64-bit hash, cheaper than `uuid_of` (for a million finding ids)."""
    low = (h * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK
    s = f"{h:016x}{low:016x}"
    return f"{s[:8]}-{s[8:12]}-4{s[13:16]}-{'89ab'[low >> 62]}{s[17:20]}-{s[20:]}"


# (plugin id, name, family, severity, service, port, protocol) of plugins every real scan shows.
KNOWN_PLUGINS = [
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
PRODUCTS = [
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
FLAWS = [
    "Multiple Vulnerabilities",
    "Denial of Service",
    "Remote Code Execution",
    "Information Disclosure",
    "Privilege Escalation",
    "Security Bypass",
    "HTTP Request Smuggling",
    "Buffer Overflow",
]
PACKAGES = ["linux kernel", "openssl", "curl", "glibc", "sudo", "python3.10", "nss", "libxml2", "git", "vim"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]  # fmt: skip
IMPACTS = [
    "An unauthenticated, remote attacker can exploit this to execute arbitrary code.",
    "A remote attacker can exploit this to cause the service to stop responding.",
    "A local attacker can exploit this to gain elevated privileges.",
    "An attacker can exploit this to disclose potentially sensitive information.",
    "An attacker can exploit this to bypass authentication and access restricted resources.",
    "A man-in-the-middle attacker can exploit this to intercept or modify traffic.",
]
FILLER = [
    "Note that Nessus has not tested for these issues but has instead relied only on the application's "
    "self-reported version number.",
    "The affected component fails to properly validate user-supplied input before using it.",
    "Exploitation requires the attacker to be able to send specially crafted requests to the service.",
    "The vendor has released a patch and updated packages that address the issue.",
    "Public exploit code is available and the issue is known to be exploited in the wild.",
    "The remote service accepts connections encrypted using legacy protocol versions & weak ciphers.",
]
# Severity 1–4 weights and CVSS v3 ranges; 30 % of generated plugins are informational (severity 0).
SEVERITY_WEIGHTS = [45, 10, 25, 14, 6]
SCORE_RANGES = {0: (0.0, 0.0), 1: (1.0, 3.9), 2: (4.0, 6.9), 3: (7.0, 8.9), 4: (9.0, 10.0)}
RISK = ["None", "Low", "Medium", "High", "Critical"]
SEVERITY_WORDS = ["info", "low", "medium", "high", "critical"]


@dataclass(slots=True)
class Plugin:
    """One plugin: its `.nessus` fragments pre-rendered, plus the raw values the export JSON is built from."""

    id: int
    name: str
    family: str
    severity: int
    open_tag: str  # "<ReportItem ...>" with the plugin's attributes
    body: str  # every child element except plugin_output, pre-rendered and escaped
    output: str  # escaped plugin_output template with {ip} {fqdn} {os}
    port: int
    protocol: str
    service: str = "general"
    raw_output: str = ""  # the same template, unescaped
    children: list[tuple[str, str]] = field(default_factory=list)  # (element, text) as in the `.nessus`


def make_plugin(seed: int, index: int) -> Plugin:
    """Plugin number `index` of the catalogue, generated from (seed, index) alone."""
    rng = random.Random(mix(seed, index, 0xC47))
    if index < len(KNOWN_PLUGINS):
        pid, name, family, severity, svc, port, proto = KNOWN_PLUGINS[index]
    else:
        pid, name, family, severity, svc, port, proto = _generated_identity(rng, index)
    year = rng.randint(2010, 2025)
    if severity == 0:
        synopsis, description, solution, output = _informational_text(rng, name, port, proto)
        scored: list[tuple[str, str]] = []
    else:
        synopsis, description, solution, output = _vulnerability_text(rng, year, port)
        scored = _scored_children(rng, severity, year)
    children = _common_children(rng, pid, name, year, port, severity, synopsis, description, solution)
    children += scored
    open_tag = (
        f'<ReportItem port="{port}" svc_name="{svc}" protocol="{proto}" severity="{severity}" '
        f'pluginID="{pid}" pluginName={quoteattr(name)} pluginFamily={quoteattr(family)}>\n'
    )
    body = "".join(f"<{tag}>{escape(text)}</{tag}>\n" for tag, text in children)
    return Plugin(
        pid, name, family, severity, open_tag, body, escape(output), port, proto, svc, output, children
    )


def _generated_identity(rng: random.Random, index: int) -> tuple[int, str, str, int, str, int, str]:
    product, family, svc, port, proto, style = PRODUCTS[index % len(PRODUCTS)]
    informational = rng.random() < 0.3
    severity = 0 if informational else rng.choices(range(1, 5), SEVERITY_WEIGHTS[1:])[0]
    fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(1, 60)}"
    if informational:
        name = (
            f"{product} {rng.choice(['Detection', 'Version Detection', 'Installed (Linux)', 'Enumeration'])}"
        )
    elif style == "ubuntu":
        name = (
            f"Ubuntu {rng.choice(['20.04', '22.04', '24.04'])} LTS : {rng.choice(PACKAGES)} "
            f"vulnerabilities (USN-{rng.randint(5000, 7200)}-{rng.randint(1, 3)})"
        )
    elif style == "rhel":
        name = f"RHEL {rng.choice([7, 8, 9])} : {rng.choice(PACKAGES)} (RHSA-{rng.randint(2019, 2025)}:{rng.randint(1000, 9999)})"
    elif style == "kb":
        name = (
            f"KB{rng.randint(5000000, 5049999)}: Windows Server {rng.choice(['2016', '2019', '2022'])} "
            f"Security Update ({rng.choice(MONTHS)} {rng.randint(2021, 2025)})"
        )
    else:
        name = f"{product} < {fixed} {rng.choice(FLAWS)}"
    return 200_000 + index, name, family, severity, svc, port, proto


def _informational_text(rng: random.Random, name: str, port: int, proto: str) -> tuple[str, str, str, str]:
    synopsis = f"It is possible to gather information about the remote host ({name.lower()})."
    description = f"Nessus was able to collect the following information: {name}. " + " ".join(
        rng.sample(FILLER[:3], 2)
    )
    output = rng.choice(
        [
            "\nInformation about this scan : \n\nNessus version : 10.7.1\nScanner IP : 10.0.0.5\n"
            "Port scanner(s) : nessus_syn_scanner\nTarget : {ip}\n",
            "\nRemote operating system : {os}\nConfidence level : 95\nMethod : SSH\n",
            "Port " + str(port) + "/" + proto + " was found to be open",
            "\nThe FQDN for the remote host has been determined to be :\n\n  Host : {fqdn}\n",
        ]
    )
    return synopsis, description, "n/a", output


def _vulnerability_text(rng: random.Random, year: int, port: int) -> tuple[str, str, str, str]:
    synopsis = f"The remote host is affected by {rng.choice(FLAWS).lower()}."
    description = (
        f"The version of the software installed on the remote host is prior to {year}.{rng.randint(1, 12)}. "
        f"It is, therefore, affected by {rng.randint(1, 12)} vulnerabilities as referenced in the advisory. "
        + " ".join(rng.sample(IMPACTS, 2))
        + " "
        + " ".join(rng.sample(FILLER, 3))
    )
    solution = "Upgrade to the latest version or apply the vendor-supplied patch."
    installed = f"{rng.randint(0, 8)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    output = (
        f"\n  URL               : https://{{fqdn}}:{port}/\n  Installed version : {installed}\n"
        f"  Fixed version     : {year}.{rng.randint(1, 12)} (or later; versions < {year} are affected)\n"
    )
    return synopsis, description, solution, output


def _scored_children(rng: random.Random, severity: int, year: int) -> list[tuple[str, str]]:
    low, high = SCORE_RANGES[severity]
    cvss3 = round(rng.uniform(low, high), 1)
    cvss2 = round(min(10.0, max(0.1, cvss3 - rng.uniform(0, 1.5))), 1)
    av = rng.choice(["N", "N", "L", "A"])
    children = [
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
    children.append(("patch_publication_date", f"{year}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}"))
    children += [
        ("cve", f"CVE-{year}-{rng.randint(1000, 49999)}") for _ in range(rng.choice([1, 1, 2, 3, 5]))
    ]
    if rng.random() < 0.5:
        cwe = rng.choice([20, 79, 89, 119, 200, 287, 295, 326, 400, 787])
        children += [("cwe", str(cwe)), ("xref", f"CWE:{cwe}")]  # real exports carry both forms
    return children


def _common_children(
    rng: random.Random,
    pid: int,
    name: str,
    year: int,
    port: int,
    severity: int,
    synopsis: str,
    description: str,
    solution: str,
) -> list[tuple[str, str]]:
    risk = RISK[severity]
    if rng.random() < 0.1:
        risk = risk.upper()  # real exports mix the case
    see_also = "\n".join(
        f"https://www.tenable.com/plugins/nessus/{pid}?ref={rng.randint(1, 999)}"
        for _ in range(rng.randint(0, 3))
    )
    return [
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
    ]
