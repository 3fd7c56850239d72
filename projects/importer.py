"""Import a `.nessus` stream into a project (DESIGN §4, steps 3–6).

Rows are staged in a per-connection temporary table as the file streams in (PostgreSQL `COPY`, batched
inserts on SQLite), so memory stays flat and progress is visible. Then one transaction merges the stage into
findings with set-based SQL: only rows that change are written, fixed ones are found with an anti-join
scoped to the hosts the run covered, and triage is never touched. Any failure rolls the merge back whole.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

from django.db import connection, transaction
from django.utils import timezone

from integrations.connectors.tenable_io.nessus import NessusHost, NessusItem, iter_hosts

from .choices import shift_severity
from .models import Asset, Finding, FindingEvent, Plugin, Project, RunAsset, ScanRun

STAGE_BATCH = 20_000
STAGE_COLUMNS = (
    "fingerprint",
    "identity",
    "plugin_id",
    "port",
    "protocol",
    "service",
    "severity",
    "effective_severity",
    "plugin_output",
)


@dataclass
class ImportCounts:
    """What one import did; stored on the ScanRun and sent in the webhook."""

    total: int = 0
    new: int = 0
    fixed: int = 0
    reopened: int = 0
    unchanged: int = 0
    hosts: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    log: str = ""


def fingerprint(project_id: int, identity: str, plugin_id: int, port: int, protocol: str) -> uuid.UUID:
    """A finding's identity: project + asset + plugin + port + protocol, as a fixed-size hash (never the output)."""
    key = f"{project_id}|{identity}|{plugin_id}|{port}|{protocol}".encode()
    return uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest())


class AssetIndex:
    """Matches hosts to the project's assets: Tenable host uuid first, then IP, FQDN, NetBIOS name, report name.

    An asset's `identity` is assigned once, when it is first seen, and never changes, so fingerprints stay stable
    even when a later scan reveals a host uuid the first one lacked.
    """

    def __init__(self, project: Project):
        self.project = project
        self.by_key: dict[str, str] = {}
        for identity, host_uuid, ip, fqdn, netbios, name in Asset.objects.filter(project=project).values_list(
            "identity", "host_uuid", "ip", "fqdn", "netbios", "name"
        ):
            for key in self._keys(host_uuid, ip, fqdn, netbios, name):
                self.by_key.setdefault(key, identity)

    @staticmethod
    def _keys(host_uuid, ip, fqdn, netbios, name) -> list[str]:
        pairs = (("uuid", host_uuid), ("ip", ip), ("fqdn", fqdn), ("netbios", netbios), ("name", name))
        return [f"{kind}:{value.lower()}" for kind, value in pairs if value]

    def resolve(self, host: NessusHost) -> str:
        keys = self._keys(host.host_uuid, host.ip, host.fqdn, host.netbios, host.name)
        identity = next((self.by_key[k] for k in keys if k in self.by_key), None) or keys[0]
        for key in keys:
            self.by_key.setdefault(key, identity)
        return identity[:300]


class Stage:
    """A temporary table on this connection holding one run's rows until the merge."""

    table = "import_stage"

    def __init__(self):
        self.postgres = connection.vendor == "postgresql"
        uuid_type = "uuid" if self.postgres else "char(32)"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.table} (fingerprint {uuid_type}, identity varchar(300), "
                "plugin_id integer, port integer, protocol varchar(16), service varchar(100), severity smallint, "
                "effective_severity smallint, plugin_output text)"
            )

    def write(self, rows: list[tuple]) -> None:
        if not rows:
            return
        with connection.cursor() as cursor:
            if self.postgres:
                from psycopg.copy import QueuedLibpqWriter

                raw = cursor.cursor
                # The queued writer sends on a worker thread, so parsing overlaps with the network and server.
                with raw.copy(
                    f"COPY {self.table} ({', '.join(STAGE_COLUMNS)}) FROM STDIN",
                    writer=QueuedLibpqWriter(raw),
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(STAGE_COLUMNS))
                cursor.executemany(f"INSERT INTO {self.table} VALUES ({marks})", rows)

    def finish_loading(self) -> None:
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(f"ANALYZE {self.table}")
            else:
                # SQLite joins by nested loops: give it an index to loop over.
                cursor.execute(f"CREATE INDEX {self.table}_fp ON {self.table} (fingerprint)")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


