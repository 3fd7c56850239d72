"""The deterministic data generator: scans, their runs, hosts and the plugins each host shows in each run.

Everything derives from the seed, so two simulators with the same seed and the same calls agree exactly;
tests change the data only through the public hooks (`add_scan`, `add_run`, launches, asset deletion).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .catalogue import MASK, Plugin, make_plugin, mix, uuid_of
from .model import ACTIVE_STATUSES, ARCHIVE_AFTER, Host, Run, Scan

# Trash first, as real accounts list it (a client that trusts a broken folder filter lands in Trash).
FOLDERS = [
    {"id": 3, "name": "Trash", "type": "trash", "custom": 0, "default_tag": 0, "unread_count": 0},
    {"id": 2, "name": "My Scans", "type": "main", "custom": 0, "default_tag": 1, "unread_count": 0},
    {"id": 5, "name": "Production", "type": "custom", "custom": 1, "default_tag": 0, "unread_count": 0},
    {"id": 6, "name": "Branch offices", "type": "custom", "custom": 1, "default_tag": 0, "unread_count": 0},
]
TAGS = [
    ("Location", "Dallas"),
    ("Environment", "Production"),
    ("Business Unit", "Payments"),
    ("Cloud", "AWS"),
    ("Location", "Austin"),
    ("Environment", "Staging"),
]
AGENT_GROUPS = [("Branch laptops", 2), ("Remote workers", 14), ("Kiosks", 0)]
# (kind, name, folder, type, runs, latest status, policy) — one of each shape the UI must handle.
ROSTER = [
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
HOST_ROLES = [
    ("web", "Linux Kernel 5.15.0-91-generic on Ubuntu 22.04"),
    ("db", "Linux Kernel 4.18.0-513.el8.x86_64 on Red Hat Enterprise Linux 8"),
    ("app", "Linux Kernel 5.10.0-26-amd64 on Debian 11"),
    ("dc", "Microsoft Windows Server 2019 Standard"),
    ("fs", "Microsoft Windows Server 2016 Datacenter"),
    ("mail", "Linux Kernel 5.14.0 on Rocky Linux 9"),
    ("vpn", "Cisco ASA 9.12"),
    ("esx", "VMware ESXi 7.0.3"),
]
ROSTER_UNLICENSED = 0.1  # share of the default scans' hosts without a license


class ScanData:
    """Scans, runs, hosts and findings per run, generated from `seed` and changed only through hooks."""

    seed: int
    hosts_per_scan: int
    findings_per_host: int
    churn: float
    hosts_down: int
    launch_seconds: float
    clock: Callable[[], float]
    tag_values: dict[str, dict[str, str]]
    agent_groups: list[dict[str, Any]]
    _lock: threading.RLock
    _scans: dict[int, Scan]
    _catalogue: list[Plugin]
    _born: int
    _offset: float
    _next_history_id: int

    # -- time ---------------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's time: its clock plus whatever `advance` added."""
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's time forward (launched scans progress, exports age, chunks expire)."""
        with self._lock:
            self._offset += seconds

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
    ) -> Scan:
        scan_id = 101 + 3 * len(self._scans)
        hosts = self.hosts_per_scan if hosts is None else hosts
        net = scan_id % 200
        scan = Scan(
            id=scan_id,
            kind=kind,
            name=name,
            schedule_uuid=f"template-{uuid_of(self.seed, scan_id, 5)}{mix(self.seed, scan_id) & 0xFFFFFFFFFFFF:012x}",
            folder_id=folder,
            type=scan_type,
            policy=policy,
            policy_id=170 + len(self._scans),
            scanner_name="US Cloud Scanner" if scan_type == "ps" else "Agent Scanner",
            targets=f"10.{net}.0.0/{24 if hosts <= 250 else 16},gateway{net}.corp.example.com",
            tag_targets=None,
            hosts=hosts,
            findings_per_host=self.findings_per_host if findings_per_host is None else findings_per_host,
            creation_date=self._born - 120 * 86400,
        )
        self._shape(scan, kind)
        for k in range(runs):
            age = (runs - 1 - k) * 14 * 86400 + rng.randint(1, 6) * 3600
            run_status = status if k == runs - 1 else "completed"
            run_uuid = (
                "".join(f"{mix(self.seed, scan_id, k, n):016x}" for n in range(4))[:52]
                if kind == "imported"
                else uuid_of(self.seed, scan_id, k, 0x70)
            )
            scan.runs.append(Run(self._new_history_id(), run_uuid, self._born - age, run_status))
        self._scans[scan_id] = scan
        return scan

    def _shape(self, scan: Scan, kind: str) -> None:
        """What makes each roster kind special (agent groups, tag targets, a schedule, …)."""
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
        unlicensed: float = 0.0,
    ) -> int:
        """Add a scan with `runs` runs (the latest in `status`); returns its id.

        `unlicensed` is the share of its hosts without a license (their findings need include_unlicensed).
        """
        with self._lock:
            scan = self._add(
                "custom", name, folder_id, scan_type, runs, status, "Basic Network Scan",
                random.Random(self.seed + len(self._scans)), hosts=hosts, findings_per_host=findings_per_host,
            )  # fmt: skip
            scan.launch_outcome = launch_outcome
            scan.unlicensed = unlicensed
            return scan.id

    def big_scan(self, hosts: int, findings_per_host: int, name: str = "Benchmark scan") -> int:
        """A completed one-run scan of hosts × findings_per_host items, for benchmarks.

        Its hosts are also the assets of the bulk exports (all licensed), with the same uuids and addresses.
        """
        return self.add_scan(name, hosts=hosts, findings_per_host=findings_per_host)

    def add_run(
        self,
        scan_id: int,
        *,
        at: float | None = None,
        status: str = "completed",
        down: Iterable[int | str] = (),
        fixed: Iterable[tuple[int | str, int]] = (),
    ) -> int:
        """Add a finished run of a scan (default: now) and return its history id.

        The run finds what the churn model says, except on hosts in `down` (host indices or asset uuids,
        which did not answer) and the `fixed` (host index or asset uuid, plugin id) pairs, which it no
        longer finds. A later run without them finds them again, so their state goes FIXED → REOPENED.
        """
        with self._lock:
            scan = self._scans[scan_id]
            run = Run(
                history_id=self._new_history_id(),
                uuid=uuid_of(self.seed, scan.id, len(scan.runs), 0x70),
                creation_date=int(self.now() if at is None else at),
                status=status,
                down=frozenset(self._host_index(scan, h) for h in down),
                fixed=frozenset((self._host_index(scan, h), int(p)) for h, p in fixed),
            )
            scan.runs.append(run)
            return run.history_id

    def scan_id(self, kind: str) -> int:
        """The id of the first default scan of a kind (completed, never_run, agent, running, …)."""
        return next(s.id for s in self._scans.values() if s.kind == kind)

    def history_ids(self, scan_id: int) -> list[int]:
        """The scan's run ids, oldest first."""
        return [run.history_id for run in self._scans[scan_id].runs]

    def set_launch_outcome(self, scan_id: int, outcome: str) -> None:
        """How launched runs of this scan end: completed, canceled or aborted."""
        with self._lock:
            self._scans[scan_id].launch_outcome = outcome

    def asset_uuid(self, scan_id: int, host_index: int) -> str:
        """The asset uuid (the `.nessus` host-uuid) of host number `host_index` of a scan."""
        return self._host(self._scans[scan_id], host_index).uuid

    def _host_index(self, scan: Scan, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        return next(i for i in range(scan.hosts) if self._host(scan, i).uuid == ref)

    # -- run state ----------------------------------------------------------------------------------

    def _status(self, scan: Scan, run: Run, at: float | None = None) -> str:
        if run.launched_at is None:
            return run.status
        elapsed = (self.now() if at is None else at) - run.launched_at
        if elapsed >= run.duration:
            return scan.launch_outcome
        fraction = elapsed / run.duration if run.duration else 1.0
        return "pending" if fraction < 0.1 else "running" if fraction < 0.7 else "publishing"

    def _modified(self, run: Run) -> int:
        if run.launched_at is None:
            return run.creation_date + 3600
        return run.creation_date + int(min(max(self.now() - run.launched_at, 0), run.duration))

    def _archived(self, run: Run) -> bool:
        return self.now() - run.creation_date > ARCHIVE_AFTER

    def _run(self, scan: Scan, ref: Any) -> Run | None:
        ref = str(ref)
        return next((r for r in scan.runs if str(r.history_id) == ref or r.uuid == ref), None)

    # -- hosts and plugins --------------------------------------------------------------------------

    def _host(self, scan: Scan, i: int) -> Host:
        h = mix(self.seed, scan.id, i, 0x4057)
        if scan.type == "agent":
            role, os_name = "lt", ("Microsoft Windows 11 Enterprise" if h & 1 else "macOS 14.4")
        else:
            role, os_name = HOST_ROLES[h % len(HOST_ROLES)]
        short = f"{role}{i + 1:03d}"
        return Host(
            index=i,
            ip=f"10.{scan.id % 200}.{i // 250}.{i % 250 + 1}",
            fqdn=None if h % 9 == 4 else f"{short}.corp.example.com",
            netbios=short.upper() if "Windows" in os_name or h % 3 == 0 else None,
            os=os_name,
            mac=f"00:50:56:{(h >> 8) & 255:02x}:{(h >> 16) & 255:02x}:{(h >> 24) & 255:02x}",
            uuid=uuid_of(self.seed, scan.id, i, 0x0D),
        )

    def _hosts_in(self, scan: Scan, run: Run, at: float | None = None) -> list[int]:
        k = scan.runs.index(run)
        status = self._status(scan, run, at)
        count = scan.hosts
        if status in ACTIVE_STATUSES or status in ("aborted", "canceled", "stopped"):
            count = math.ceil(count / 2)  # partial results
        down = set(run.down)
        if k >= 1 and scan.hosts >= 2:  # a host that was down for this run (not "fixed")
            down |= {(mix(self.seed, scan.id, k) + d) % scan.hosts for d in range(self.hosts_down)}
        return [i for i in range(count) if i not in down]

    def _plugin_at(self, index: int) -> Plugin:
        catalogue = self._catalogue
        if index >= len(catalogue):
            with self._lock:
                while len(catalogue) <= index:
                    catalogue.append(make_plugin(self.seed, len(catalogue)))
        return catalogue[index]

    def _plugins_for(self, scan: Scan, k: int, i: int) -> list[int]:
        """Catalogue indices on host i in run k: distinct, and each slot changes once every 1/churn runs."""
        per_host = scan.findings_per_host
        size = max(400, 2 * per_host)
        lanes = size // per_host
        h = mix(self.seed, scan.id, i)
        offset = h % size
        period = round(1 / self.churn) if self.churn > 0 else 0
        if not period:
            return [(offset + j) % size for j in range(per_host)]
        out = []
        for j in range(per_host):
            phase = ((((h ^ (j * 0x9E3779B97F4A7C15)) * 0xBF58476D1CE4E5B9) & MASK) >> 40) % period
            out.append((offset + j + per_host * (((k + phase) // period) % lanes)) % size)
        return out

    def _found(self, scan: Scan, k: int, i: int) -> list[int]:
        """Catalogue indices run k found on host i: the churn model minus the run's test-made fixes."""
        indices = self._plugins_for(scan, k, i)
        fixed = scan.runs[k].fixed
        if fixed:
            indices = [x for x in indices if (i, self._plugin_at(x).id) not in fixed]
        return indices

    def findings(
        self, scan_id: int, history_id: int | None = None
    ) -> Iterator[tuple[str, int, int, str, int]]:
        """(host ip, plugin id, port, protocol, severity) of a run, as its export will contain them."""
        scan = self._scans[scan_id]
        run = self._run(scan, history_id) if history_id is not None else scan.runs[-1]
        k = scan.runs.index(run)
        for i in self._hosts_in(scan, run):
            ip = self._host(scan, i).ip
            for index in self._found(scan, k, i):
                p = self._plugin_at(index)
                yield ip, p.id, p.port, p.protocol, p.severity

    def _licensed(self, scan: Scan, i: int) -> bool:
        return scan.unlicensed <= 0 or mix(self.seed, scan.id, i, 0x11C) % 1000 >= scan.unlicensed * 1000

    def _asset_tags(self, scan: Scan, i: int) -> list[str]:
        """The tag value uuids of a host: the scan's tag targets plus a deterministic share of the others."""
        uuids = list(self.tag_values)
        h = mix(self.seed, scan.id, i, 0x7A9)
        picks = set(scan.tag_targets or ())
        location = h % 3
        if location < 2:
            picks.add(uuids[0] if location == 0 else uuids[4])  # Location: Dallas / Austin
        picks.add(uuids[1] if (h >> 8) & 1 else uuids[5])  # Environment: Production / Staging
        if (h >> 16) % 4 == 0:
            picks.add(uuids[2])  # Business Unit: Payments
        if (h >> 24) % 5 == 0:
            picks.add(uuids[3])  # Cloud: AWS
        return [u for u in uuids if u in picks]
