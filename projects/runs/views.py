"""Runs: Run now, the run page with its live progress, the runs history, cancel, and `.nessus` upload."""

from __future__ import annotations

import uuid
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from accounts.models import record
from integrations.formats import nessus

from ..choices import RunStatus, Severity, Trigger
from ..models import ScanRun
from ..permissions import get_profile, get_project
from .services import QUEUE_UNAVAILABLE, RunRefused, cancel_run, enqueue_upload, request_run

WORKER_WAIT_WARNING = 30  # seconds a run may sit queued, untouched by any worker, before the page says so

PHASES = [
    (RunStatus.QUEUED, "Queued"),
    (RunStatus.LAUNCHING, "Launching"),
    (RunStatus.WAITING, "Waiting for Tenable"),
    (RunStatus.EXPORTING, "Exporting"),
    (RunStatus.IMPORTING, "Importing"),
]
# A "Vulnerability data" sync (runs.export_sync): Tenable's bulk export instead of one scan's .nessus.
EXPORT_PHASES = [
    (RunStatus.QUEUED, "Queued"),
    (RunStatus.REQUESTING, "Requesting the export"),
    (RunStatus.PREPARING, "Tenable preparing"),
    (RunStatus.MERGING, "Merging chunks"),
    (RunStatus.CHECKING, "Checking assets"),
]


