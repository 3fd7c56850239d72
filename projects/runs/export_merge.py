"""Merge Tenable's bulk export chunks into a project: one chunk, one transaction, one ledger row (DESIGN §4b).

Each chunk's findings go through the scan importer's rules — the same `AssetIndex` (Tenable asset uuid first)
and the same `fingerprint`, so a vulnerability that a scan-bound profile and an export-bound profile both see
is one finding — then COPY into a temporary table and set-based SQL, with Tenable's state as the truth:
OPEN → open, REOPENED → reopened, FIXED → fixed at Tenable's `last_fixed`. Tenable's severity, default
severity and modification type (RECASTED, ACCEPTED) are kept beside the effective severity; triage is never
touched, and absence closes nothing (an incremental export leaves out what did not change). Tenable's
`finding_id` is kept for the record: it names the same thing as asset + plugin + port + protocol.

Counting is exact across redeliveries and re-requested exports: every finding a chunk writes is marked with
the run (`last_run_id`), and a finding the run already wrote counts no second time. The chunk's counts go into
its `ExportChunk` ledger row in the same transaction; the run's counts are the sum of its rows.

A project's first sync COPYs (binary) straight into the findings table. `prepare` (rows) runs on download
threads and `merge` may run on several threads at once, each on its own connection: chunks hold disjoint
assets and findings, and plugin definitions are stored before a chunk's transaction, so two merges never wait
on each other.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import psycopg
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from integrations.connectors.base import AssetChunk, VulnChunk
from integrations.formats.records import HostRecord

from ..choices import OPEN_FINDING_STATES, CloseReason, FindingState, Triage, shift_severity
from ..models import Asset, ExportChunk, Finding, FindingEvent, RunAsset, ScanRun
from .importer import AssetIndex, _upsert_assets, _upsert_plugins, fingerprint

EXPORT_TABLE = "export_batch"
EXPORT_COLUMNS = (
    "fingerprint",
    "asset_id",
    "plugin_id",
    "port",
    "protocol",
    "service",
    "severity",
    "effective_severity",
    "severity_default",
    "severity_modification",
    "plugin_output",
    "state",
    "first_found",
    "last_found",
    "last_fixed",
    "tenable_finding_id",
)
STATE_OF = {
    "OPEN": FindingState.OPEN.value,
    "REOPENED": FindingState.REOPENED.value,
    "FIXED": FindingState.FIXED.value,
}
OPEN_STATES = [state.value for state in OPEN_FINDING_STATES]
FIXED = FindingState.FIXED.value
ANALYZE_AFTER = 10_000
# A first sync's COPY straight into the findings table, in this column order (asset_id first: it is known only
# once the chunk's assets are stored).
COPY_COLUMNS = (
    "asset_id, project_id, profile_id, plugin_id, fingerprint, port, protocol, service, severity, "
    "effective_severity, severity_default, severity_modification, plugin_output, state, first_seen, last_seen, "
    "fixed_at, tenable_finding_id, close_reason, triage, triage_reason, first_run_id, last_run_id"
)
COPY_TYPES = [
    "int8", "int8", "int8", "int4", "uuid", "int4", "varchar", "varchar", "int2", "int2", "int2", "varchar", "text",
    "varchar", "timestamptz", "timestamptz", "timestamptz", "varchar", "varchar", "varchar", "varchar", "int8", "int8",
]  # fmt: skip


class _Conflict(Exception):
    """A first-sync chunk met findings that already exist (another import wrote them meanwhile)."""


@dataclass
class PreparedChunk:
    """A downloaded chunk as rows ready to merge (built on a download thread): one row per fingerprint, the
    hosts by identity with their finding counts, and the chunk's plugins."""

    job_uuid: str
    chunk_id: int
    size: int
    rejected: int
    rows: list[tuple]
    hosts: dict[str, tuple[HostRecord, int]]
    plugins: list

    @property
    def findings(self) -> int:
        return len(self.rows)


