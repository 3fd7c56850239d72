"""A run of a "Vulnerability data" profile: sync Tenable's bulk vulnerability export into the project (DESIGN §4b).

The flow, phase by phase as the run page shows it:

1. Take the connection's `ExportLease` (one export job per connection at a time, across workers and profiles);
   a run that finds it busy goes back to the queue behind the holder (`WaitForConnection`, not an attempt).
2. **Requesting the export**: all three states; `since` = the profile's cursor (the time the last fully
   successful sync requested its export) minus EXPORT_CURSOR_OVERLAP, or the start of time (or the chosen
   window) on a first sync — without a time filter Tenable returns only 30 days. A 409 adopts the running job;
   a redelivered or retried task adopts the job it stored on the run.
3. **Tenable preparing**: status polls back off from TENABLE_POLL_INITIAL to EXPORT_POLL_MAX, under the
   EXPORT_SYNC_DEADLINE, after which the job is cancelled and the run fails saying so.
4. **Merging chunks**: chunks are downloaded as soon as they are listed, out of order, on a pool of
   EXPORT_CHUNK_DOWNLOADS threads (HTTP and decoding only, no database), never more than that many decoded
   chunks held at once; this thread merges each in its own transaction with its ledger row, skipping chunks
   the run merged already. An unreadable chunk is downloaded again (bounded), an expired one (404 after 24 h)
   means one new export; ERROR, CANCELLED, failed chunks or a chunk that stays unreadable fail the run.
5. **Checking assets**: an asset export since the same time finds deleted and terminated assets; their open
   findings close with that reason.
6. One final transaction sums the ledger into the run's counts, finishes the run (sending `run_finished`) and
   moves the cursor. Every failure leaves the cursor where it was, so the next run asks for the same period.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import connection, transaction
from django.db.models import Sum
from django.template.defaultfilters import pluralize
from django.utils import timezone

from accounts.models import record
from integrations.connectors import Connector, ConnectorError
from integrations.connectors.base import AssetExportRequest, ExportStatus, VulnExportRequest

from ..choices import ACTIVE_RUN_STATUSES, RunStatus
from ..models import ExportChunk, ExportLease, RunAsset, ScannerProfile, ScanRun
from .export_merge import ExportMerger, PreparedChunk

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK_ATTEMPTS = 3  # downloads of a chunk that is not valid JSON before the run fails
EXPORT_RESTARTS = 1  # new exports requested when a job's chunks expired
ASSET_CHUNK_SIZE = 1000
BEAT_SECONDS = 2.0  # how often the worker proves it is alive (lease, run heartbeat) and looks for a cancel
NEXT_STEP = (
    "Chunks merged before this stay; the cursor did not move, so the next run asks Tenable.io for the same "
    "period again."
)


class WaitForConnection(Exception):
    """Another run holds the connection's export lease: queue this run again after `countdown` seconds."""

    def __init__(self, message: str, countdown: float):
        super().__init__(message)
        self.message = message
        self.countdown = countdown


class SyncFailed(Exception):
    """The sync cannot complete (incomplete export, unreadable chunk, deadline): `message` says what and next."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _DeadlinePassed(Exception):
    pass


def sync_vulnerability_data(run: ScanRun, connector: Connector) -> None:
    """Sync the profile's export scope into its project under the connection's lease (see the module docstring).

    A transient connector error propagates with the lease kept (the retry of this run continues the same export
    job); anything else cancels the Tenable job if it may still run, and gives the lease back.
    """
    profile = run.profile
    taken, holder = ExportLease.take(profile.integration_id, run, settings.EXPORT_LEASE_SECONDS)
    if not taken:
        raise WaitForConnection(busy_message(holder, profile), settings.EXPORT_LEASE_WAIT)
    sync = ExportSync(run, connector)
    keep_lease = False
    try:
        sync.execute()
    except WaitForConnection:
        keep_lease = True  # lost to another run: not ours to give back
        raise
    except BaseException as exc:
        keep_lease = isinstance(exc, ConnectorError) and not exc.permanent
        if not keep_lease:
            sync.cancel_job()
        raise
    finally:
        sync.close()
        if not keep_lease:
            ExportLease.release(run)


def busy_message(holder: ScanRun | None, profile: ScannerProfile) -> str:
    """Why a run waits: which run uses the connection's export now."""
    who = f"run #{holder.pk}" if holder else "another run"
    if holder is not None and holder.profile is not None:
        who += f" of {holder.profile.name}"
        if holder.project_id != profile.project_id:
            who += f" (project {holder.project.name})"
    return (
        f"Waiting for {who}, which is exporting through the connection {profile.integration.name}: "
        "one export runs per connection at a time. This run starts when it is done."
    )