@require_POST
def run_now(request: HttpRequest, pk: int, profile_pk: int) -> HttpResponse:
    """Run now: queue a run of the profile, or say which run is already active (with a link to it)."""
    profile = get_profile(request, pk, profile_pk, edit=True)
    try:
        run = request_run(profile, trigger=Trigger.MANUAL, user=request.user)
    except RunRefused as refused:
        if refused.run and refused.run.is_active:
            messages.warning(request, refused.message)
            target = refused.run.get_absolute_url()
        else:
            messages.error(request, refused.message)
            target = refused.run.get_absolute_url() if refused.run else profile.project.get_absolute_url()
    else:
        # No "queued" message: the run page shows the live status, and a flash would go stale above a finished run.
        target = run.get_absolute_url()
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@require_GET
def run_detail(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    """The run page; its progress fragment polls itself and stops (HTTP 286) once the run has ended."""
    project = get_project(request, pk)
    run = get_object_or_404(
        ScanRun.objects.select_related("profile", "requested_by"), pk=run_pk, project=project
    )
    export_run = bool(run.profile and run.profile.is_export) or bool(run.export_job_uuid)
    if export_run:
        phases = EXPORT_PHASES
    else:
        phases = PHASES if (run.profile and run.profile.start_scan) else PHASES[:1] + PHASES[3:]
    context = {
        "project": project,
        "run": run,
        "export_run": export_run,
        "phases": phases,
        "severity_counts": [
            (s.label, run.count_by_severity.get(str(s.value), 0)) for s in reversed(Severity)
        ],
        "unclaimed_for": _unclaimed_for(run),
    }
    if request.htmx and request.htmx.target == f"run-{run.pk}":
        response = render(request, "projects/partials/_run_progress.html", context)
        if not run.is_active:
            stop = HttpResponseStopPolling(response.content)
            stop["Content-Type"] = response["Content-Type"]
            return stop
        return response
    return render(request, "projects/run.html", context)


def _unclaimed_for(run: ScanRun) -> str:
    """How long a queued run has waited without any worker taking it ("45 seconds"), once past WORKER_WAIT_WARNING."""
    if run.status != RunStatus.QUEUED or run.started_at is not None:
        return ""
    waited = int((timezone.now() - run.created_at).total_seconds())
    if waited < WORKER_WAIT_WARNING:
        return ""
    return f"{waited} seconds" if waited < 120 else timesince(run.created_at)


@require_GET
def run_list(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project(request, pk)
    runs = ScanRun.objects.filter(project=project).select_related("profile").order_by("-created_at")
    profile_id = request.GET.get("profile", "")
    if profile_id.isdigit():
        runs = runs.filter(profile_id=int(profile_id))
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    return render(request, "projects/runs.html", {"project": project, "page": page, "profile_id": profile_id})


@require_POST
def run_cancel(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    project = get_project(request, pk, edit=True)
    run = get_object_or_404(ScanRun.objects.select_related("profile"), pk=run_pk, project=project)
    if cancel_run(run, request.user):
        if run.export_job_uuid or (run.profile and run.profile.is_export):
            messages.success(
                request,
                f"Run #{run.pk} canceled; chunks it merged stay, and the next run syncs the same period.",
            )
        else:
            messages.success(request, f"Run #{run.pk} canceled; nothing from it was imported.")
    else:
        messages.info(request, f"Run #{run.pk} had already finished.")
    return HttpResponseClientRedirect(run.get_absolute_url()) if request.htmx else redirect(run)


# ---------------------------------------------------------------------------------------------------------------
# Upload
# ---------------------------------------------------------------------------------------------------------------
class CappedUploadHandler(FileUploadHandler):
    """Stops an upload as soon as it passes NESSUS_UPLOAD_MAX_BYTES, before it is all received (RELIABILITY P4)."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0
        self.too_large = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # Raising here would escape Django's parser; refuse at the first chunk instead, before reading the rest.
        self.too_large = bool(
            content_length and content_length > settings.NESSUS_UPLOAD_MAX_BYTES + 64 * 1024
        )

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.too_large or self.received > settings.NESSUS_UPLOAD_MAX_BYTES:
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


class UploadForm(forms.Form):
    file = forms.FileField(
        label=".nessus file",
        help_text="A Nessus v2 export from Tenable.io, Tenable.sc or Nessus Professional "
        "(in Tenable.io: open the scan, Export › Nessus). CSV exports are not supported.",
        widget=forms.ClearableFileInput(attrs={"accept": ".nessus,.xml"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.NESSUS_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is larger than the {filesizeformat(settings.NESSUS_UPLOAD_MAX_BYTES)} limit."
            )
        head = upload.read(4096)
        upload.seek(0)
        try:
            # The parser's own first look (CSV, DTD in any encoding, wrong root), so the user hears it now.
            nessus.check_head(head)
        except nessus.NessusParseError as exc:
            raise forms.ValidationError(exc.message) from None
        if f"<{nessus.ROOT_TAG}" not in nessus.head_text(head):
            raise forms.ValidationError(
                "This is not a Nessus v2 export (.nessus): its root element must be <NessusClientData_v2>."
            )
        return upload


@csrf_exempt  # the handler must be set before the CSRF check reads POST; csrf_protect below still enforces it
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Import a `.nessus` file into the project through the same pipeline as a Tenable run."""
    # Access first: a viewer's or outsider's body must not be read (up to the cap, to disk) before 403/404.
    try:
        project = get_project(request, pk, edit=request.method == "POST")
    except (Http404, PermissionDenied) as refused:
        # Answered here: Django's error views run a CSRF check, and that would read the body after all.
        status = 404 if isinstance(refused, Http404) else 403
        return render(request, f"{status}.html", status=status)
    request.upload_handlers = [CappedUploadHandler(request), *request.upload_handlers]
    return _upload(request, project)


@csrf_protect
def _upload(request: HttpRequest, project) -> HttpResponse:
    limit = filesizeformat(settings.NESSUS_UPLOAD_MAX_BYTES)
    form = UploadForm(request.POST or None, request.FILES or None)
    too_large = (
        request.method == "POST"
        and "file" not in request.FILES
        and _declared_size(request) > settings.NESSUS_UPLOAD_MAX_BYTES
    )
    if request.method == "POST" and not too_large and form.is_valid():
        run = _store_and_queue(request, project, form.cleaned_data["file"])
        return redirect(run)
    context = {
        "project": project,
        "form": UploadForm() if too_large else form,
        "limit": limit,
        "too_large": too_large,
    }
    return render(request, "projects/upload.html", context, status=413 if too_large else 200)


def _declared_size(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _store_and_queue(request: HttpRequest, project, upload_file) -> ScanRun:
    """Save the upload under a generated name (never the user's) and queue its import."""
    folder = Path(settings.MEDIA_ROOT) / "nessus"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}.nessus"
    with target.open("wb") as out:
        for chunk in upload_file.chunks():
            out.write(chunk)
    run = ScanRun.objects.create(
        project=project, trigger=Trigger.UPLOAD, requested_by=request.user,
        source_name=Path(upload_file.name).name[:300], message="Waiting for a worker",
    )  # fmt: skip
    record(request.user, "run.uploaded", run, request, file=run.source_name, bytes=upload_file.size)
    enqueue_upload(run, str(target))
    run.refresh_from_db()
    if run.status == RunStatus.FAILED:
        messages.error(request, QUEUE_UNAVAILABLE)
    # Otherwise no flash message: the run page itself says what is happening (a message would go stale).
    return run
