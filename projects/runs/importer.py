"""Import a stream of hosts (from a connector or a `.nessus` upload) into a project (DESIGN §4, steps 3–6).

The hosts become batches of rows; a merger applies each batch inside ONE transaction with
set-based SQL as it arrives (new findings inserted, fixed ones seen again reopened, changed ones updated;
unchanged ones never rewritten), and at the end closes the findings of the hosts the run covered that it did
not see (an anti-join). Triage is never touched. Any failure rolls the whole import back.

On PostgreSQL the merger runs on its own connection in a second thread, so parsing (Python, one core)
overlaps with the database's work (the other core), and progress committed by the parser's connection is
visible while the import transaction is still open. Memory stays flat: at most a few batches are in flight.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from integrations.formats.records import PLUGIN_OUTPUT_MAX, TRUNCATED_MARKER, FindingRecord, HostRecord

from ..choices import OPEN_FINDING_STATES, CloseReason, FindingState, Triage, shift_severity
from ..models import Asset, Finding, FindingEvent, Plugin, Project, RunAsset, ScanRun

BATCH_ROWS = 20_000
OPEN_STATES = [state.value for state in OPEN_FINDING_STATES]  # as SQL parameters
BATCH_COLUMNS = (
    "fingerprint",
    "asset_id",
    "plugin_id",
    "port",
    "protocol",
    "service",
    "severity",
    "effective_severity",
    "plugin_output",
)
# Between the outputs of one finding that the scan reported more than once on a host.
OUTPUT_SEPARATOR = "\n\n--- reported again (same plugin, port and protocol) ---\n\n"


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
    """Matches hosts to the project's assets (DESIGN §3, RELIABILITY D1); built once per import, no per-host query.

    The Tenable host uuid decides: two hosts whose uuids differ are never one asset. The weaker keys (FQDN, then
    NetBIOS name, then IP, then report name) match only where one side has no uuid, and a weak key that two
    assets share matches nothing. Hosts of one file are never merged with each other, except the same host
    uuid (or the same uuid-less ReportHost block) repeated. An asset's `identity` is assigned once and never
    changes, so fingerprints stay stable when a later scan reveals a uuid the first one lacked.
    """

    WEAK = ("fqdn", "netbios", "ip", "name")  # in the order they are tried

    def __init__(self, project: Project):
        self.project = project
        self.uuid_of: dict[str, str] = {}  # identity → host uuid or ""; its keys are the identities in use
        self.by_uuid: dict[str, str] = {}  # host uuid → identity
        self.by_key: dict[str, str | set[str]] = {}  # weak key → identity, or the identities sharing it
        self.keys_of: dict[str, tuple[str, ...]] = {}  # identity → its weak keys
        self.claimed: set[str] = set()  # identities already given to a host of this file
        self.blocks: dict[tuple, str] = {}  # a uuid-less host's properties → identity, within this file
        rows = Asset.objects.filter(project=project).values_list(
            "identity", "host_uuid", "ip", "fqdn", "netbios", "name"
        )
        for identity, host_uuid, ip, fqdn, netbios, name in rows:
            host_uuid = host_uuid.lower()
            if not host_uuid and identity.startswith("uuid:") and "#" not in identity:
                host_uuid = identity[5:]  # an older import cleared the uuid this identity was made from
            self._add(identity, host_uuid, self._keys(fqdn, netbios, ip, name))

    @staticmethod
    def _keys(fqdn: str | None, netbios: str | None, ip: str | None, name: str | None) -> tuple[str, ...]:
        pairs = zip(AssetIndex.WEAK, (fqdn, netbios, ip, name), strict=True)
        return tuple(f"{kind}:{value.lower()}" for kind, value in pairs if value)

    def _add(self, identity: str, host_uuid: str, keys: tuple[str, ...]) -> None:
        self.uuid_of[identity] = host_uuid
        if host_uuid:
            self.by_uuid.setdefault(host_uuid, identity)
        self.keys_of[identity] = keys
        for key in keys:
            current = self.by_key.setdefault(key, identity)
            if isinstance(current, set):
                current.add(identity)
            elif current != identity:
                self.by_key[key] = {current, identity}

    def _forget_keys(self, identity: str) -> None:
        for key in self.keys_of.pop(identity, ()):
            current = self.by_key.get(key)
            if isinstance(current, set):
                current.discard(identity)
                if len(current) == 1:
                    self.by_key[key] = next(iter(current))
            elif current == identity:
                del self.by_key[key]

    def resolve(self, host: HostRecord) -> str:
        """The identity of `host`'s asset, new or existing. Fills in the asset's known uuid if the host lacks one."""
        host_uuid = (host.host_uuid or "").lower()
        keys = self._keys(host.fqdn, host.netbios, host.ip, host.name)
        block = (host.name, host.ip, host.fqdn, host.netbios)
        identity = self.by_uuid.get(host_uuid) if host_uuid else self.blocks.get(block)
        if identity is None:
            identity = self._weak_match(keys, host_uuid) or self._new_identity(host_uuid, host.ip, keys)
        if not host_uuid:
            self.blocks.setdefault(block, identity)
        self.claimed.add(identity)
        known_uuid = self.uuid_of.get(identity, "")
        if self.keys_of.get(identity) != keys or host_uuid != known_uuid:  # new, moved, or gained a uuid
            self._forget_keys(identity)
            self._add(identity, host_uuid or known_uuid, keys)
        if not host.host_uuid and known_uuid:
            host.host_uuid = known_uuid  # the upsert must not erase what an earlier scan told us
        return identity

    def _weak_match(self, keys: tuple[str, ...], host_uuid: str) -> str | None:
        """The one asset a weak key names, if that asset is free in this file and one side has no uuid."""
        for key in keys:
            candidate = self.by_key.get(key)
            if candidate is None or isinstance(candidate, set):
                continue  # unknown, or ambiguous: matches nothing
            if candidate in self.claimed or (host_uuid and self.uuid_of[candidate]):
                continue
            return candidate
        return None

    def _new_identity(self, host_uuid: str, ip: str | None, keys: tuple[str, ...]) -> str:
        """A fresh identity, unique in the project even when a weak key collides with an existing asset."""
        if host_uuid:
            base = f"uuid:{host_uuid}"
        else:
            base = f"ip:{ip.lower()}" if ip else (keys[0] if keys else "host:")
        base = base[:290]
        identity, n = base, 1
        while identity in self.uuid_of:
            n += 1
            identity = f"{base}#{n}"
        return identity


BATCH_TABLE = "import_batch"
SEEN_TABLE = "import_seen"


@dataclass
class Batch:
    """Rows of up to BATCH_ROWS findings with the hosts and the new plugins they mention."""

    rows: list[tuple]
    hosts: dict[str, tuple[HostRecord, int]]
    plugins: list[FindingRecord]


def import_hosts(
    run: ScanRun,
    hosts_in: Iterable[HostRecord],
    *,
    severity_shift: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    on_merged: Callable[[ImportCounts], None] | None = None,
) -> ImportCounts:
    """Merge the findings of `hosts_in` (read lazily, host by host) into `run.project`. Returns the counts.

    `on_merged(counts)` runs inside the import transaction, so finishing the run commits with the findings or
    not at all.
    """
    merger = Merger(run, on_merged)
    # A second connection cannot see rows the caller has not committed; inside a transaction, merge inline.
    threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
    runner = _ThreadedRunner(merger) if threaded else _InlineRunner(merger)
    try:
        for batch, items, hosts in _batches(run.project, hosts_in, severity_shift):
            runner.submit(batch)
            if on_progress:
                on_progress(items, hosts)
        counts = runner.finish()
    except BaseException:
        runner.abort()
        raise
    return counts


def _batches(project: Project, hosts_in: Iterable[HostRecord], shift: int):
    """Yield (batch, items so far, hosts so far): rows ready for the merger, each finding once per host.

    An item repeated on one host (same plugin, port and protocol) is one finding that keeps every distinct
    output, in file order, so re-importing the same file changes nothing (RELIABILITY P7).
    """
    assets = AssetIndex(project)
    postgres = connection.vendor == "postgresql"
    plugins_seen: set[int] = set()
    batch = Batch([], {}, [])
    row_of: dict[uuid.UUID, int] = {}  # fingerprint → its row in this batch
    items = hosts = 0
    for host in hosts_in:
        identity = assets.resolve(host)
        added = 0
        for item in host.items:
            fp = fingerprint(project.pk, identity, item.plugin_id, item.port, item.protocol)
            at = row_of.get(fp)
            if at is not None:
                row = batch.rows[at]
                batch.rows[at] = (*row[:8], join_outputs(row[8], item.plugin_output or ""))
                continue
            row_of[fp] = len(batch.rows)
            added += 1
            if item.plugin_id not in plugins_seen:
                plugins_seen.add(item.plugin_id)
                batch.plugins.append(item)
            batch.rows.append(
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
        items += added
        hosts += 1
        host.items = []  # batched; keep only the host's properties
        previous = batch.hosts.get(identity)
        batch.hosts[identity] = (host, added + (previous[1] if previous else 0))
        if len(batch.rows) >= BATCH_ROWS:
            yield batch, items, hosts
            batch = Batch([], {}, [])
            row_of = {}
    yield batch, items, hosts


def join_outputs(first: str, second: str) -> str:
    """One finding's outputs when the scan reported it twice: both, in file order, each distinct text once."""
    if not second or second in first.split(OUTPUT_SEPARATOR):
        return first
    if not first:
        return second
    joined = f"{first}{OUTPUT_SEPARATOR}{second}"
    if len(joined) > PLUGIN_OUTPUT_MAX:
        joined = joined[: PLUGIN_OUTPUT_MAX - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
    return joined


class Merger:
    """Applies batches to the findings inside one transaction on the connection of the thread that calls it."""

    def __init__(self, run: ScanRun, on_merged: Callable[[ImportCounts], None] | None):
        self.run, self.project, self.profile = run, run.project, run.profile
        self.on_merged = on_merged
        self.counts = ImportCounts()
        self.now = timezone.now()
        self.atomic = transaction.atomic()
        self.postgres = connection.vendor == "postgresql"
        self.started = time.perf_counter()
        self.busy = 0.0  # seconds spent applying batches, to tell in the log which side was the limit

    def start(self) -> None:
        self.atomic.__enter__()
        self.ts = connection.ops.adapt_datetimefield_value(self.now)
        uuid_type = "uuid" if self.postgres else "char(32)"
        # On a project's first import nothing can be reopened or changed: skip those statements entirely.
        self.first_import = not Finding.objects.filter(project=self.project).exists()
        with connection.cursor() as cursor:
            if self.postgres:
                # Per-batch statements are "a small batch against the big, indexed findings table": index lookups
                # are right. Statistics must describe the table as it is (a previous import may have just
                # grown it), and no plan may scan the whole table once per batch. JIT would only add latency.
                cursor.execute("SET LOCAL jit = off")
                if not self.first_import:
                    cursor.execute(f"ANALYZE {Finding._meta.db_table}")
                cursor.execute("SET LOCAL enable_hashjoin = off")
                cursor.execute("SET LOCAL enable_mergejoin = off")
            # Dropped explicitly at the end: ON COMMIT DROP would not fire inside a caller's transaction.
            self._drop_tables(cursor)
            cursor.execute(
                f"CREATE TEMPORARY TABLE {BATCH_TABLE} (fingerprint {uuid_type}, asset_id bigint, plugin_id integer, "
                "port integer, protocol varchar(16), service varchar(100), severity smallint, "
                "effective_severity smallint, plugin_output text)"
            )
            cursor.execute(
                f"CREATE TEMPORARY TABLE {SEEN_TABLE} (fingerprint {uuid_type}, effective_severity smallint)"
            )
            if not self.postgres:  # SQLite joins by nested loops: give it indexes to loop over
                cursor.execute(f"CREATE INDEX {BATCH_TABLE}_fp ON {BATCH_TABLE} (fingerprint)")
                cursor.execute(f"CREATE INDEX {SEEN_TABLE}_fp ON {SEEN_TABLE} (fingerprint)")

    @staticmethod
    def _drop_tables(cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {BATCH_TABLE}")
        cursor.execute(f"DROP TABLE IF EXISTS {SEEN_TABLE}")

    def apply(self, batch: Batch) -> None:
        """Insert what is new, reopen what came back, update what changed — for this batch's rows."""
        began = time.perf_counter()
        try:
            self._apply(batch)
        finally:
            self.busy += time.perf_counter() - began

    def _apply(self, batch: Batch) -> None:
        if batch.plugins:
            _upsert_plugins(batch.plugins)
        asset_ids: dict[str, int] = {}
        if batch.hosts:
            asset_ids = _upsert_assets(self.project, self.run, batch.hosts, self.now)
            RunAsset.objects.bulk_create(
                [
                    RunAsset(run=self.run, asset_id=asset_ids[i], findings=n)
                    for i, (_, n) in batch.hosts.items()
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
        if not batch.rows:
            return
        t_finding, run_id, project_id = Finding._meta.db_table, self.run.pk, self.project.pk
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {BATCH_TABLE}")
            # A batch holds whole hosts, so every row's asset was just upserted: resolve it here, not by a join.
            self._load(cursor, [(row[0], asset_ids[row[1]], *row[2:]) for row in batch.rows])
            if self.postgres:
                cursor.execute(
                    f"ANALYZE {BATCH_TABLE}"
                )  # ~20 ms; lets the planner drive lookups from the batch
            cursor.execute(
                f"INSERT INTO {SEEN_TABLE} SELECT fingerprint, effective_severity FROM {BATCH_TABLE}"
            )
            if not self.first_import:
                self._update_existing(cursor, t_finding, run_id, project_id)
            # New: never seen in this project (rows that exist are skipped by the unique index).
            cursor.execute(
                f"""INSERT INTO {t_finding} (project_id, profile_id, asset_id, plugin_id, fingerprint, port, protocol,
                        service, severity, effective_severity, plugin_output, state, triage, triage_reason,
                        first_seen, last_seen, first_run_id, last_run_id)
                    SELECT %s, %s, s.asset_id, s.plugin_id, s.fingerprint, s.port, s.protocol, s.service, s.severity,
                           s.effective_severity, s.plugin_output, %s, %s, '', %s, %s, %s, %s
                    FROM {BATCH_TABLE} s WHERE 1 = 1
                    ON CONFLICT (project_id, fingerprint) DO NOTHING""",
                [
                    project_id,
                    self.profile.pk if self.profile else None,
                    FindingState.OPEN.value,
                    Triage.NONE.value,
                    self.ts,
                    self.ts,
                    run_id,
                    run_id,
                ],
            )
            self.counts.new += cursor.rowcount

    def _update_existing(self, cursor, t_finding: str, run_id: int, project_id: int) -> None:
        """Reopen fixed findings seen again; rewrite open ones only where severity, output or service changed."""
        # Reopened: fixed findings seen again.
        cursor.execute(
            f"""UPDATE {t_finding} SET state = %s, fixed_at = NULL, fixed_by_run_id = NULL, close_reason = '',
                    last_run_id = %s, last_seen = %s, severity = s.severity,
                    effective_severity = s.effective_severity, plugin_output = s.plugin_output, service = s.service
                FROM {BATCH_TABLE} s
                WHERE {t_finding}.project_id = %s AND {t_finding}.fingerprint = s.fingerprint
                  AND {t_finding}.state = %s""",
            [FindingState.REOPENED.value, run_id, self.ts, project_id, FindingState.FIXED.value],
        )
        self.counts.reopened += cursor.rowcount
        # Still open: write only the rows whose severity, output or service changed.
        cursor.execute(
            f"""UPDATE {t_finding} SET severity = s.severity, effective_severity = s.effective_severity,
                    plugin_output = s.plugin_output, service = s.service
                FROM {BATCH_TABLE} s
                WHERE {t_finding}.project_id = %s AND {t_finding}.fingerprint = s.fingerprint
                  AND {t_finding}.state IN (%s, %s) AND {t_finding}.last_run_id IS DISTINCT FROM %s
                  AND ({t_finding}.severity <> s.severity OR {t_finding}.effective_severity <> s.effective_severity
                       OR {t_finding}.plugin_output <> s.plugin_output OR {t_finding}.service <> s.service)""",
            [project_id, *OPEN_STATES, run_id],
        )

    def _load(self, cursor, rows: list[tuple]) -> None:
        if self.postgres:
            with cursor.cursor.copy(f"COPY {BATCH_TABLE} ({', '.join(BATCH_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(BATCH_COLUMNS))
            cursor.executemany(f"INSERT INTO {BATCH_TABLE} VALUES ({marks})", rows)

    def finish(self) -> ImportCounts:
        """Close what the run's hosts no longer report, count, record history, finish the run, commit."""
        t_finding, t_asset, t_run_asset = (
            Finding._meta.db_table,
            Asset._meta.db_table,
            RunAsset._meta.db_table,
        )
        run_id, project_id, counts = self.run.pk, self.project.pk, self.counts
        profile_match = "profile_id = %s" if self.profile else "profile_id IS NULL"
        with connection.cursor() as cursor:
            if self.postgres:
                # The closure joins two whole sets. With stale statistics (a table filled moments ago) the
                # planner would pick a nested loop over a seq scan and take minutes; a hash anti-join is right.
                # (Per-batch statements above want the opposite: index lookups from a small batch.)
                cursor.execute("SET LOCAL enable_nestloop = off")
                cursor.execute("SET LOCAL enable_hashjoin = on")
                cursor.execute("SET LOCAL enable_mergejoin = on")
            # Fixed: open findings of this profile on a host the run covered, absent from the run (anti-join).
            cursor.execute(
                f"""UPDATE {t_finding} SET state = %s, fixed_at = %s, fixed_by_run_id = %s, last_run_id = %s,
                        close_reason = %s, last_seen = (SELECT a.last_seen FROM {t_asset} a WHERE a.id = {t_finding}.asset_id)
                    WHERE project_id = %s AND {profile_match} AND state IN (%s, %s)
                      AND asset_id IN (SELECT asset_id FROM {t_run_asset} WHERE run_id = %s)
                      AND NOT EXISTS (SELECT 1 FROM {SEEN_TABLE} s WHERE s.fingerprint = {t_finding}.fingerprint)""",
                [
                    FindingState.FIXED.value,
                    self.ts,
                    run_id,
                    run_id,
                    CloseReason.NOT_SEEN.value,
                    project_id,
                    *([self.profile.pk] if self.profile else []),
                    *OPEN_STATES,
                    run_id,
                ],
            )
            counts.fixed = cursor.rowcount
            # The covered hosts were seen now (after the closure above read their previous last_seen).
            cursor.execute(
                f"UPDATE {t_asset} SET last_seen = %s, last_run_id = %s WHERE id IN "
                f"(SELECT asset_id FROM {t_run_asset} WHERE run_id = %s)",
                [self.ts, run_id, run_id],
            )
            cursor.execute(
                f"SELECT effective_severity, COUNT(DISTINCT fingerprint) FROM {SEEN_TABLE} GROUP BY effective_severity"
            )
            counts.by_severity = {str(severity): n for severity, n in cursor.fetchall()}
            # Counted here, not per batch: a host repeated in a later batch is still one host.
            cursor.execute(f"SELECT COUNT(*) FROM {t_run_asset} WHERE run_id = %s", [run_id])
            counts.hosts = cursor.fetchone()[0]
            counts.total = sum(counts.by_severity.values())
            counts.unchanged = max(0, counts.total - counts.new - counts.reopened)
            self._drop_tables(cursor)
            if self.postgres and counts.new > 10_000:
                cursor.execute(f"ANALYZE {t_finding}, {t_asset}")
        _record_events(self.run, self.now)
        elapsed = time.perf_counter() - self.started
        counts.log = (
            f"Imported {counts.total:,} findings on {counts.hosts:,} hosts in {elapsed:.1f} s "
            f"(database busy {self.busy:.1f} s while the file streamed in; closing and counting took the rest)."
        )
        if self.on_merged:
            self.on_merged(counts)
        self.atomic.__exit__(None, None, None)
        return counts

    def abort(self, exc: BaseException | None = None) -> None:
        """Roll everything back."""
        self.atomic.__exit__(type(exc) if exc else RuntimeError, exc or RuntimeError("import aborted"), None)


class _InlineRunner:
    """Merge in the calling thread (SQLite, or when the caller already holds a transaction)."""

    def __init__(self, merger: Merger):
        self.merger = merger
        self.started = False

    def submit(self, batch: Batch) -> None:
        if not self.started:
            self.merger.start()
            self.started = True
        self.merger.apply(batch)

    def finish(self) -> ImportCounts:
        if not self.started:
            self.merger.start()
            self.started = True
        counts = self.merger.finish()  # if this raises, abort() must still roll back
        self.started = False
        return counts

    def abort(self) -> None:
        if self.started:
            self.started = False
            self.merger.abort()


_DONE = object()


class _ThreadedRunner:
    """Merge on a second thread with its own connection, a bounded queue between parser and merger."""

    def __init__(self, merger: Merger):
        self.merger = merger
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.result: ImportCounts | None = None
        self.aborted = threading.Event()
        self.thread = threading.Thread(target=self._work, name="import-merger", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            self.merger.start()
            try:
                while True:
                    batch = self.queue.get()
                    if self.aborted.is_set():
                        raise RuntimeError("import aborted")
                    if batch is _DONE:
                        self.result = self.merger.finish()
                        return
                    self.merger.apply(batch)
            except BaseException as exc:
                self.merger.abort(exc)
                raise
        except BaseException as exc:  # handed to the parser's thread, which re-raises it
            self.error = exc
        finally:
            connection.close()

    def submit(self, batch) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise()

    def finish(self) -> ImportCounts:
        self.submit(_DONE)
        self.thread.join()
        self._raise()
        return self.result

    def abort(self) -> None:
        """Make the merger roll back: drop what is queued, then wake it with a stop it will refuse to finish on."""
        self.aborted.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(_DONE)
        self.thread.join(timeout=60)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _record_events(run: ScanRun, now) -> None:
    """History rows for the findings whose state this run changed (opening is implied by `first_run`)."""
    fixed = Finding.objects.filter(project=run.project, fixed_by_run=run).values_list("pk", flat=True)
    reopened = Finding.objects.filter(
        project=run.project, last_run=run, state=FindingState.REOPENED
    ).values_list("pk", flat=True)
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


def _upsert_plugins(items: Iterable[FindingRecord]) -> None:
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
    project: Project, run: ScanRun, hosts: dict[str, tuple[HostRecord, int]], now
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
