"""Findings review benchmark: 1,000,000 findings over 10,000 hosts and 2,000 plugins in one project.

    python -m bench.findings_bench [--regenerate] [--repeat 5]

Uses PostgreSQL (`FINDINGS_BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/findings_bench, created if missing;
never the CI `test` database). Data is generated once with COPY and reused. Pages are timed with the Django test
client as a signed-in admin: one warm-up, then the median of `--repeat`. The CSV export of every row runs in a
fresh subprocess so its peak RSS is its own (once for 100,000 rows and once for all, to show memory is flat).
Targets: every page under 300 ms; CSV at least 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Its own scratch database, never DATABASE_URL: a million generated rows must not land in a real one.
os.environ["DATABASE_URL"] = os.environ.get(
    "FINDINGS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/findings_bench"
)

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench-findings"
FINDINGS, HOSTS, PLUGINS, RUNS = 1_000_000, 10_000, 2_000, 6
PLUGIN_BASE = 900_000  # plugin ids far from Tenable's real ones
TARGET_MS, TARGET_ROWS_S = 300, 20_000
FAMILIES = [
    "Web Servers",
    "Windows",
    "Databases",
    "General",
    "Misc.",
    "Service detection",
    "Ubuntu Local Security Checks",
]
WORDS = [
    "OpenSSL",
    "Apache",
    "nginx",
    "OpenSSH",
    "PostgreSQL",
    "Kernel",
    "TLS",
    "SMB",
    "PHP",
    "Log4j",
    "Java",
    "IIS",
]


def ensure_database() -> None:
    """Create the benchmark database if it does not exist; refuse the CI database."""
    import psycopg
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("The findings benchmark needs PostgreSQL (set FINDINGS_BENCH_DATABASE_URL=postgres://…).")
    if name == "test" or name.startswith("test_"):
        sys.exit(f"Refusing to use the {name!r} database: CI uses it.")
    params = settings.DATABASES["default"]
    with psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname="postgres",
    ) as conn:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _copy(table: str, columns: list[str], lines) -> None:
    """Stream tab-separated lines into `table` with COPY (text format, NULL as \\N)."""
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            buffer: list[str] = []
            for line in lines:
                buffer.append(line)
                if len(buffer) >= 20_000:
                    copy.write("".join(buffer))
                    buffer = []
            if buffer:
                copy.write("".join(buffer))


def generate() -> None:
    """One project, two profiles, six runs, 2,000 plugins, 10,000 hosts, 1,000,000 findings, written with COPY."""
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import User
    from integrations.models import Integration
    from projects.models import Asset, Finding, FindingEvent, Plugin, Project, ScannerProfile, ScanRun

    rng = random.Random(42)
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        Project.objects.filter(name=PROJECT).delete()
        Plugin.objects.filter(plugin_id__gte=PLUGIN_BASE).delete()
        if not User.objects.filter(username="bench-admin").exists():
            User.objects.create_superuser(
                "bench-admin", "bench@example.com", "bench-password-123456", role="admin"
            )
        project = Project.objects.create(name=PROJECT, description="Findings review benchmark")
        integration, _ = Integration.objects.get_or_create(
            name="bench-tenable", defaults={"connector": "tenableiovm", "is_active": True}
        )
        profiles = [
            ScannerProfile.objects.create(
                project=project,
                integration=integration,
                name=name,
                scan_id=i + 1,
                meta_data="bench",
                severity_shift=shift,
            )
            for i, (name, shift) in enumerate([("Internal", 0), ("DMZ", 1)])
        ]
        runs = []
        for i in range(RUNS):
            at = now - timedelta(days=(RUNS - i) * 7)
            run = ScanRun.objects.create(project=project, profile=profiles[i % 2], status="succeeded")
            ScanRun.objects.filter(pk=run.pk).update(
                created_at=at, started_at=at, finished_at=at + timedelta(minutes=20)
            )
            run.refresh_from_db()
            runs.append(run)

        def plugin_lines():
            for i in range(PLUGINS):
                pid = PLUGIN_BASE + i
                word = WORDS[i % len(WORDS)]
                name = f"{word} {i // len(WORDS)}.x < {i % 9}.{i % 7} Multiple Vulnerabilities"
                cves = json.dumps([f"CVE-20{10 + i % 14}-{10000 + i}"] if i % 3 else [])
                yield (
                    f"{pid}\t{name}\t{FAMILIES[i % len(FAMILIES)]}\tThe remote host is affected.\t"
                    f"{name}. According to its self-reported version the remote service is vulnerable.\t"
                    f"Upgrade.\t[]\t{cves}\t[]\tHigh\t7.5\t\t9.8\t\t\\N\t\\N\t\\N\t\\N\t{now.isoformat()}\n"
                )

        _copy(
            "projects_plugin",
            "plugin_id name family synopsis description solution see_also cves cwes risk_factor cvss_base_score "
            "cvss_vector cvss3_base_score cvss3_vector vpr_score epss_score publication_date patch_date updated_at".split(),
            plugin_lines(),
        )
        first, last = runs[0].finished_at.isoformat(), runs[-1].finished_at.isoformat()

        def asset_lines():
            for i in range(HOSTS):
                ip = f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"
                name = f"host-{i:05d}.bench.example.com"
                yield (
                    f"{project.pk}\t{ip}\t{name}\t{uuid.UUID(int=i + 1)}\t{ip}\t{name}\t\tUbuntu 22.04\t\t"
                    f"{first}\t{last}\t{runs[-1].pk}\n"
                )

        _copy(
            "projects_asset",
            "project_id identity name host_uuid ip fqdn netbios os mac first_seen last_seen last_run_id".split(),
            asset_lines(),
        )
        asset_ids = list(Asset.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
        _copy(
            "projects_runasset",
            ["run_id", "asset_id", "findings"],
            (f"{run.pk}\t{a}\t{FINDINGS // HOSTS}\n" for run in runs for a in asset_ids),
        )

        admin = User.objects.get(username="bench-admin").pk
        today = date.today()
        severities = rng.choices(range(5), weights=[35, 8, 32, 18, 7], k=FINDINGS)
        ports = [0, 22, 80, 443, 445, 3389, 5432, 8080, 8443]

        def finding_lines():
            n = 0
            per_host = FINDINGS // HOSTS
            for a in asset_ids:
                for pid in rng.sample(range(PLUGINS), per_host):
                    sev = severities[n]
                    profile = profiles[n % 2]
                    eff = min(4, sev + 1) if profile.severity_shift and sev else sev
                    first_run = runs[0] if rng.random() < 0.7 else rng.choice(runs[1:])
                    roll = rng.random()
                    state = "open" if roll < 0.80 else "fixed" if roll < 0.95 else "reopened"
                    fixed_run = rng.choice(
                        [r for r in runs if r.created_at > first_run.created_at] or [runs[-1]]
                    )
                    triage, reason, until, by, at = "", "", "\\N", "\\N", "\\N"
                    t = rng.random()
                    if t < 0.01:
                        triage, reason, by, at = (
                            "false_positive",
                            "filtered at the edge",
                            admin,
                            now.isoformat(),
                        )
                    elif t < 0.02:
                        days = 60 if t < 0.015 else -3
                        triage, reason, by, at = "risk_accepted", "legacy terminals", admin, now.isoformat()
                        until = (today + timedelta(days=days)).isoformat()
                    port = ports[pid % len(ports)] if sev else 0
                    output = f"Installed version : {pid % 7}.{n % 5}.1\\nFixed version     : {pid % 7 + 1}.0\\nPath : /opt/app{n % 100}/lib/component.jar\\n"
                    yield (
                        "\t".join(
                            map(
                                str,
                                [
                                    project.pk,
                                    profile.pk,
                                    a,
                                    PLUGIN_BASE + pid,
                                    uuid.UUID(int=(project.pk << 64) + n),
                                    port,
                                    "tcp",
                                    "www" if port in (80, 443, 8080, 8443) else "",
                                    sev,
                                    eff,
                                    output,
                                    state,
                                    triage,
                                    reason,
                                    until,
                                    by,
                                    at,
                                    first_run.finished_at.isoformat(),
                                    fixed_run.finished_at.isoformat()
                                    if state == "fixed"
                                    else first_run.finished_at.isoformat(),
                                    fixed_run.finished_at.isoformat() if state == "fixed" else "\\N",
                                    first_run.pk,
                                    fixed_run.pk if state != "open" else first_run.pk,
                                    fixed_run.pk if state == "fixed" else "\\N",
                                ],
                            )
                        )
                        + "\n"
                    )
                    n += 1

        _copy(
            "projects_finding",
            "project_id profile_id asset_id plugin_id fingerprint port protocol service severity effective_severity "
            "plugin_output state triage triage_reason triage_until triage_by_id triage_at first_seen last_seen "
            "fixed_at first_run_id last_run_id fixed_by_run_id".split(),
            finding_lines(),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {FindingEvent._meta.db_table} (finding_id, kind, run_id, actor_id, note, created_at)
                    SELECT id, 'fixed', fixed_by_run_id, NULL, 'Not seen on a host the run covered', fixed_at
                    FROM {Finding._meta.db_table} WHERE project_id = %s AND state = 'fixed'""",
                [project.pk],
            )
        for run in runs:
            by_severity = dict(
                Finding.objects.filter(project=project, first_run__created_at__lte=run.created_at)
                .values_list("effective_severity")
                .annotate(n=Count("id"))
                .order_by()
            )
            ScanRun.objects.filter(pk=run.pk).update(
                count_by_severity={str(k): v for k, v in by_severity.items()},
                count_total=sum(by_severity.values()),
                count_new=Finding.objects.filter(first_run=run).count(),
                count_fixed=Finding.objects.filter(fixed_by_run=run).count(),
                count_reopened=Finding.objects.filter(last_run=run, state="reopened").count(),
                count_hosts=HOSTS,
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"Generated {FINDINGS:,} findings in {time.perf_counter() - started:.0f} s")


