"""Vulnerability-data sync benchmark: simulator over HTTP → the real task code → PostgreSQL (issue 14).

    python -m bench.export_bench [--hosts 10000] [--per-host 100]

1. The simulator prepares the export (`prepare_vulns_export`, chunk files on disk, all available at once) of
   hosts × findings per host, so the numbers are ours, not the simulator's building JSON.
2. **First sync**: `projects.tasks.run_scan` of a profile bound to "All assets this key can view", in a fresh
   child process (its peak RSS is the worker's), into an empty scratch database.
3. **Incremental sync** after 1% of the hosts were scanned again (`add_run(down=range(100, hosts))`: 1% of the
   findings changed — last found again, some new, some fixed), its export prepared the same way.
4. **pyTenable**: Tenable's SDK merely iterating the same prepared export (download and decode, no database),
   in a child process; our whole sync must be at least as fast.

Uses a scratch PostgreSQL database, re-created: EXPORT_BENCH_DATABASE_URL, default `export_bench` on
127.0.0.1. It never reads DATABASE_URL, so it cannot drop a real database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from bench.import_bench import _recreate_database

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/export_bench"
KEYS = ("bench-access", "bench-secret")
STATES = ["OPEN", "REOPENED", "FIXED"]
TARGETS = {"first_rate": 25_000, "incremental_seconds": 10.0, "rss_mb": 250}


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATABASE_URL"] = os.environ.setdefault("EXPORT_BENCH_DATABASE_URL", DEFAULT_DB)
    os.environ.setdefault("TENABLE_API_HOSTS", "127.0.0.1")
    import django

    django.setup()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_sync(run_id: int) -> None:
    """One sync through the task code; prints its counts, timings and this process's peak RSS."""
    _django()
    from projects.models import ScanRun
    from projects.tasks import run_scan

    started = time.perf_counter()
    run_scan.apply(args=[run_id], throw=True)
    elapsed = time.perf_counter() - started
    run = ScanRun.objects.get(pk=run_id)
    print(json.dumps({
        "status": run.status, "error": run.error, "log": run.log, "seconds": elapsed, "total": run.count_total,
        "new": run.count_new, "fixed": run.count_fixed, "reopened": run.count_reopened,
        "unchanged": run.count_unchanged, "rss_mb": _rss_mb(),
    }))  # fmt: skip


def child_pytenable(url: str, num_assets: int) -> None:
    """Tenable's SDK iterating the export: download and decode every finding, nothing else."""
    from tenable.io import TenableIO

    started = time.perf_counter()
    findings = 0
    tio = TenableIO(*KEYS, url=url, retries=1, backoff=0.01)
    for _ in tio.exports.vulns(num_assets=num_assets, since=0, state=STATES, include_unlicensed=False):
        findings += 1
    print(json.dumps({"findings": findings, "seconds": time.perf_counter() - started, "rss_mb": _rss_mb()}))