def import_nessus(
    run: ScanRun,
    source: IO[bytes] | str,
    *,
    severity_shift: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    on_merged: Callable[[ImportCounts], None] | None = None,
) -> ImportCounts:
    """Stream-parse `source`, stage its items and merge them into `run.project`'s findings. Returns the counts.

    `on_merged(counts)` runs inside the merge transaction, so finishing the run commits with the findings or not at all.
    """
    project = run.project
    stage = Stage()
    try:
        started = time.perf_counter()
        hosts, plugins = _stage_items(stage, project, iter_hosts(source), severity_shift, on_progress)
        stage.finish_loading()
        staged = time.perf_counter()
        with transaction.atomic():
            counts = _merge(stage, run, hosts, plugins)
            merged = time.perf_counter()
            counts.log = (
                f"Downloaded, parsed and staged {counts.total:,} findings on {counts.hosts:,} hosts in "
                f"{staged - started:.1f} s; merged in {merged - staged:.1f} s."
            )
            if on_merged:
                on_merged(counts)
            return counts
    finally:
        stage.drop()


def _stage_items(stage: Stage, project: Project, hosts_in: Iterable[NessusHost], shift: int, on_progress):
    """Parse and stage every item; returns the covered hosts (identity → host, item count) and plugins."""
    assets = AssetIndex(project)
    hosts: dict[str, tuple[NessusHost, int]] = {}
    plugins: dict[int, NessusItem] = {}
    postgres = stage.postgres
    rows: list[tuple] = []
    items = 0
    for host in hosts_in:
        identity = assets.resolve(host)
        seen: set[uuid.UUID] = set()
        for item in host.items:
            fp = fingerprint(project.pk, identity, item.plugin_id, item.port, item.protocol)
            if fp in seen:
                continue  # the same finding twice in one host's block counts once
            seen.add(fp)
            plugins.setdefault(item.plugin_id, item)
            rows.append(
                (
                    fp if postgres else fp.hex,
                    identity,
                    item.plugin_id,
                    item.port,
                    item.protocol,
                    (item.service or "")[:100],
                    item.severity,
                    shift_severity(item.severity, shift),
                    item.plugin_output or "",
                )
            )
        items += len(seen)
        previous = hosts.get(identity)
        host.items = []  # the host's items are staged; keep only its properties
        hosts[identity] = (host, len(seen) + (previous[1] if previous else 0))
        if len(rows) >= STAGE_BATCH:
            stage.write(rows)
            rows = []
            if on_progress:
                on_progress(items, len(hosts))
    stage.write(rows)
    if on_progress:
        on_progress(items, len(hosts))
    return hosts, plugins