class ExportSync:
    """One attempt at a sync: the export job it follows, the chunk pipeline, progress on the run row."""

    def __init__(self, run: ScanRun, connector: Connector):
        self.run, self.connector, self.profile = run, connector, run.profile
        self.deadline = time.monotonic() + settings.EXPORT_SYNC_DEADLINE
        self.downloads = settings.EXPORT_CHUNK_DOWNLOADS
        # Merge threads need their own connections, which see only what is committed: not inside a transaction.
        self.side_by_side = (
            settings.EXPORT_MERGE_CONNECTIONS > 1
            and connection.vendor == "postgresql"
            and not connection.in_atomic_block
        )
        self.merger: ExportMerger | None = None
        self.job: tuple[str, str] | None = ("vulns", run.export_job_uuid) if run.export_job_uuid else None
        self.job_active = self.job is not None
        self.requested = time.monotonic()
        self.created_seen = False
        self.last_beat = 0.0
        self.notes: list[str] = []
        self.downloaded = self.merged = self.findings = self.in_flight = 0
        self.expected: int | None = None
        self.tenable_status = ""

    # -- the flow ---------------------------------------------------------------------------------------

    def execute(self) -> None:
        run = self.run
        self._report(RunStatus.REQUESTING, "Requesting the export from Tenable.io")
        self.merger = ExportMerger(run)
        began = time.monotonic()
        try:
            since = self._follow_vulns()
        except _DeadlinePassed:
            raise SyncFailed(self._deadline_message()) from None
        merged_in = time.monotonic() - began
        self.notes.append(
            f"Vulnerability export: {self.merged:,} chunk{pluralize(self.merged)} merged in {merged_in:.1f} s "
            f"(merging took {self.merger.busy:.1f} s; downloads overlapped it, {self.downloads} at a time)."
        )
        try:
            self._check_assets(since)
        except _DeadlinePassed:
            raise SyncFailed(self._deadline_message()) from None
        self._finish()

    def _follow_vulns(self) -> datetime:
        """Request (or adopt) the export and merge all of its chunks; returns the `since` it asked for."""
        restarts = 0
        since = self.run.export_since if self.job else None
        while True:
            if self.job is None:
                since = self._since()
                self._request(since)
            try:
                self._follow(
                    self.job[1],
                    self.connector.vuln_export_status,
                    self._prepared_chunk,
                    self.merger.merge,
                    self._vuln_progress,
                    side_by_side=self.side_by_side,
                )
                return since or EPOCH
            except ConnectorError as exc:
                if exc.kind != "expired":
                    raise
                if restarts >= EXPORT_RESTARTS:
                    raise SyncFailed(
                        f"{exc.message} A new export was requested once already and it expired too. {NEXT_STEP}"
                    ) from None
                restarts += 1
                self.notes.append(f"Export job {self.job[1]} expired ({exc.message}); requesting a new one.")
                log.info("Run %s: export job %s expired; requesting a new one", self.run.pk, self.job[1])
                self.cancel_job()  # if it still runs, the new request must not adopt it again
                self.job, self.job_active = None, False

    def _since(self) -> datetime:
        """The cursor minus the overlap; on a first sync the start of time, or the chosen window."""
        profile = ScannerProfile.objects.only("sync_cursor", "first_sync_days").get(pk=self.profile.pk)
        if profile.sync_cursor is not None:
            return max(EPOCH, profile.sync_cursor - timedelta(seconds=settings.EXPORT_CURSOR_OVERLAP))
        if profile.first_sync_days:
            return timezone.now() - timedelta(days=profile.first_sync_days)
        return EPOCH

    def _request(self, since: datetime) -> None:
        profile = self.profile
        tag = (
            (profile.scope_category, profile.scope_value) if profile.export_scope.startswith("tag:") else None
        )
        request = VulnExportRequest(
            since=int(since.timestamp()),
            severities=profile.severities,
            tag=tag,
            include_unlicensed=profile.include_unlicensed,
            num_assets=settings.EXPORT_NUM_ASSETS,
        )
        job = self.connector.start_vuln_export(request)
        self.job, self.job_active = ("vulns", job.uuid), True
        self.requested, self.created_seen = time.monotonic(), False
        ScanRun.objects.filter(pk=self.run.pk).update(
            export_job_uuid=job.uuid,
            export_requested_at=timezone.now(),
            export_since=since,
            tenable_status="",
        )
        self.run.export_job_uuid, self.run.export_since = job.uuid, since
        window = "everything" if since == EPOCH else f"since {since:%Y-%m-%d %H:%M} UTC"
        how = "adopted the export job already running with the same filters" if job.adopted else "requested"
        self.notes.append(f"Export job {job.uuid} {how} ({window}).")

    def _check_assets(self, since: datetime) -> None:
        self._report(RunStatus.CHECKING, "Checking assets: which were deleted or terminated in Tenable.io")
        began = time.monotonic()
        request = AssetExportRequest(since=int(since.timestamp()), chunk_size=ASSET_CHUNK_SIZE)
        for attempt in range(EXPORT_RESTARTS + 1):
            job = self.connector.start_asset_export(request)
            self.job, self.job_active = ("assets", job.uuid), True
            self.downloaded = self.merged = 0
            self.expected = None
            try:
                self._follow(
                    job.uuid,
                    self.connector.asset_export_status,
                    self.connector.asset_export_chunk,
                    self.merger.close_gone,
                    self._asset_progress,
                )
                break
            except ConnectorError as exc:
                if exc.kind != "expired":
                    raise
                if attempt == EXPORT_RESTARTS:
                    raise SyncFailed(
                        f"{exc.message} A new asset export was requested once already and it expired too. "
                        f"{NEXT_STEP}"
                    ) from None
                self.notes.append(f"Asset export {job.uuid} expired ({exc.message}); requesting a new one.")
                self.cancel_job()
        checked = ExportChunk.objects.filter(run=self.run, kind=ExportChunk.Kind.ASSETS).aggregate(
            assets=Sum("hosts"), gone=Sum("assets_gone"), fixed=Sum("fixed")
        )
        self.notes.append(
            f"Asset check: {checked['assets'] or 0:,} assets updated, deleted or terminated since then; "
            f"{checked['gone'] or 0} of this project's gone, {checked['fixed'] or 0:,} open findings closed "
            f"({time.monotonic() - began:.1f} s)."
        )

    def _finish(self) -> None:
        """Sum the ledger into the run, finish it and move the cursor, in one transaction."""
        run, profile = self.run, self.profile
        with transaction.atomic():
            vulns = ExportChunk.objects.filter(run=run, kind=ExportChunk.Kind.VULNS)
            sums = vulns.aggregate(
                total=Sum("findings"), new=Sum("new"), reopened=Sum("reopened"), unchanged=Sum("unchanged"),
                rejected=Sum("rejected"), fixed=Sum("fixed"),
            )  # fmt: skip
            assets = ExportChunk.objects.filter(run=run, kind=ExportChunk.Kind.ASSETS).aggregate(
                fixed=Sum("fixed"), gone=Sum("assets_gone")
            )
            by_severity: dict[str, int] = {}
            for counts in vulns.values_list("by_severity", flat=True):
                for severity, n in counts.items():
                    by_severity[severity] = by_severity.get(severity, 0) + n
            total = sums["total"] or 0
            hosts = RunAsset.objects.filter(run=run).count()
            gone = assets["gone"] or 0
            rejected = sums["rejected"] or 0
            if rejected:
                self.notes.append(
                    f"{rejected:,} record{pluralize(rejected)} did not fit Tenable's schema and "
                    f"{pluralize(rejected, 'was,were')} set aside (the worker log names them)."
                )
            chunks = vulns.count()
            cursor = ScanRun.objects.values_list("export_requested_at", flat=True).get(pk=run.pk)
            message = f"Synced {intcomma(total)} finding{pluralize(total)} on {intcomma(hosts)} host{pluralize(hosts)}"
            if gone:
                message += f"; {gone} asset{pluralize(gone)} gone in Tenable.io"
            finished = run.finish(
                RunStatus.SUCCEEDED,
                message=message,
                count_total=total,
                count_new=sums["new"] or 0,
                count_fixed=(sums["fixed"] or 0) + (assets["fixed"] or 0),
                count_reopened=sums["reopened"] or 0,
                count_unchanged=sums["unchanged"] or 0,
                count_hosts=hosts,
                count_by_severity=by_severity,
                log="\n".join(self.notes),
                progress_done=chunks,
                progress_total=chunks,
            )
            if not finished:
                return
            ScannerProfile.objects.filter(pk=profile.pk).update(sync_cursor=cursor)
            record(
                None, "run.succeeded", run, None,
                new=run.count_new, fixed=run.count_fixed, reopened=run.count_reopened, total=total,
            )  # fmt: skip
        self.job_active = False

    # -- the chunk pipeline --------------------------------------------------------------------------------

    def _follow(
        self,
        job_uuid: str,
        status_of: Callable[[str], ExportStatus],
        chunk_of: Callable[[str, int], Any],
        merge: Callable[[Any], Any],
        progress: Callable[[ExportStatus | None], None],
        *,
        side_by_side: bool = False,
    ) -> ExportStatus:
        """Poll the job and merge every chunk it lists, each once, never holding more chunks than download slots
        plus merge slots.

        `chunk_of` runs on the download pool's threads (download, decode, rows: no database). `merge` runs on
        this thread, or with `side_by_side` on PostgreSQL on EXPORT_MERGE_CONNECTIONS merge threads, each with
        its own connection, so the database works on several chunks at once.
        """
        merged = set(
            ExportChunk.objects.filter(run=self.run, job_uuid=job_uuid).values_list("chunk_id", flat=True)
        )
        self.merged = self.downloaded = len(merged)
        pending: deque[int] = deque()
        listed: set[int] = set(merged)
        events: queue.Queue = queue.Queue()  # finished downloads (futures) and merges (tuples)
        downloading: dict[Future, int] = {}
        ready: deque = deque()  # downloaded, waiting for a merge slot
        merging = 0
        workers = _MergeWorkers(settings.EXPORT_MERGE_CONNECTIONS, merge, events) if side_by_side else None
        slots = self.downloads + (workers.count if workers else 0)
        delay, next_poll = settings.TENABLE_POLL_INITIAL, 0.0
        final: ExportStatus | None = None
        pool = ThreadPoolExecutor(max_workers=self.downloads, thread_name_prefix="export-chunk")
        try:
            while True:
                self._beat()
                if final is None and time.monotonic() >= next_poll:
                    status = status_of(job_uuid)
                    fresh = [c for c in status.chunks_available if c not in listed]
                    pending.extend(fresh)
                    listed.update(fresh)
                    self._seen(status)
                    if status.active:
                        delay = (
                            settings.TENABLE_POLL_INITIAL
                            if fresh
                            else min(delay * 1.5, settings.EXPORT_POLL_MAX)
                        )
                        next_poll = time.monotonic() + delay
                    else:
                        self.job_active = False
                        problem = status.problem()
                        if problem:
                            raise SyncFailed(f"{problem} {NEXT_STEP}")
                        final = status
                    progress(status)
                while pending and len(downloading) + len(ready) + merging < slots:
                    chunk_id = pending.popleft()
                    future = pool.submit(self._download, chunk_of, job_uuid, chunk_id)
                    downloading[future] = chunk_id
                    future.add_done_callback(events.put)
                self.in_flight = len(downloading)
                if ready and workers is None:
                    self._merged(merge(ready.popleft()), progress)
                    continue
                while ready and workers is not None and merging < workers.count:
                    workers.submit(ready.popleft())
                    merging += 1
                if final is not None and not (pending or downloading or ready or merging):
                    return final
                until_poll = next_poll - time.monotonic() if final is None else BEAT_SECONDS
                try:
                    event = events.get(timeout=max(0.01, min(until_poll, BEAT_SECONDS)))
                except queue.Empty:
                    continue
                if isinstance(event, Future):
                    chunk_id = downloading.pop(event)
                    self.downloaded, self.in_flight = self.downloaded + 1, len(downloading)
                    ready.append(self._result(event, job_uuid, chunk_id))
                else:
                    merging -= 1
                    _, ledger, error = event
                    if error is not None:
                        raise error
                    self._merged(ledger, progress)
        finally:
            for future in downloading:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            if workers is not None:
                workers.close()

    def _merged(self, ledger: ExportChunk | None, progress: Callable) -> None:
        """Count one merged chunk and show it."""
        if ledger is not None:
            self.findings += ledger.findings if ledger.kind == ExportChunk.Kind.VULNS else 0
        self.merged += 1
        progress(None)

    def _prepared_chunk(self, job_uuid: str, chunk_id: int) -> PreparedChunk:
        """Download, decode and turn into rows one vulnerability chunk (on a pool thread)."""
        return self.merger.prepare(self.connector.vuln_export_chunk(job_uuid, chunk_id))

    @staticmethod
    def _download(chunk_of: Callable[[str, int], Any], job_uuid: str, chunk_id: int) -> Any:
        """One chunk, downloaded and decoded on a pool thread (no database here); an unreadable one again."""
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                return chunk_of(job_uuid, chunk_id)
            except ConnectorError as exc:
                if exc.kind != "unreadable" or attempt == CHUNK_ATTEMPTS:
                    raise
                log.warning(
                    "Export %s chunk %s unreadable (attempt %s); downloading it again",
                    job_uuid,
                    chunk_id,
                    attempt,
                )
        raise AssertionError("unreachable")

    def _result(self, future: Future, job_uuid: str, chunk_id: int) -> Any:
        try:
            return future.result()
        except ConnectorError as exc:
            if exc.kind == "unreadable":
                raise SyncFailed(
                    f"{exc.message} It was downloaded {CHUNK_ATTEMPTS} times and never read whole, so the "
                    f"export is incomplete. {NEXT_STEP}"
                ) from None
            raise

    def _seen(self, status: ExportStatus) -> None:
        """Remember Tenable's own creation time of the job (the cursor, on Tenable's clock) and its status."""
        self.tenable_status = status.status
        if status.total_chunks is not None:  # empty chunks are never listed: they are not waited for
            self.expected = max(0, status.total_chunks - (status.empty_chunks or 0))
        if self.job and self.job[0] == "vulns" and not self.created_seen and status.created is not None:
            self.created_seen = True
            ScanRun.objects.filter(pk=self.run.pk).update(export_requested_at=status.created)

    def _beat(self) -> None:
        """Every BEAT_SECONDS: keep the lease and the run's heartbeat, notice a cancel, watch the deadline."""
        now = time.monotonic()
        if now > self.deadline:
            raise _DeadlinePassed
        if now - self.last_beat < BEAT_SECONDS:
            return
        self.last_beat = now
        self.run.check_canceled()
        if not ExportLease.extend(self.profile.integration_id, self.run, settings.EXPORT_LEASE_SECONDS):
            raise WaitForConnection(
                "Another run took this connection's export lease (this worker was silent too long); waiting "
                "for it to finish.",
                settings.EXPORT_LEASE_WAIT,
            )
        ScanRun.objects.filter(pk=self.run.pk, status__in=ACTIVE_RUN_STATUSES).update(
            heartbeat_at=timezone.now()
        )

    # -- progress on the run row ----------------------------------------------------------------------------

    def _report(self, status: str, message: str, **fields: Any) -> None:
        ScanRun.objects.filter(pk=self.run.pk, status__in=ACTIVE_RUN_STATUSES).update(
            status=status, message=message[:500], heartbeat_at=timezone.now(), **fields
        )

    def _vuln_progress(self, status: ExportStatus | None) -> None:
        if self.merged == 0 and self.downloaded == 0 and not (status and status.chunks_available):
            if status is None:
                return
            elapsed = _duration(time.monotonic() - self.requested)
            self._report(
                RunStatus.PREPARING,
                f"Tenable.io is preparing the export ({status.status}, {elapsed})",
                tenable_status=status.status,
            )
            return
        expected = f"{self.expected:,}" if self.expected is not None else "?"
        fields = {"progress_done": self.merged, "progress_total": self.expected, "count_total": self.findings}
        if status is not None:
            fields["tenable_status"] = status.status
        loading = f" ({self.in_flight} downloading)" if self.in_flight else ""
        self._report(
            RunStatus.MERGING,
            f"Chunks: {self.downloaded:,} of {expected} downloaded{loading}, {self.merged:,} merged "
            f"· {self.findings:,} findings",
            **fields,
        )

    def _asset_progress(self, status: ExportStatus | None) -> None:
        expected = f"{self.expected:,}" if self.expected is not None else "?"
        state = f" ({status.status})" if status is not None and status.active else ""
        self._report(
            RunStatus.CHECKING,
            f"Checking assets{state}: {self.merged:,} of {expected} asset chunks checked",
        )

    def _deadline_message(self) -> str:
        minutes = max(1, round(settings.EXPORT_SYNC_DEADLINE / 60))
        what = "vulnerability" if not self.job or self.job[0] == "vulns" else "asset"
        outcome = self.cancel_job()
        stopped = (
            f"the export job was cancelled ({outcome})"
            if outcome
            else "the export job could not be cancelled"
        )
        return (
            f"Tenable.io had not finished the {what} export within the {minutes}-minute deadline "
            f"(EXPORT_SYNC_DEADLINE; last status {self.tenable_status or 'unknown'}); {stopped}. {NEXT_STEP} "
            "Large containers can take longer: raise EXPORT_SYNC_DEADLINE, or narrow the profile to a tag."
        )

    # -- giving up ------------------------------------------------------------------------------------------

    def cancel_job(self) -> str:
        """Cancel the Tenable job if it may still run (never an error of its own); returns its status, or ""."""
        if not self.job or not self.job_active:
            return ""
        kind, uuid = self.job
        self.job_active = False
        cancel = self.connector.cancel_vuln_export if kind == "vulns" else self.connector.cancel_asset_export
        try:
            outcome = cancel(uuid)
        except ConnectorError as exc:
            log.warning("Run %s: could not cancel export %s: %s", self.run.pk, uuid, exc.kind)
            return ""
        log.info("Run %s: cancelled Tenable export %s (%s)", self.run.pk, uuid, outcome)
        return outcome

    def close(self) -> None:
        """Drop the merger's scratch table; never hides the error that ended the sync."""
        if self.merger is None:
            return
        try:
            self.merger.close()
        except Exception:
            log.exception("Run %s: could not drop the export's scratch table", self.run.pk)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


class _MergeWorkers:
    """Threads that merge chunks side by side, each on its own database connection (closed when it stops).

    Each result goes to `events` as (chunk, ledger row or None, error or None), for the sync's thread to count.
    """

    def __init__(self, count: int, merge: Callable[[Any], Any], events: queue.Queue):
        self.count, self.merge, self.events = count, merge, events
        self.tasks: queue.Queue = queue.Queue()
        self.threads = [
            threading.Thread(target=self._work, name=f"export-merge-{n}", daemon=True) for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, chunk: Any) -> None:
        self.tasks.put(chunk)

    def _work(self) -> None:
        try:
            while (chunk := self.tasks.get()) is not None:
                try:
                    self.events.put((chunk, self.merge(chunk), None))
                except BaseException as exc:  # handed to the sync's thread, which raises it
                    self.events.put((chunk, None, exc))
        finally:
            connection.close()

    def close(self) -> None:
        """Stop after the chunks being merged (what is queued and not started is dropped)."""
        while True:
            try:
                self.tasks.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join(timeout=300)