def _timed_get(client, url: str, repeat: int) -> tuple[float, int]:
    def once() -> tuple[float, int]:
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        return (time.perf_counter() - started) * 1000, response.status_code

    once()  # warm caches and the connection
    samples = [once() for _ in range(repeat)]
    statuses = {status for _, status in samples}
    return statistics.median(ms for ms, _ in samples), statuses.pop() if len(statuses) == 1 else -1


def pages(repeat: int) -> list[tuple[str, str, float, int]]:
    from django.conf import settings
    from django.test import Client

    from accounts.models import User
    from projects.models import Asset, Finding, Plugin, Project, ScannerProfile, ScanRun

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    project = Project.objects.get(name=PROJECT)
    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    base = f"/projects/{project.pk}"
    runs = list(ScanRun.objects.filter(project=project).order_by("created_at"))
    profile = ScannerProfile.objects.filter(project=project).first()
    asset = Asset.objects.filter(project=project).order_by("pk")[1234]
    finding = Finding.objects.filter(project=project, state="fixed").order_by("pk")[5000]
    plugin = Plugin.objects.filter(plugin_id__gte=PLUGIN_BASE, cves__icontains="CVE").order_by("pk")[17]
    cve = plugin.cves[0]
    week_ago = (date.today() - timedelta(days=9)).isoformat()
    cases = [
        ("Project overview", f"{base}/"),
        ("Findings: first page (open, untriaged)", f"{base}/findings/"),
        ("Findings: page 200 (deepest)", f"{base}/findings/?page=200"),
        ("Filter: severity Critical", f"{base}/findings/?severity=4"),
        ("Filter: Tenable severity High", f"{base}/findings/?tenable_severity=3"),
        ("Filter: state fixed", f"{base}/findings/?state=fixed"),
        ("Filter: state reopened", f"{base}/findings/?state=reopened"),
        ("Filter: state any, triage any", f"{base}/findings/?state=any&triage=any"),
        ("Filter: triage false positive", f"{base}/findings/?triage=false_positive"),
        ("Filter: triage risk accepted", f"{base}/findings/?triage=risk_accepted"),
        ("Filter: triage expired acceptance", f"{base}/findings/?triage=expired"),
        ("Filter: q = plugin name text", f"{base}/findings/?q=OpenSSH"),
        ("Filter: q = plugin id", f"{base}/findings/?q={plugin.plugin_id}"),
        ("Filter: q = CVE", f"{base}/findings/?q={cve}"),
        ("Filter: host text", f"{base}/findings/?host=host-0123"),
        ("Filter: host id", f"{base}/findings/?asset={asset.pk}"),
        ("Filter: family", f"{base}/findings/?family=Databases"),
        ("Filter: port 3389", f"{base}/findings/?port=3389"),
        ("Filter: profile", f"{base}/findings/?profile={profile.pk}"),
        ("Filter: new in run", f"{base}/findings/?run={runs[-1].pk}&change=new"),
        ("Filter: fixed in run", f"{base}/findings/?run={runs[-1].pk}&change=fixed"),
        ("Filter: reopened in run", f"{base}/findings/?run={runs[-1].pk}&change=reopened"),
        ("Filter: first seen range", f"{base}/findings/?first_seen_from={week_ago}"),
        ("Filter: last seen range", f"{base}/findings/?state=any&last_seen_to={week_ago}"),
        ("Combination: High + open + text", f"{base}/findings/?severity=3&state=open&q=OpenSSL"),
        ("Sort: host name", f"{base}/findings/?sort=host"),
        ("Sort: last seen", f"{base}/findings/?sort=-last_seen"),
        ("Group by vulnerability", f"{base}/findings/?group=plugin"),
        ("Group by host", f"{base}/findings/?group=host"),
        ("Finding page", f"{base}/findings/{finding.pk}/"),
        ("Host list", f"{base}/hosts/"),
        ("Host page", f"{base}/hosts/{asset.pk}/"),
    ]
    results = []
    for label, url in cases:
        ms, status = _timed_get(client, url, repeat)
        results.append((label, url.replace(base, ""), ms, status))
    return results