def _merge(
    stage: Stage, run: ScanRun, hosts: dict[str, tuple[NessusHost, int]], plugins: dict[int, NessusItem]
):
    now = timezone.now()
    project, profile = run.project, run.profile
    _upsert_plugins(plugins.values())
    asset_ids = _upsert_assets(project, run, hosts, now)
    RunAsset.objects.bulk_create(
        [
            RunAsset(run=run, asset_id=asset_ids[identity], findings=count)
            for identity, (_, count) in hosts.items()
        ],
        batch_size=2000,
    )

    t_finding, t_asset, t_stage = Finding._meta.db_table, Asset._meta.db_table, stage.table
    ts = connection.ops.adapt_datetimefield_value(now)
    profile_id = profile.pk if profile else None
    profile_match = "profile_id = %s" if profile else "profile_id IS NULL"
    counts = ImportCounts(hosts=len(hosts))
    with connection.cursor() as cursor:
        if stage.postgres:
            # These statements join whole sets; with stale statistics (a table filled moments ago) the planner
            # would pick nested loops over a seq scan and take minutes. Hash joins are always right here.
            cursor.execute("SET LOCAL enable_nestloop = off")
        # Fixed: open findings of this profile on a host the run covered, absent from the run (anti-join).
        cursor.execute(
            f"""UPDATE {t_finding} SET state = 'fixed', fixed_at = %s, fixed_by_run_id = %s, last_run_id = %s,
                    last_seen = (SELECT a.last_seen FROM {t_asset} a WHERE a.id = {t_finding}.asset_id)
                WHERE project_id = %s AND {profile_match} AND state IN ('open', 'reopened')
                  AND asset_id IN (SELECT asset_id FROM {RunAsset._meta.db_table} WHERE run_id = %s)
                  AND NOT EXISTS (SELECT 1 FROM {t_stage} s WHERE s.fingerprint = {t_finding}.fingerprint)""",
            [ts, run.pk, run.pk, project.pk, *([profile_id] if profile else []), run.pk],
        )
        counts.fixed = cursor.rowcount
        # Reopened: fixed findings seen again.
        cursor.execute(
            f"""UPDATE {t_finding} SET state = 'reopened', fixed_at = NULL, fixed_by_run_id = NULL,
                    last_run_id = %s, last_seen = %s, severity = s.severity,
                    effective_severity = s.effective_severity, plugin_output = s.plugin_output, service = s.service
                FROM {t_stage} s
                WHERE {t_finding}.project_id = %s AND {t_finding}.fingerprint = s.fingerprint
                  AND {t_finding}.state = 'fixed' AND {t_finding}.fixed_by_run_id IS DISTINCT FROM %s""",
            [run.pk, ts, project.pk, run.pk],
        )
        counts.reopened = cursor.rowcount
        # Still open: write only the rows whose severity, output or service changed.
        cursor.execute(
            f"""UPDATE {t_finding} SET severity = s.severity, effective_severity = s.effective_severity,
                    plugin_output = s.plugin_output, service = s.service
                FROM {t_stage} s
                WHERE {t_finding}.project_id = %s AND {t_finding}.fingerprint = s.fingerprint
                  AND {t_finding}.state IN ('open', 'reopened') AND {t_finding}.last_run_id IS DISTINCT FROM %s
                  AND ({t_finding}.severity <> s.severity OR {t_finding}.effective_severity <> s.effective_severity
                       OR {t_finding}.plugin_output <> s.plugin_output OR {t_finding}.service <> s.service)""",
            [project.pk, run.pk],
        )
        # New: never seen in this project.
        cursor.execute(
            f"""INSERT INTO {t_finding} (project_id, profile_id, asset_id, plugin_id, fingerprint, port, protocol,
                    service, severity, effective_severity, plugin_output, state, triage, triage_reason,
                    first_seen, last_seen, first_run_id, last_run_id)
                SELECT %s, %s, a.id, s.plugin_id, s.fingerprint, s.port, s.protocol, s.service, s.severity,
                       s.effective_severity, s.plugin_output, 'open', '', '', %s, %s, %s, %s
                FROM {t_stage} s JOIN {t_asset} a ON a.project_id = %s AND a.identity = s.identity
                WHERE NOT EXISTS (SELECT 1 FROM {t_finding} f WHERE f.project_id = %s AND f.fingerprint = s.fingerprint)
                ON CONFLICT (project_id, fingerprint) DO NOTHING""",
            [project.pk, profile_id, ts, ts, run.pk, run.pk, project.pk, project.pk],
        )
        counts.new = cursor.rowcount
        # The covered hosts were seen now (after the closure above read their previous last_seen).
        cursor.execute(
            f"UPDATE {t_asset} SET last_seen = %s, last_run_id = %s WHERE id IN "
            f"(SELECT asset_id FROM {RunAsset._meta.db_table} WHERE run_id = %s)",
            [ts, run.pk, run.pk],
        )
        cursor.execute(
            f"SELECT effective_severity, COUNT(DISTINCT fingerprint) FROM {t_stage} GROUP BY effective_severity"
        )
        counts.by_severity = {str(severity): n for severity, n in cursor.fetchall()}
    counts.total = sum(counts.by_severity.values())
    counts.unchanged = max(0, counts.total - counts.new - counts.reopened)
    if stage.postgres and counts.new > 10_000:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {t_finding}, {t_asset}")
    _record_events(run, now)
    return counts


