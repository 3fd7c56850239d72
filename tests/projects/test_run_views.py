"""Run now, the run page and its polling, cancel, the runs list and upload — as users with different roles."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from projects.choices import RunStatus
from projects.models import Finding, ScannerProfile, ScanRun
from tests.conftest import make_project
from tests.integrations.conftest import make_integration

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "nessus"
HX = {"HX-Request": "true"}


@pytest.fixture
def published(monkeypatch):
    """Record publishes instead of talking to a broker."""
    sent: list = []
    monkeypatch.setattr("projects.runs.services._publish", lambda run_id: sent.append(run_id))
    return sent


@pytest.fixture
def setup(member, viewer):
    project = make_project("Payments", members=[member], viewers=[viewer])
    profile = ScannerProfile.objects.create(
        project=project,
        integration=make_integration("http://127.0.0.1:9"),
        name="Weekly",
        scan_id=5,
        meta_data="m",
    )
    return project, profile


def test_run_now_queues_a_run_and_redirects_to_it(
    member_client, setup, published, django_capture_on_commit_callbacks
):
    project, profile = setup
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("projects:run_now", args=[project.pk, profile.pk]))
    run = ScanRun.objects.get()
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    assert published == [run.pk] and run.trigger == "manual" and run.status == RunStatus.QUEUED


def test_second_run_now_says_one_is_running_and_links_to_it(member_client, setup, published):
    project, profile = setup
    active = ScanRun.objects.create(project=project, profile=profile, status=RunStatus.IMPORTING)
    response = member_client.post(reverse("projects:run_now", args=[project.pk, profile.pk]), follow=True)
    assert response.redirect_chain[-1][0] == active.get_absolute_url()
    assert b"already in progress" in response.content and ScanRun.objects.count() == 1


def test_viewers_and_outsiders_cannot_run_or_cancel(client, viewer, outsider, setup, published):
    project, profile = setup
    run = ScanRun.objects.create(project=project, profile=profile)
    client.force_login(viewer)
    assert client.post(reverse("projects:run_now", args=[project.pk, profile.pk])).status_code == 403
    assert client.post(reverse("projects:run_cancel", args=[project.pk, run.pk])).status_code == 403
    assert client.get(run.get_absolute_url()).status_code == 200  # viewers read
    client.force_login(outsider)
    for url in (run.get_absolute_url(), reverse("projects:runs", args=[project.pk])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("projects:run_now", args=[project.pk, profile.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and ScanRun.objects.count() == 1 and published == []


def test_progress_polls_while_active_and_stops_when_done(member_client, setup):
    project, profile = setup
    run = ScanRun.objects.create(
        project=project,
        profile=profile,
        status=RunStatus.IMPORTING,
        progress_done=3,
        progress_total=12,
        message="Importing findings",
    )
    poll = member_client.get(run.get_absolute_url(), headers={**HX, "HX-Target": f"run-{run.pk}"})
    html = poll.content.decode()
    assert poll.status_code == 200 and 'hx-trigger="every 1s"' in html and 'aria-valuenow="25"' in html
    ScanRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        count_new=7,
        count_fixed=2,
        count_by_severity={"4": 1},
        message="Imported 9 findings",
    )
    done = member_client.get(run.get_absolute_url(), headers={**HX, "HX-Target": f"run-{run.pk}"})
    assert done.status_code == 286 and b"every 1s" not in done.content and b"Critical 1" in done.content
    assert f"/projects/{project.pk}/findings/?run={run.pk}&amp;change=new".encode() in done.content


def test_failed_run_shows_the_reason(member_client, setup):
    project, profile = setup
    run = ScanRun.objects.create(
        project=project, profile=profile, status=RunStatus.FAILED, error="Invalid User Key or Secret Key."
    )
    html = member_client.get(run.get_absolute_url()).content.decode()
    assert "findings are exactly as they were" in html and "Invalid User Key or Secret Key." in html


def test_cancel_a_running_run(member_client, setup):
    project, profile = setup
    run = ScanRun.objects.create(project=project, profile=profile, status=RunStatus.EXPORTING)
    member_client.post(reverse("projects:run_cancel", args=[project.pk, run.pk]))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED and "Canceled by member" in run.message


def test_runs_list(member_client, setup):
    project, profile = setup
    ScanRun.objects.create(project=project, profile=profile, status=RunStatus.SUCCEEDED, count_new=5)
    html = member_client.get(reverse("projects:runs", args=[project.pk])).content.decode()
    assert "Weekly" in html and "Succeeded" in html


def test_upload_imports_through_the_pipeline(
    member_client, setup, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    project, _ = setup
    if not (FIXTURES / "nessus_many_vuln.xml").exists():
        pytest.skip("shared fixtures absent")
    settings.MEDIA_ROOT = tmp_path
    from projects.runs import services as runs

    # Run the import where the worker would, right after the web request commits.
    monkeypatch.setattr(
        "projects.tasks.import_uploaded_file.apply_async",
        lambda args, retry=False: runs.execute_upload(*args),
    )
    data = (FIXTURES / "nessus_many_vuln.xml").read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("projects:upload", args=[project.pk]),
            {"file": SimpleUploadedFile("../../etc/evil name.nessus", data)},
        )
    run = ScanRun.objects.get(trigger="upload")
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    run.refresh_from_db()
    assert (
        run.status == RunStatus.SUCCEEDED and run.count_total == 7 and run.source_name == "evil name.nessus"
    )
    assert Finding.objects.filter(project=project).count() == 7
    assert list(tmp_path.rglob("*")) == [tmp_path / "nessus"]  # the stored file is removed after import
    # The run page says what happened; no "uploaded; importing it…" flash goes stale above a finished run.
    html = member_client.get(response.url).content.decode()
    assert "uploaded; importing" not in html and "Succeeded" in html


def test_upload_rejects_wrong_files_and_oversize(member_client, setup, settings):
    project, _ = setup
    url = reverse("projects:upload", args=[project.pk])
    html = member_client.post(
        url, {"file": SimpleUploadedFile("x.nessus", b"%PDF-1.7 not xml")}
    ).content.decode()
    assert "This is not a Nessus v2 export" in html and not ScanRun.objects.exists()
    settings.NESSUS_UPLOAD_MAX_BYTES = 1024
    big = b"<NessusClientData_v2>" + b" " * 200_000
    response = member_client.post(url, {"file": SimpleUploadedFile("big.nessus", big)})
    assert response.status_code == 413 and b"larger than" in response.content and not ScanRun.objects.exists()


def test_upload_of_a_csv_export_says_how_to_export_a_nessus_file(member_client, setup):
    """Issue 12 §7: a Tenable.io CSV export is named as such, with the way to the .nessus export."""
    project, _ = setup
    csv = (
        b'"Plugin ID","CVE","CVSS v2.0 Base Score","Risk","Host","Protocol","Port","Name","Synopsis"\r\n'
        b'"19506","","","None","10.0.0.1","tcp","0","Nessus Scan Information","Information about this scan."\r\n'
    )
    response = member_client.post(
        reverse("projects:upload", args=[project.pk]), {"file": SimpleUploadedFile("scan.csv", csv)}
    )
    html = response.content.decode()
    assert response.status_code == 200 and not ScanRun.objects.exists()
    assert "CSV exports are not supported" in html and "Export › Nessus (.nessus)" in html
    assert "not well-formed" not in html and "This is not a Nessus v2 export" not in html
    form = member_client.get(reverse("projects:upload", args=[project.pk])).content.decode()
    assert "CSV exports are not supported." in form  # said before anyone tries


def test_upload_with_a_dtd_in_utf16_is_refused_at_once(member_client, setup):
    project, _ = setup
    data = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE NessusClientData_v2 [<!ENTITY x "EVIL">]>\n'
        "<NessusClientData_v2>&x;</NessusClientData_v2>"
    ).encode("utf-16-le")
    response = member_client.post(
        reverse("projects:upload", args=[project.pk]), {"file": SimpleUploadedFile("x.nessus", data)}
    )
    html = response.content.decode()
    assert "The file contains a DTD or entity declaration, which is not allowed (line 2, column 1)." in html
    assert not ScanRun.objects.exists()


def test_viewer_cannot_upload(viewer_client, setup):
    project, _ = setup
    response = viewer_client.post(
        reverse("projects:upload", args=[project.pk]),
        {"file": SimpleUploadedFile("x.nessus", b"<NessusClientData_v2/>")},
    )
    assert response.status_code == 403 and not ScanRun.objects.exists()


# ---------------------------------------------------------------------------
# What a first-time user stumbles on (issue 12 §8)
# ---------------------------------------------------------------------------
def test_run_now_leaves_no_stale_queued_message_above_the_finished_run(
    member_client, setup, monkeypatch, django_capture_on_commit_callbacks
):
    project, profile = setup

    def finish_at_once(run_id: int) -> None:  # a fast worker: done before the browser follows the redirect
        ScanRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, message="Imported 3 findings")

    monkeypatch.setattr("projects.runs.services._publish", finish_at_once)
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("projects:run_now", args=[project.pk, profile.pk]))
    html = member_client.get(response.url).content.decode()
    assert "Succeeded" in html and "Imported 3 findings" in html
    assert "queued." not in html and 'class="alert' not in html


def test_the_import_log_is_in_a_run_log_section_not_the_summary(member_client, setup):
    project, profile = setup
    log = "Imported 9 findings on 2 hosts in 0.4 s (database busy 0.0 s while the file streamed in)."
    run = ScanRun.objects.create(
        project=project,
        profile=profile,
        status=RunStatus.SUCCEEDED,
        message="Imported 9 findings from 2 hosts",
        count_total=9,
        log=log,
    )
    html = member_client.get(run.get_absolute_url()).content.decode()
    summary, _, rest = html.partition('<details class="run-log">')
    assert "database busy" not in summary
    assert rest.startswith("<summary>Run log</summary>") and "database busy 0.0 s" in rest


def test_a_queued_run_says_waiting_once_then_what_to_check_after_30_seconds(member_client, setup):
    project, profile = setup
    run = ScanRun.objects.create(project=project, profile=profile, message="Waiting for a worker")
    html = member_client.get(run.get_absolute_url()).content.decode()
    assert html.lower().count("waiting for a worker") == 1
    assert "No worker has picked this run up" not in html
    ScanRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=45))
    poll = member_client.get(run.get_absolute_url(), headers={**HX, "HX-Target": f"run-{run.pk}"})
    html = poll.content.decode()
    assert "No worker has picked this run up in the 45 seconds since it was queued." in html
    assert "Celery worker" in html and "docker compose logs worker" in html
    # A run a worker has taken (even one waiting to retry) is not "unclaimed".
    ScanRun.objects.filter(pk=run.pk).update(started_at=timezone.now())
    assert b"No worker has picked" not in member_client.get(run.get_absolute_url()).content


def test_an_up_to_date_run_page_says_nothing_changed(member_client, setup):
    project, profile = setup
    run = ScanRun.objects.create(
        project=project,
        profile=profile,
        status=RunStatus.SUCCEEDED,
        up_to_date=True,
        message="Up to date: this Tenable.io run was already imported by run #1",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    html = member_client.get(run.get_absolute_url()).content.decode()
    assert "already imported by run #1</strong>; nothing changed." in html and " in 0.0 s" not in html