def _csv_child(limit: str) -> None:
    """Run in a subprocess: export the CSV (all states) once; print rows, seconds and this process's peak RSS."""
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.models import User
    from projects.models import Project

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False  # no per-query log in memory
    project = Project.objects.get(name=PROJECT)
    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    query = "state=any&triage=any" + ("" if limit == "all" else f"&host={limit}")
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    response = client.get(f"/projects/{project.pk}/findings.csv?{query}")
    rows = -1
    for chunk in response.streaming_content:
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb, "before_mb": before_mb}))


def csv_export(limit: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.findings_bench", "--csv-child", limit],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="drop and regenerate the benchmark data")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--csv-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.csv_child:
        _csv_child(args.csv_child)
        return

    import django

    django.setup()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from projects.models import Finding, Project

    project = Project.objects.filter(name=PROJECT).first()
    if args.regenerate or not project or Finding.objects.filter(project=project).count() != FINDINGS:
        generate()
    else:
        print(f"Reusing {FINDINGS:,} findings in project {PROJECT!r} (pass --regenerate to rebuild)")

    results = pages(args.repeat)
    print(f"\n| Page | URL | median ms (of {args.repeat}) | status | target < {TARGET_MS} ms |")
    print("|---|---|---:|---:|---|")
    for label, url, ms, status in results:
        print(
            f"| {label} | `{url}` | {ms:.0f} | {status} | {'ok' if ms < TARGET_MS and status == 200 else 'MISS'} |"
        )

    print(f"\n| CSV export | rows | seconds | rows/s | peak RSS MB | target ≥ {TARGET_ROWS_S:,} rows/s |")
    print("|---|---:|---:|---:|---:|---|")
    for label, limit in (("hosts host-00xxx (1/10)", "host-00"), ("every finding", "all")):
        r = csv_export(limit)
        rate = r["rows"] / r["seconds"]
        verdict = "ok" if rate >= TARGET_ROWS_S else "MISS"
        print(
            f"| {label} | {r['rows']:,} | {r['seconds']:.1f} | {rate:,.0f} | {r['peak_mb']:.0f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