def _record_events(run: ScanRun, now) -> None:
    """History rows for the findings whose state this run changed (opening is implied by `first_run`)."""
    fixed = Finding.objects.filter(project=run.project, fixed_by_run=run).values_list("pk", flat=True)
    reopened = Finding.objects.filter(project=run.project, last_run=run, state="reopened").values_list(
        "pk", flat=True
    )
    FindingEvent.objects.bulk_create(
        [
            FindingEvent(
                finding_id=pk,
                kind=FindingEvent.Kind.FIXED,
                run=run,
                created_at=now,
                note="Not seen on a host the run covered",
            )
            for pk in fixed.iterator()
        ]
        + [
            FindingEvent(
                finding_id=pk, kind=FindingEvent.Kind.REOPENED, run=run, created_at=now, note="Seen again"
            )
            for pk in reopened.iterator()
        ],
        batch_size=2000,
    )


def _upsert_plugins(items: Iterable[NessusItem]) -> None:
    """Store each vulnerability definition once; the latest scan's text wins."""
    Plugin.objects.bulk_create(
        [
            Plugin(
                plugin_id=i.plugin_id,
                name=(i.plugin_name or f"Plugin {i.plugin_id}")[:500],
                family=(i.plugin_family or "")[:200],
                synopsis=i.synopsis or "",
                description=i.description or "",
                solution=i.solution or "",
                see_also=i.see_also,
                cves=i.cves,
                cwes=i.cwes,
                risk_factor=i.risk_factor or "",
                cvss_base_score=i.cvss_base_score,
                cvss_vector=(i.cvss_vector or "")[:200],
                cvss3_base_score=i.cvss3_base_score,
                cvss3_vector=(i.cvss3_vector or "")[:200],
                vpr_score=i.vpr_score,
                epss_score=i.epss_score,
                publication_date=i.publication_date,
                patch_date=i.patch_date,
            )
            for i in items
        ],
        update_conflicts=True,
        unique_fields=["plugin_id"],
        update_fields=[
            "name",
            "family",
            "synopsis",
            "description",
            "solution",
            "see_also",
            "cves",
            "cwes",
            "risk_factor",
            "cvss_base_score",
            "cvss_vector",
            "cvss3_base_score",
            "cvss3_vector",
            "vpr_score",
            "epss_score",
            "publication_date",
            "patch_date",
        ],
        batch_size=500,
    )


def _upsert_assets(
    project: Project, run: ScanRun, hosts: dict[str, tuple[NessusHost, int]], now
) -> dict[str, int]:
    """Create or refresh the covered hosts' assets; returns identity → asset id. Leaves last_seen for the closure."""
    Asset.objects.bulk_create(
        [
            Asset(
                project=project,
                identity=identity,
                name=(host.fqdn or host.name or host.ip or identity)[:300],
                host_uuid=(host.host_uuid or "")[:100],
                ip=(host.ip or "")[:64],
                fqdn=(host.fqdn or "")[:300],
                netbios=(host.netbios or "")[:100],
                os=(host.os or "")[:300],
                mac=(host.mac or "")[:300],
                first_seen=now,
                last_seen=now,
                last_run=run,
            )
            for identity, (host, _) in hosts.items()
        ],
        update_conflicts=True,
        unique_fields=["project", "identity"],
        update_fields=["name", "host_uuid", "ip", "fqdn", "netbios", "os", "mac"],
        batch_size=1000,
    )
    ids: dict[str, int] = {}
    identities = list(hosts)
    for start in range(0, len(identities), 5000):
        ids.update(
            Asset.objects.filter(project=project, identity__in=identities[start : start + 5000]).values_list(
                "identity", "pk"
            )
        )
    return ids