def _child(*args: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.export_bench", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _prepare(sim, body: dict):
    """The export's chunk files, written before the clock starts: the bench measures the product, not the simulator."""
    return sim.prepare_vulns_export(body=body)


def measure(hosts: int, per_host: int) -> tuple[list[dict], dict]:
    url = os.environ.setdefault("EXPORT_BENCH_DATABASE_URL", DEFAULT_DB)
    _recreate_database(url)
    _django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from integrations.connectors.tenable_io.simulator import TenableSimulator
    from integrations.models import Integration
    from projects.models import Project, ScannerProfile, ScanRun

    sim = TenableSimulator(access_key=KEYS[0], secret_key=KEYS[1], scans=0)
    scan_id = sim.big_scan(hosts=hosts, findings_per_host=per_host)
    sim.advance(2 * 86400)  # the scan ran two days ago: an incremental sync sees only what changed since
    num_assets = settings.EXPORT_NUM_ASSETS
    body = {"num_assets": num_assets, "include_unlicensed": False, "filters": {"since": 0, "state": STATES}}
    began = time.perf_counter()
    prepared = sim.prepare_vulns_export(body=body)
    print(
        f"Prepared {prepared.findings:,} findings in {len(prepared.chunk_ids)} chunks "
        f"({prepared.size / 1e6:,.0f} MB) in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    env = {"TENABLE_POLL_INITIAL": "0.2", "TENABLE_POLL_MAX": "1", "EXPORT_POLL_MAX": "1"}
    server = sim.serve()
    try:
        integration = Integration.objects.create(
            connector="tenableiovm", name="Bench", is_active=True, api_url=server.url,
            access_key=KEYS[0], secret_key=KEYS[1], access_key_hint="cret",
        )  # fmt: skip
        project = Project.objects.create(name=f"Export bench {hosts}x{per_host}")
        profile = ScannerProfile.objects.create(
            project=project, integration=integration, name="All assets", meta_data="bench",
            source_kind="export", export_scope="all", scope_label="All assets this key can view",
        )  # fmt: skip
        rows = []
        for label in ("first sync", "incremental sync (1% changed)"):
            if rows:
                sim.add_run(scan_id, down=range(max(1, hosts // 100), hosts))
                # Prepared too, with the `since` the sync will ask for: the simulator's work is not ours.
                profile.refresh_from_db()
                since = int(profile.sync_cursor.timestamp()) - settings.EXPORT_CURSOR_OVERLAP
                began = time.perf_counter()
                changed = _prepare(sim, {**body, "filters": {"since": since, "state": STATES}})
                print(
                    f"Prepared the incremental export ({changed.findings:,} findings) in "
                    f"{time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                )
            run = ScanRun.objects.create(project=project, profile=profile, trigger="manual")
            result = _child("--sync", str(run.pk), env=env)
            if result["status"] != "succeeded":
                raise SystemExit(f"{label} failed: {result['error']}")
            result["label"] = label
            print(f"{label}: {result['seconds']:.1f} s\n{result['log']}", file=sys.stderr)
            rows.append(result)
        sdk = _child("--pytenable", server.url, "--num-assets", str(num_assets))
        return rows, sdk
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--per-host", type=int, default=100)
    parser.add_argument("--sync", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pytenable", help=argparse.SUPPRESS)
    parser.add_argument("--num-assets", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sync:
        child_sync(args.sync)
        return
    if args.pytenable:
        child_pytenable(args.pytenable, args.num_assets)
        return
    rows, sdk = measure(args.hosts, args.per_host)
    sdk_rate = sdk["findings"] / sdk["seconds"]
    first = rows[0]
    first_rate = first["total"] / first["seconds"]
    print(f"\n{args.hosts:,} hosts × {args.per_host} findings, simulator over HTTP → PostgreSQL\n")
    print("| run | findings | new | fixed | reopened | unchanged | seconds | findings/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['label']} | {r['total']:,} | {r['new']:,} | {r['fixed']:,} | {r['reopened']:,} | "
            f"{r['unchanged']:,} | {r['seconds']:.1f} | {r['total'] / r['seconds']:,.0f} | {r['rss_mb']:.0f} |"
        )
    print(
        f"| pyTenable iterating the same export (no database) | {sdk['findings']:,} | | | | | "
        f"{sdk['seconds']:.1f} | {sdk_rate:,.0f} | {sdk['rss_mb']:.0f} |"
    )
    incremental = rows[1]
    print(
        f"\nOur whole first sync runs at {first_rate / sdk_rate:.2f}× pyTenable's bare iteration "
        f"(target ≥ 1.00×). Targets: first sync ≥ {TARGETS['first_rate']:,}/s "
        f"({'met' if first_rate >= TARGETS['first_rate'] else 'missed'}); incremental < "
        f"{TARGETS['incremental_seconds']:.0f} s ({'met' if incremental['seconds'] < TARGETS['incremental_seconds'] else 'missed'}); "
        f"worker peak RSS < {TARGETS['rss_mb']} MB "
        f"({'met' if max(r['rss_mb'] for r in rows) < TARGETS['rss_mb'] else 'missed'})."
    )


if __name__ == "__main__":
    main()
