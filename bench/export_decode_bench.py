"""Export chunk benchmark: decode + normalise Tenable's vulnerability export chunks, and what it replaces.

    python -m bench.export_decode_bench [--sizes 10000,1000000] [--findings-per-host 100] [--num-assets 100]

The simulator writes each export to disk ahead of time (`prepare_vulns_export`), so the numbers are ours, not
the simulator's. Each row runs in a fresh process, so its peak RSS (`ru_maxrss`) is that run's alone:

- msgspec reader: `formats.tenable_export.read_vuln_chunk` on each chunk file in turn (one chunk in memory);
- msgspec reader, in memory: the first chunk already in memory, decoded five times, the best run (the
  reader's own speed, without reading files);
- stdlib json.loads: the same files into dicts, unnormalised (what an SDK hands its caller per chunk);
- connector over HTTP: `TenableIOConnector` requests the export, polls, downloads and decodes every chunk;
- pyTenable over HTTP: Tenable's SDK merely iterating the same export (skipped if it is not installed).

Targets: the reader at least 150,000 findings per CPU-second, memory per chunk small and flat over 1M.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from integrations.connectors.base import VulnExportRequest
from integrations.connectors.tenable_io.connector import TenableIOConnector
from integrations.connectors.tenable_io.simulator import TenableSimulator
from integrations.formats.tenable_export import read_vuln_chunk

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("bench-access", "bench-secret")
STATES = ["OPEN", "REOPENED", "FIXED"]


def _body(num_assets: int) -> dict:
    """The request body the connector sends for `VulnExportRequest(since=0, num_assets=…)`."""
    return {"num_assets": num_assets, "include_unlicensed": False, "filters": {"since": 0, "state": STATES}}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: argparse.Namespace) -> None:
    baseline = _rss_mb()
    findings = size = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.child == "memory":
        data = min(Path(args.path).glob("chunk-*.json")).read_bytes()
        best = None
        for _ in range(5):
            began, cpu_began = time.perf_counter(), time.process_time()
            findings = len(read_vuln_chunk(data).findings)
            run = (time.perf_counter() - began, time.process_time() - cpu_began)
            best = run if best is None or run[1] < best[1] else best
        tracemalloc.start()
        kept = read_vuln_chunk(data)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del kept
        print(json.dumps({"findings": findings, "bytes": len(data), "seconds": best[0], "cpu": best[1],
                          "baseline_mb": baseline, "peak_mb": _rss_mb(), "records_mb": held / 1e6,
                          "decode_peak_mb": peak / 1e6}))  # fmt: skip
        return
    if args.child in ("msgspec", "json"):
        for path in sorted(Path(args.path).glob("chunk-*.json")):
            data = path.read_bytes()
            size += len(data)
            if args.child == "msgspec":
                findings += len(read_vuln_chunk(data).findings)
            else:
                findings += len(json.loads(data))
            del data
    elif args.child == "connector":
        with TenableIOConnector(*KEYS, api_url=args.url, timeout=(5, 120)) as connector:
            job = connector.start_vuln_export(VulnExportRequest(since=0, num_assets=args.num_assets))
            done: set[int] = set()
            while True:
                status = connector.vuln_export_status(job.uuid)
                for chunk_id in status.chunks_available:
                    if chunk_id not in done:
                        done.add(chunk_id)
                        chunk = connector.vuln_export_chunk(job.uuid, chunk_id)
                        findings, size = findings + len(chunk.findings), size + chunk.size
                        del chunk
                if not status.active:
                    break
                time.sleep(0.05)
    else:
        from tenable.io import TenableIO

        tio = TenableIO(*KEYS, url=args.url, retries=1, backoff=0.01)
        for _ in tio.exports.vulns(
            num_assets=args.num_assets, since=0, state=STATES, include_unlicensed=False
        ):
            findings += 1
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"findings": findings, "bytes": size, "seconds": seconds, "cpu": cpu,
                      "baseline_mb": baseline, "peak_mb": _rss_mb()}))  # fmt: skip


def _measure(*child_args: str) -> dict | None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.export_decode_bench", *child_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"(a row failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode})")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Prepare each size's export on disk, then measure each way of reading it in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--findings-per-host", type=int, default=100)
    parser.add_argument("--num-assets", type=int, default=100, help="assets per chunk (10,000 findings)")
    parser.add_argument(
        "--skip", default="", help="comma-separated rows to leave out: json,connector,pytenable"
    )
    parser.add_argument(
        "--child", choices=["msgspec", "memory", "json", "connector", "pytenable"], help=argparse.SUPPRESS
    )
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    skip = set(args.skip.split(","))
    for total in (int(s) for s in args.sizes.split(",")):
        per_host = args.findings_per_host
        sim = TenableSimulator(access_key=KEYS[0], secret_key=KEYS[1], scans=0, churn=0)
        sim.big_scan(hosts=max(1, total // per_host), findings_per_host=per_host)
        with tempfile.TemporaryDirectory(prefix="tenable-export-bench-") as directory:
            began = time.perf_counter()
            prepared = sim.prepare_vulns_export(body=_body(args.num_assets), directory=directory)
            print(
                f"\n### {prepared.findings:,} findings in {len(prepared.chunk_ids)} chunk(s) of "
                f"{args.num_assets} assets, {prepared.size / 1e6:,.0f} MB "
                f"(prepared in {time.perf_counter() - began:.0f} s)\n"
            )
            common = ("--num-assets", str(args.num_assets))
            rows = [
                ("msgspec reader (files)", _measure("--child", "msgspec", "--path", directory, *common)),
                (
                    "msgspec reader (one chunk in memory)",
                    _measure("--child", "memory", "--path", directory, *common),
                ),
            ]
            if "json" not in skip:
                rows.append(
                    ("stdlib json.loads (files)", _measure("--child", "json", "--path", directory, *common))
                )
            with sim.serve() as server:
                for name, label in (
                    ("connector", "connector over HTTP"),
                    ("pytenable", "pyTenable over HTTP"),
                ):
                    if name not in skip:
                        rows.append((label, _measure("--child", name, "--url", server.url, *common)))
        print(
            "| reader | findings | seconds | findings/s | findings per CPU-second | MB/s | peak RSS MB (baseline) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in rows:
            if r is None:
                continue
            rate, per_cpu = r["findings"] / r["seconds"], r["findings"] / max(r["cpu"], 1e-9)
            mbs = r["bytes"] / 1e6 / r["seconds"] if r["bytes"] else float("nan")
            print(
                f"| {label} | {r['findings']:,} | {r['seconds']:.2f} | {rate:,.0f} | {per_cpu:,.0f} | {mbs:.0f} "
                f"| {r['peak_mb']:.0f} ({r['baseline_mb']:.0f}) |"
            )
        memory = next((r for label, r in rows if r and "records_mb" in r), None)
        if memory:
            print(
                f"\nOne chunk of {memory['findings']:,} findings ({memory['bytes'] / 1e6:.0f} MB of JSON): its records "
                f"hold {memory['records_mb']:.1f} MB; decoding it allocates at most {memory['decode_peak_mb']:.1f} MB "
                "beside the JSON (tracemalloc)."
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
