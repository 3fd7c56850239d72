"""The Scheduler: one django-celery-beat PeriodicTask per profile, created, updated, disabled and deleted with it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from projects.models import ScannerProfile
from projects.profiles.forms import cron_error
from projects.profiles.schedules import RUN_TASK, crontab_fields, next_run_at, sync_schedule
from projects.profiles.sources import describe_tenable_schedule
from tests.conftest import make_project
from tests.integrations.conftest import make_integration
from tests.projects.test_profiles import HX, edit_url, form_data, make_profile, new_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(member, viewer):
    return make_project("Payments", members=[member], viewers=[viewer])


@pytest.fixture
def integration(tenable_simulator):
    return make_integration(tenable_simulator.url)


def scheduled(sim, **overrides) -> dict:
    values = {
        "scheduler_enabled": True,
        "schedule_frequency": "daily",
        "schedule_time": "02:30",
        "schedule_timezone": "America/New_York",
    }
    values.update(overrides)
    return form_data(sim, **values)


def test_turning_the_scheduler_on_creates_one_task(admin_client, project, integration, tenable_simulator):
    admin_client.post(new_url(project, integration), scheduled(tenable_simulator.sim), headers=HX)
    profile = ScannerProfile.objects.select_related("periodic_task__crontab").get()
    task = profile.periodic_task
    assert task is not None and task.enabled and PeriodicTask.objects.count() == 1
    assert task.task == "projects.tasks.run_scheduled_profile" == RUN_TASK
    assert json.loads(task.kwargs) == {"profile_id": profile.pk}
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "2", "*")
    assert str(crontab.timezone) == "America/New_York"


def test_saving_again_updates_the_same_task(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    admin_client.post(new_url(project, integration), scheduled(sim), headers=HX)
    profile = ScannerProfile.objects.get()
    first_task = profile.periodic_task_id
    data = scheduled(sim, schedule_frequency="weekly", schedule_days=["1", "3"], schedule_time="06:15")
    response = admin_client.post(edit_url(profile), data, headers=HX)
    assert "closeDrawer" in response.headers["HX-Trigger-After-Swap"]
    profile.refresh_from_db()
    task = PeriodicTask.objects.get()
    assert profile.periodic_task_id == first_task == task.pk and task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("15", "6", "1,3")
    assert profile.schedule_days == "1,3"


def test_renaming_the_profile_renames_the_task(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    admin_client.post(new_url(project, integration), scheduled(sim), headers=HX)
    profile = ScannerProfile.objects.get()
    admin_client.post(edit_url(profile), scheduled(sim, name="Nightly"), headers=HX)
    assert PeriodicTask.objects.get().name == f"Scanner profile #{profile.pk}: Payments / Nightly"


def test_turning_the_scheduler_off_disables_the_task(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    admin_client.post(new_url(project, integration), scheduled(sim), headers=HX)
    profile = ScannerProfile.objects.get()
    admin_client.post(edit_url(profile), scheduled(sim, scheduler_enabled=False), headers=HX)
    task = PeriodicTask.objects.get()
    assert not task.enabled
    profile.refresh_from_db()
    assert profile.periodic_task_id == task.pk and next_run_at(profile) is None
    admin_client.post(edit_url(profile), scheduled(sim), headers=HX)
    task.refresh_from_db()
    assert task.enabled and PeriodicTask.objects.count() == 1


def test_deleting_the_profile_deletes_its_task(admin_client, project, integration, tenable_simulator):
    admin_client.post(new_url(project, integration), scheduled(tenable_simulator.sim), headers=HX)
    profile = ScannerProfile.objects.get()
    admin_client.post(reverse("projects:profile_delete", args=[project.pk, profile.pk]), headers=HX)
    assert not PeriodicTask.objects.exists() and not ScannerProfile.objects.exists()


def test_deleting_a_project_deletes_its_profiles_tasks(project, integration):
    profile = make_profile(project, integration, 101, scheduler_enabled=True, schedule_time=time(1, 0))
    sync_schedule(profile)
    other = make_project("Other")
    kept = make_profile(other, integration, 101, scheduler_enabled=True, schedule_time=time(1, 0))
    sync_schedule(kept)
    assert PeriodicTask.objects.count() == 2
    project.delete()  # a cascade, not the view: the post_delete signal must catch it
    assert list(PeriodicTask.objects.values_list("pk", flat=True)) == [kept.periodic_task_id]


def test_a_task_deleted_elsewhere_is_recreated_on_save(admin_client, project, integration, tenable_simulator):
    sim = tenable_simulator.sim
    admin_client.post(new_url(project, integration), scheduled(sim), headers=HX)
    PeriodicTask.objects.all().delete()
    profile = ScannerProfile.objects.get()
    assert profile.periodic_task_id is None  # SET_NULL
    admin_client.post(edit_url(profile), scheduled(sim), headers=HX)
    profile.refresh_from_db()
    assert profile.periodic_task is not None and profile.periodic_task.enabled


@pytest.mark.parametrize(
    ("frequency", "extra", "expected"),
    [
        ("hourly", {"schedule_time": time(0, 15)}, ("15", "*", "*", "*", "*")),
        ("hourly", {"schedule_time": None}, ("0", "*", "*", "*", "*")),
        ("daily", {"schedule_time": time(23, 5)}, ("5", "23", "*", "*", "*")),
        ("weekly", {"schedule_time": time(4, 0), "schedule_days": "1,5"}, ("0", "4", "*", "*", "1,5")),
        ("cron", {"schedule_cron": "30 2 1,15 * 1-5"}, ("30", "2", "1,15", "*", "1-5")),
    ],
)
def test_crontab_fields_for_each_frequency(frequency, extra, expected):
    profile = ScannerProfile(schedule_frequency=frequency, **extra)
    fields = crontab_fields(profile)
    got = tuple(fields[k] for k in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week"))
    assert got == expected


def test_cron_schedule_is_saved_with_its_timezone(admin_client, project, integration, tenable_simulator):
    data = scheduled(
        tenable_simulator.sim,
        schedule_frequency="cron",
        schedule_cron="0  */6 * * *",
        schedule_timezone="Asia/Tokyo",
    )
    admin_client.post(new_url(project, integration), data, headers=HX)
    crontab = CrontabSchedule.objects.get()
    assert (crontab.minute, crontab.hour) == ("0", "*/6") and str(crontab.timezone) == "Asia/Tokyo"
    assert ScannerProfile.objects.get().schedule_cron == "0 */6 * * *"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"schedule_frequency": "daily", "schedule_time": ""}, "Choose the time of day to run."),
        ({"schedule_frequency": "weekly"}, "Choose at least one day."),
        ({"schedule_frequency": "cron", "schedule_cron": "every day"}, "Enter five fields"),
        ({"schedule_frequency": "cron", "schedule_cron": "61 * * * *"}, "not a valid cron expression"),
        ({"schedule_frequency": "cron", "schedule_cron": "*/5 * * * *"}, "at most once an hour"),
        ({"schedule_timezone": "Mars/Olympus"}, "Select a valid choice"),
        ({"schedule_frequency": "fortnightly"}, "Select a valid choice"),
    ],
)
def test_invalid_schedules_are_refused(
    admin_client, project, integration, tenable_simulator, overrides, error
):
    response = admin_client.post(
        new_url(project, integration), scheduled(tenable_simulator.sim, **overrides), headers=HX
    )
    assert error in response.content.decode()
    assert not ScannerProfile.objects.exists() and not PeriodicTask.objects.exists()


def test_schedule_fields_are_not_checked_while_the_scheduler_is_off(
    admin_client, project, integration, tenable_simulator
):
    data = scheduled(
        tenable_simulator.sim, scheduler_enabled=False, schedule_frequency="weekly", schedule_time=""
    )
    admin_client.post(new_url(project, integration), data, headers=HX)
    profile = ScannerProfile.objects.get()
    assert not profile.scheduler_enabled and profile.periodic_task is None


def test_cron_error_accepts_ordinary_expressions():
    assert cron_error("0 2 * * *") == ""
    assert cron_error("15 */4 * * mon-fri") == ""


def test_next_run_is_computed_in_the_profile_timezone(project, integration):
    profile = make_profile(
        project,
        integration,
        101,
        scheduler_enabled=True,
        schedule_frequency="weekly",
        schedule_days="1",
        schedule_time=time(2, 30),
        schedule_timezone="America/New_York",
    )
    sync_schedule(profile)
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
    expected = datetime(2026, 11, 23, 2, 30, tzinfo=ZoneInfo("America/New_York"))
    assert next_run_at(profile, now) == expected


def test_scanners_page_shows_the_next_scheduled_run(admin_client, project, integration, tenable_simulator):
    data = scheduled(tenable_simulator.sim, schedule_timezone="UTC", schedule_time="03:00")
    response = admin_client.post(new_url(project, integration), data, headers=HX)
    assert "Next scheduled run:" in response.content.decode()
    html = admin_client.get(reverse("projects:scanners", args=[project.pk])).content.decode()
    assert "Scheduled" in html and "03:00" in html and "Scheduler off" not in html


@pytest.mark.parametrize(
    ("rrules", "starttime", "zone", "enabled", "text"),
    [
        (
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO",
            "20181003T010000",
            "US/Central",
            True,
            "Weekly on Mon at 01:00 (US/Central)",
        ),
        ("FREQ=DAILY;INTERVAL=1", "20240101T233000", "UTC", True, "Daily at 23:30 (UTC)"),
        ("FREQ=DAILY;INTERVAL=2", "20240101T060000", None, True, "Every 2 days at 06:00"),
        (
            "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15",
            "20240101T060000",
            None,
            True,
            "Monthly on day 15 at 06:00",
        ),
        (
            "FREQ=ONETIME",
            "20240301T080000",
            "UTC",
            False,
            "Once on Mar 1, 2024 at 08:00 (UTC) — disabled in Tenable.io",
        ),
    ],
)
def test_tenable_schedules_read_as_words(rrules, starttime, zone, enabled, text):
    from integrations.connectors.tenable_io.client import Schedule

    assert describe_tenable_schedule(Schedule(enabled, rrules, starttime, zone)) == text


def test_no_tenable_schedule():
    assert describe_tenable_schedule(None).startswith("Not scheduled in Tenable.io")


def test_the_time_field_is_a_24_hour_text_field_like_its_help(
    admin_client, project, integration, tenable_simulator
):
    """Issue 12 §8: a native time input showed the browser's 12-hour clock beside 24-hour help."""
    profile = make_profile(
        project,
        integration,
        tenable_simulator.sim.scan_id("completed"),
        scheduler_enabled=True,
        schedule_time=time(14, 30),
    )
    html = admin_client.get(edit_url(profile)).content.decode()
    field = re.search(r'<input[^>]*name="schedule_time"[^>]*>', html).group(0)
    assert 'type="text"' in field and 'value="14:30"' in field and 'placeholder="HH:MM"' in field
    assert "24-hour clock, HH:MM" in html
    response = admin_client.post(
        edit_url(profile), scheduled(tenable_simulator.sim, schedule_time="2:30 PM"), headers=HX
    )
    html = response.content.decode()
    assert "Enter the time as HH:MM on a 24-hour clock, e.g. 14:30." in html
    assert "Choose the time of day to run." not in html
    profile.refresh_from_db()
    assert profile.schedule_time == time(14, 30)