class ExportMerger:
    """Merges a run's chunks, each in its own transaction on the calling thread's connection (thread-safe).

    On a project's first sync (no findings yet) every chunk is a plain insert; a chunk that meets an existing
    finding is rolled back and merged again the careful way, which every later sync uses from the start.
    """

    def __init__(self, run: ScanRun):
        self.run, self.project, self.profile = run, run.project, run.profile
        self.shift = self.profile.severity_shift if self.profile else 0
        self.now = timezone.now()
        self.postgres = connection.vendor == "postgresql"
        self.assets = AssetIndex(self.project)
        self._assets_lock = threading.Lock()
        self._lock = threading.Lock()  # merges may run on several threads (export_sync._MergeWorkers)
        self._local = threading.local()  # whether this thread's connection has its scratch table
        self.plugins_done: set[int] = set()
        self.fast = not Finding.objects.filter(project=self.project).exists()
        self.inserted = 0  # findings this merger inserted (statistics go stale past ANALYZE_AFTER)
        self.busy = 0.0  # seconds spent merging, for the run log
        self._adapt = connection.ops.adapt_datetimefield_value
        self.ts = self._adapt(self.now)
        self._create_table()
        if not self.fast:
            self.analyze()

    def _create_table(self) -> None:
        """This thread's connection's scratch table (temporary tables belong to one connection)."""
        if getattr(self._local, "table", False):
            return
        with connection.cursor() as cursor:
            self._drop_table(cursor)
            uuid_type = "uuid" if self.postgres else "char(32)"
            when = "timestamp with time zone" if self.postgres else "datetime"
            cursor.execute(
                f"CREATE TEMPORARY TABLE {EXPORT_TABLE} (fingerprint {uuid_type}, asset_id bigint, "
                "plugin_id integer, port integer, protocol varchar(16), service varchar(100), severity smallint, "
                "effective_severity smallint, severity_default smallint, severity_modification varchar(10), "
                f"plugin_output text, state varchar(10), first_found {when}, last_found {when}, "
                f"last_fixed {when}, tenable_finding_id varchar(100))"
            )
            if not self.postgres:  # SQLite joins by nested loops: give it an index to loop over
                cursor.execute(f"CREATE INDEX {EXPORT_TABLE}_fp ON {EXPORT_TABLE} (fingerprint)")
        self._local.table = True

    def analyze(self) -> None:
        """Fresh statistics for the tables each chunk joins (a previous sync or import may have just grown
        them; with stale ones the planner would scan the whole findings table once per chunk)."""
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Finding._meta.db_table}, {Asset._meta.db_table}")

    def close(self) -> None:
        """Drop the temporary table (the connection may serve the next task); refresh the statistics after a
        large insert, so the next sync's or import's plans fit the table."""
        with connection.cursor() as cursor:
            self._drop_table(cursor)
        if self.inserted > ANALYZE_AFTER:
            self.analyze()

    @staticmethod
    def _drop_table(cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {EXPORT_TABLE}")

    # -- vulnerability chunks -----------------------------------------------------------------------------

    def prepare(self, chunk: VulnChunk) -> PreparedChunk:
        """The chunk's findings as rows, once per fingerprint (a later record of the same finding wins).

        Pure Python, safe on a download thread (the asset index is shared under a lock): building rows for the
        next chunks overlaps with the database's work on this one.
        """
        project_id, adapt, postgres, shift = self.project.pk, self._adapt, self.postgres, self.shift
        with self._assets_lock:
            identities = {id(host): self.assets.resolve(host) for host in chunk.hosts()}
        hosts: dict[str, tuple[HostRecord, int]] = {}
        plugins: dict[int, object] = {}
        row_of: dict = {}
        rows: list[tuple] = []
        for f in chunk.findings:
            identity = identities[id(f.host)]
            fp = fingerprint(project_id, identity, f.plugin_id, f.port, f.protocol)
            if f.plugin_id not in plugins:
                plugins[f.plugin_id] = f
            effective = shift_severity(f.severity, shift)
            modification = f.severity_modification if f.severity_modification != "NONE" else ""
            state = STATE_OF[f.state]
            row = (
                fp if postgres else fp.hex,
                identity,
                f.plugin_id,
                f.port,
                f.protocol[:16],
                (f.service or "")[:100],
                f.severity,
                effective,
                f.severity_default,
                modification,
                f.plugin_output or "",
                state,
                f.first_found if postgres else adapt(f.first_found),
                f.last_found if postgres else adapt(f.last_found),
                f.last_fixed if postgres else adapt(f.last_fixed),
                (f.finding_id or "")[:100],
            )
            at = row_of.get(fp)
            if at is None:
                row_of[fp] = len(rows)
                rows.append(row)
                host, count = hosts.get(identity, (f.host, 0))
                hosts[identity] = (host, count + 1)
            else:
                rows[at] = row
        return PreparedChunk(
            chunk.job_uuid,
            chunk.chunk_id,
            chunk.size,
            len(chunk.rejected),
            rows,
            hosts,
            list(plugins.values()),
        )

    def merge(self, chunk: PreparedChunk) -> ExportChunk | None:
        """Merge one prepared chunk and write its ledger row, in one transaction; None if this run merged it
        already."""
        if ExportChunk.objects.filter(
            run=self.run, job_uuid=chunk.job_uuid, chunk_id=chunk.chunk_id
        ).exists():
            return None
        began = time.perf_counter()
        try:
            try:
                return self._merge(chunk, fast=self.fast)
            except _Conflict:
                with self._lock:
                    was_fast, self.fast = self.fast, False
                if was_fast:
                    self.analyze()
                return self._merge(chunk, fast=False)
        finally:
            with self._lock:
                self.busy += time.perf_counter() - began

    def _merge(self, batch: PreparedChunk, *, fast: bool) -> ExportChunk:
        with self._lock:
            plugins = sorted(
                (p for p in batch.plugins if p.plugin_id not in self.plugins_done), key=lambda p: p.plugin_id
            )
        if plugins:
            # Definitions are stored before (and apart from) the chunk's transaction, in one order: chunks merged
            # side by side then never wait on each other's new plugins (a deadlock through the foreign keys).
            _upsert_plugins(plugins)
            with self._lock:
                self.plugins_done.update(p.plugin_id for p in plugins)
        if not fast:
            self._create_table()
        with transaction.atomic():
            with connection.cursor() as cursor:
                if self.postgres:
                    # A chunk's commit need not wait for its WAL flush: if the server crashed before it, the
                    # chunk's ledger row is lost with it and the chunk is merged again. (The run's end and the
                    # cursor's move commit synchronously.)
                    cursor.execute("SET LOCAL synchronous_commit = off")
                    # Foreign keys checked row by row as the COPY streams in (PostgreSQL works while Python still
                    # writes rows), not all at the commit, when this worker would only wait.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    # Each statement joins one chunk against the big findings table: index lookups, never a scan.
                    cursor.execute("SET LOCAL jit = off")
                    cursor.execute("SET LOCAL enable_hashjoin = off")
                    cursor.execute("SET LOCAL enable_mergejoin = off")
            asset_ids = _upsert_assets(self.project, self.run, batch.hosts, self.now) if batch.hosts else {}
            RunAsset.objects.bulk_create(
                [
                    RunAsset(run=self.run, asset_id=asset_ids[i], findings=n)
                    for i, (_, n) in batch.hosts.items()
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
            Asset.objects.filter(pk__in=list(asset_ids.values())).update(
                last_seen=self.now, last_run=self.run
            )
            with connection.cursor() as cursor:
                if fast and self.postgres:
                    counts = self._copy_all(cursor, batch, asset_ids)
                else:
                    rows = [(row[0], asset_ids[row[1]], *row[2:]) for row in batch.rows]
                    cursor.execute(f"DELETE FROM {EXPORT_TABLE}")
                    self._load(cursor, rows)
                    if self.postgres:
                        cursor.execute(f"ANALYZE {EXPORT_TABLE}")
                    counts = self._insert_all(cursor, rows) if fast else self._apply(cursor)
            ledger = ExportChunk.objects.create(
                run=self.run,
                kind=ExportChunk.Kind.VULNS,
                job_uuid=batch.job_uuid,
                chunk_id=batch.chunk_id,
                hosts=len(batch.hosts),
                rejected=batch.rejected,
                bytes=batch.size,
                **counts,
            )
        with self._lock:
            self.inserted += ledger.new
        return ledger

    def _copy_all(self, cursor, batch: PreparedChunk, asset_ids: dict[str, int]) -> dict:
        """A first sync's chunk on PostgreSQL: COPY straight into the findings table, in binary (no text for the
        server to parse). Every finding is new: one that exists makes the COPY fail, and the chunk is merged again
        by `_apply`."""
        project_id, profile_id, run_id, now = (
            self.project.pk,
            self.profile.pk if self.profile else None,
            self.run.pk,
            self.now,
        )
        tenable_fixed = CloseReason.TENABLE_FIXED.value
        try:
            with cursor.cursor.copy(
                f"COPY {Finding._meta.db_table} ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(COPY_TYPES)
                write_row = copy.write_row
                for fp, identity, plugin_id, port, protocol, service, severity, effective, default, modification, \
                        output, state, first, last, fixed, finding_id in batch.rows:  # fmt: skip
                    fixed_state = state == FIXED
                    write_row((
                        asset_ids[identity], project_id, profile_id, plugin_id, fp, port, protocol, service, severity,
                        effective, default, modification, output, state, first or last or now, last or first or now,
                        (fixed or now) if fixed_state else None, finding_id, tenable_fixed if fixed_state else "",
                        "", "", run_id, run_id,
                    ))  # fmt: skip
        except psycopg.errors.UniqueViolation:
            raise _Conflict from None
        return self._all_new(batch.rows)

    @staticmethod
    def _all_new(rows: list[tuple]) -> dict:
        new = len(rows)
        by_severity = dict(Counter(str(row[7]) for row in rows))
        return {
            "findings": new,
            "new": new,
            "fixed": 0,
            "reopened": 0,
            "unchanged": 0,
            "by_severity": by_severity,
        }

    def _load(self, cursor, rows: list[tuple]) -> None:
        if self.postgres:
            with cursor.cursor.copy(f"COPY {EXPORT_TABLE} ({', '.join(EXPORT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(EXPORT_COLUMNS))
            cursor.executemany(f"INSERT INTO {EXPORT_TABLE} VALUES ({marks})", rows)

    def _insert(self, cursor) -> int:
        """Insert the chunk's findings this project does not have yet; returns how many."""
        t_finding = Finding._meta.db_table
        cursor.execute(
            f"""INSERT INTO {t_finding} (project_id, profile_id, asset_id, plugin_id, fingerprint, port, protocol,
                    service, severity, effective_severity, severity_default, severity_modification,
                    tenable_finding_id, plugin_output, state, triage, triage_reason, first_seen, last_seen,
                    fixed_at, close_reason, first_run_id, last_run_id)
                SELECT %s, %s, s.asset_id, s.plugin_id, s.fingerprint, s.port, s.protocol, s.service, s.severity,
                       s.effective_severity, s.severity_default, s.severity_modification, s.tenable_finding_id,
                       s.plugin_output, s.state, %s, '', COALESCE(s.first_found, s.last_found, %s),
                       COALESCE(s.last_found, s.first_found, %s),
                       CASE WHEN s.state = %s THEN COALESCE(s.last_fixed, %s) END,
                       CASE WHEN s.state = %s THEN %s ELSE '' END, %s, %s
                FROM {EXPORT_TABLE} s WHERE 1 = 1
                ON CONFLICT (project_id, fingerprint) DO NOTHING""",
            [
                self.project.pk,
                self.profile.pk if self.profile else None,
                Triage.NONE.value,
                self.ts,
                self.ts,
                FIXED,
                self.ts,
                FIXED,
                CloseReason.TENABLE_FIXED.value,
                self.run.pk,
                self.run.pk,
            ],
        )
        return cursor.rowcount

    def _insert_all(self, cursor, rows: list[tuple]) -> dict:
        """A first sync's chunk: every finding is new (anything else rolls the chunk back for `_apply`)."""
        if self._insert(cursor) != len(rows):
            raise _Conflict
        return self._all_new(rows)

    def _apply(self, cursor) -> dict:
        """Count, record transitions, update what exists and insert what is new — for findings this run has
        not written yet (`last_run_id`); a finding it wrote already (a re-requested export) counts once."""
        t_finding, t_event = Finding._meta.db_table, FindingEvent._meta.db_table
        project_id, run_id = self.project.pk, self.run.pk
        untouched = "(f.last_run_id IS NULL OR f.last_run_id <> %s)"
        cursor.execute(
            f"""SELECT s.effective_severity, COUNT(*),
                       SUM(CASE WHEN f.id IS NULL THEN 1 ELSE 0 END),
                       SUM(CASE WHEN f.state IN (%s, %s) AND s.state = %s THEN 1 ELSE 0 END),
                       SUM(CASE WHEN f.state = %s AND s.state <> %s THEN 1 ELSE 0 END)
                FROM {EXPORT_TABLE} s
                LEFT JOIN {t_finding} f ON f.project_id = %s AND f.fingerprint = s.fingerprint
                WHERE f.id IS NULL OR {untouched}
                GROUP BY s.effective_severity""",
            [*OPEN_STATES, FIXED, FIXED, FIXED, project_id, run_id],
        )
        by_severity, total, fixed, reopened = {}, 0, 0, 0
        for severity, n, _, fixed_n, reopened_n in cursor.fetchall():
            by_severity[str(severity)] = int(n)
            total, fixed, reopened = (
                total + int(n),
                fixed + int(fixed_n or 0),
                reopened + int(reopened_n or 0),
            )
        # History first, while the rows still show where they came from.
        for kind, before, after, note in (
            (FindingEvent.Kind.FIXED, f"f.state IN ('{OPEN_STATES[0]}', '{OPEN_STATES[1]}')", f"s.state = '{FIXED}'",
             "Fixed in Tenable.io"),
            (FindingEvent.Kind.REOPENED, f"f.state = '{FIXED}'", f"s.state <> '{FIXED}'", "Found again by Tenable.io"),
        ):  # fmt: skip
            cursor.execute(
                f"""INSERT INTO {t_event} (finding_id, kind, run_id, actor_id, note, created_at)
                    SELECT f.id, %s, %s, NULL, %s, %s FROM {EXPORT_TABLE} s
                    JOIN {t_finding} f ON f.project_id = %s AND f.fingerprint = s.fingerprint
                    WHERE {before} AND {after} AND {untouched}""",
                [kind.value, run_id, note, self.ts, project_id, run_id],
            )
        later = "CASE WHEN s.last_found IS NOT NULL AND s.last_found > {t}.last_seen THEN s.last_found ELSE {t}.last_seen END"
        cursor.execute(
            f"""UPDATE {t_finding} SET state = s.state, severity = s.severity,
                    effective_severity = s.effective_severity, severity_default = s.severity_default,
                    severity_modification = s.severity_modification, tenable_finding_id = s.tenable_finding_id,
                    plugin_output = s.plugin_output, service = s.service,
                    last_seen = {later.format(t=t_finding)},
                    fixed_at = CASE WHEN s.state = %s THEN COALESCE(s.last_fixed, {t_finding}.fixed_at, %s) END,
                    fixed_by_run_id = CASE WHEN s.state <> %s THEN NULL
                                           WHEN {t_finding}.state = %s THEN {t_finding}.fixed_by_run_id ELSE %s END,
                    close_reason = CASE WHEN s.state <> %s THEN ''
                                        WHEN {t_finding}.state = %s AND {t_finding}.close_reason <> ''
                                        THEN {t_finding}.close_reason ELSE %s END,
                    last_run_id = %s
                FROM {EXPORT_TABLE} s
                WHERE {t_finding}.project_id = %s AND {t_finding}.fingerprint = s.fingerprint
                  AND ({t_finding}.last_run_id IS NULL OR {t_finding}.last_run_id <> %s)""",
            [FIXED, self.ts, FIXED, FIXED, run_id, FIXED, FIXED, CloseReason.TENABLE_FIXED.value, run_id,
             project_id, run_id],
        )  # fmt: skip
        new = self._insert(cursor)
        return {
            "findings": total,
            "new": new,
            "fixed": fixed,
            "reopened": reopened,
            "unchanged": max(0, total - new - fixed - reopened),
            "by_severity": by_severity,
        }

    # -- asset chunks ---------------------------------------------------------------------------------------

    def close_gone(self, chunk: AssetChunk) -> ExportChunk | None:
        """Close the open findings of this project's assets that Tenable deleted or terminated, with that reason;
        one transaction with the chunk's ledger row. None if this run checked the chunk already."""
        if ExportChunk.objects.filter(
            run=self.run, job_uuid=chunk.job_uuid, chunk_id=chunk.chunk_id
        ).exists():
            return None
        began = time.perf_counter()
        fixed = gone_here = 0
        try:
            with transaction.atomic():
                for asset in chunk.gone():
                    uuid = asset.uuid.lower()
                    mine = list(
                        Asset.objects.filter(project=self.project)
                        .filter(Q(host_uuid__in=[asset.uuid, uuid]) | Q(identity=f"uuid:{uuid}"))
                        .values_list("pk", flat=True)
                    )
                    if not mine:
                        continue
                    gone_here += 1
                    terminated = asset.terminated_at is not None and asset.gone == asset.terminated_at
                    reason = CloseReason.ASSET_TERMINATED if terminated else CloseReason.ASSET_DELETED
                    findings = Finding.objects.filter(
                        project=self.project, asset_id__in=mine, state__in=OPEN_STATES
                    )
                    FindingEvent.objects.bulk_create(
                        [
                            FindingEvent(finding_id=pk, kind=FindingEvent.Kind.FIXED, run=self.run,
                                         created_at=self.now, note=reason.label)
                            for pk in findings.values_list("pk", flat=True)
                        ],
                        batch_size=2000,
                    )  # fmt: skip
                    fixed += findings.update(
                        state=FIXED,
                        fixed_at=asset.gone,
                        fixed_by_run=self.run,
                        close_reason=reason.value,
                        last_run=self.run,
                    )
                return ExportChunk.objects.create(
                    run=self.run,
                    kind=ExportChunk.Kind.ASSETS,
                    job_uuid=chunk.job_uuid,
                    chunk_id=chunk.chunk_id,
                    fixed=fixed,
                    hosts=len(chunk.assets),
                    assets_gone=gone_here,
                    rejected=len(chunk.rejected),
                    bytes=chunk.size,
                )
        finally:
            self.busy += time.perf_counter() - began
