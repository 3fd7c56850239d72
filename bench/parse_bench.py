"""Parse benchmark: `.nessus` from a local file and streamed from the simulator over HTTP.

    python -m bench.parse_bench [--sizes 100000,1000000] [--findings-per-host 100]

Each measurement runs in a fresh subprocess, so peak RSS (`ru_maxrss`) belongs to that one run. The last
column (items per CPU-second of the parsing process) shows the parser's own speed when the machine is busy.
Targets: at least 25,000 items/s and peak RSS under 100 MB at every size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from integrations.connectors.tenable_io.client import TenableClient
from integrations.connectors.tenable_io.simulator import TenableSimulator
from integrations.formats.nessus import iter_hosts

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("bench-access", "bench-secret")


class _Counting:
    """Counts the bytes the parser reads from a stream."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.bytes += len(data)
        return data


def _consume(stream) -> tuple[int, int]:
    counting = _Counting(stream)
    items = sum(len(host.items) for host in iter_hosts(counting))
    return items, counting.bytes


def _child(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.child == "file":
        with open(args.path, "rb") as stream:
            items, size = _consume(stream)
    else:
        client = TenableClient(*KEYS, args.url, timeout=(5, 60))
        with client.export_nessus(args.scan_id, poll_initial=0.05) as stream:
            items, size = _consume(stream)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        json.dumps(
            {"items": items, "seconds": seconds, "cpu": cpu, "bytes": size, "peak_mb": usage.ru_maxrss / 1024}
        )
    )


def _measure(*child_args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.parse_bench", *child_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Write the benchmark file once per size, then measure file and HTTP parsing in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--findings-per-host", type=int, default=100)
    parser.add_argument("--child", choices=["file", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scan-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    for size in (int(s) for s in args.sizes.split(",")):
        per_host = args.findings_per_host
        sim = TenableSimulator(access_key=KEYS[0], secret_key=KEYS[1], scans=0, export_loading_polls=0)
        scan_id = sim.big_scan(hosts=max(1, size // per_host), findings_per_host=per_host)
        path = Path(f"/tmp/tenable-bench-{size}-{per_host}.nessus")
        if not path.exists():
            with open(path.with_suffix(".part"), "wb") as out:
                for chunk in sim.export_document(scan_id):
                    out.write(chunk)
            path.with_suffix(".part").rename(path)
        rows = [("local file", _measure("--child", "file", "--path", str(path)))]
        with sim.serve() as server:
            http = _measure("--child", "http", "--url", server.url, "--scan-id", str(scan_id))
            rows.append(("simulator over HTTP", http))
        print(f"\n### {size:,} items ({per_host} per host, {path.stat().st_size / 1e6:,.0f} MB)\n")
        print("| source | items | seconds | items/s | MB/s | peak RSS MB | items per CPU-second |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in rows:
            rate, mbs = r["items"] / r["seconds"], r["bytes"] / 1e6 / r["seconds"]
            print(
                f"| {label} | {r['items']:,} | {r['seconds']:.1f} | {rate:,.0f} | {mbs:.0f} | {r['peak_mb']:.0f} "
                f"| {r['items'] / r['cpu']:,.0f} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
