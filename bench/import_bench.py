"""End-to-end import benchmark: simulator over HTTP → real task code → PostgreSQL.

    python -m bench.import_bench [--sizes 1000x100,10000x100]

For each size (hosts × findings per host) it imports the scan's run (first import), then launches the scan in
the simulator, which makes a changed run (5% new, 5% gone, 90% unchanged), and imports that (re-import).
Each import runs `projects.tasks.run_scan` in a fresh child process, whose peak RSS is the worker's.
Uses a scratch PostgreSQL database, re-created per size: IMPORT_BENCH_DATABASE_URL, default `import_bench` on
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

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/import_bench"


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATABASE_URL"] = os.environ.setdefault("IMPORT_BENCH_DATABASE_URL", DEFAULT_DB)
    import django

    django.setup()


def child(run_id: int) -> None:
    """Run one import through the task code and report its timings and this process's peak RSS."""
    _django()
    from projects.models import ScanRun
    from projects.tasks import run_scan

    started = time.perf_counter()
    run_scan.apply(args=[run_id], throw=True)
    elapsed = time.perf_counter() - started
    run = ScanRun.objects.get(pk=run_id)
    print(
        json.dumps(
            {
                "status": run.status,
                "log": run.log,
                "error": run.error,
                "seconds": elapsed,
                "total": run.count_total,
                "new": run.count_new,
                "fixed": run.count_fixed,
                "reopened": run.count_reopened,
                "unchanged": run.count_unchanged,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _recreate_database(url: str) -> None:
    import psycopg

    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()  # the previous size's connection would be killed by the drop

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _run_child(run_id: int) -> dict:
    env = {**os.environ, "TENABLE_POLL_INITIAL": "0.2", "TENABLE_POLL_MAX": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.import_bench", "--child", str(run_id)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(hosts: int, per_host: int) -> list[dict]:
    url = os.environ.setdefault("IMPORT_BENCH_DATABASE_URL", DEFAULT_DB)
    _recreate_database(url)
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from integrations.connectors.tenable_io.simulator import TenableSimulator
    from integrations.models import Integration
    from projects.models import Project, ScannerProfile, ScanRun

    sim = TenableSimulator(scans=1, launch_seconds=0.5)
    scan_id = sim.big_scan(hosts, per_host)
    server = sim.serve()
    try:
        integration = Integration.objects.create(
            connector="tenableiovm", name="Bench", is_active=True, api_url=server.url,
            access_key="sim-access", secret_key="sim-secret", access_key_hint="cess",
        )  # fmt: skip
        project = Project.objects.create(name=f"Bench {hosts}x{per_host}")
        profile = ScannerProfile.objects.create(
            project=project, integration=integration, name="Bench", scan_id=scan_id, meta_data="bench"
        )
        results = []
        for label, start_scan in (("first import", False), ("re-import (changed run)", True)):
            ScannerProfile.objects.filter(pk=profile.pk).update(start_scan=start_scan)
            run = ScanRun.objects.create(project=project, profile=profile, trigger="manual")
            result = _run_child(run.pk)
            if result["status"] != "succeeded":
                raise SystemExit(f"{label} failed: {result['error']}")
            result.update(label=label, size=f"{hosts:,} × {per_host}")
            print(f"{label}: {result['log']} (task total {result['seconds']:.1f} s)", file=sys.stderr)
            results.append(result)
        return results
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000x100,10000x100")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rows = []
    for size in args.sizes.split(","):
        hosts, per_host = (int(n) for n in size.split("x"))
        rows += measure(hosts, per_host)
    print(
        "\n| size (hosts × findings) | import | findings | new | fixed | reopened | unchanged | seconds | findings/s | peak RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']} | {r['label']} | {r['total']:,} | {r['new']:,} | {r['fixed']:,} | {r['reopened']:,} | "
            f"{r['unchanged']:,} | {r['seconds']:.1f} | {r['total'] / r['seconds']:,.0f} | {r['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
