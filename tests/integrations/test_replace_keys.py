"""Key rotation without downtime (issue 15): Replace keys tests the new pair (checklist included) before anything
changes, swaps it in atomically with an audit event, or refuses it, keeps the old pair and says why. A run already
in progress finishes with the pair it started with; the keys' age shows on the card and, when due, a reminder."""

from __future__ import annotations

import html
import importlib
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from integrations import services
from integrations.models import Integration
from projects.choices import RunStatus
from projects.models import Project, ScannerProfile, ScanRun
from projects.runs import services as runs
from tests.conftest import make_user
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ACCESS_KEY, SIM_ROLE_KEYS, SIM_SECRET_KEY

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
OPERATOR = SIM_ROLE_KEYS["scan_operator"]
BASIC = SIM_ROLE_KEYS["basic"]


def _replace(client, integration, pair: tuple[str, str]):
    return client.post(
        reverse("integrations:replace_keys", args=[integration.pk]),
        {"access_key": pair[0], "secret_key": pair[1]},
        headers=HX,
    )


def _profile(integration, **fields) -> ScannerProfile:
    project = Project.objects.get_or_create(name="Payments")[0]
    return ScannerProfile.objects.create(
        project=project, integration=integration, name="Weekly", meta_data="m", **{"scan_id": 1, **fields}
    )


def _no_keys_in_the_audit_log(*keys: str) -> None:
    dumped = json.dumps(list(AuditEvent.objects.values("details", "object_repr")))
    assert not any(key in dumped for key in keys)


def test_a_good_pair_replaces_the_old_one_at_once_and_is_audited(admin_client, admin_user, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    response = _replace(admin_client, integration, OPERATOR)
    assert "closeDrawer" in response["HX-Trigger-After-Swap"]
    assert "keys replaced" in response.content.decode()
    integration.refresh_from_db()
    assert (integration.access_key, integration.secret_key) == OPERATOR
    assert integration.access_key_hint == OPERATOR[0][-4:]
    assert integration.keys_set_by == admin_user and timezone.now() - integration.keys_set_at < timedelta(
        minutes=1
    )
    # The card describes the new key at once: its test was the one that let it in.
    assert integration.last_test_ok and integration.last_test_details["role_name"] == "Scan Operator"
    event = AuditEvent.objects.get(action="integration.keys_rotated")
    assert event.actor == admin_user and event.object_id == str(integration.pk)
    assert event.details["role"] == "Scan Operator"
    _no_keys_in_the_audit_log(*OPERATOR, SIM_ACCESS_KEY, SIM_SECRET_KEY)
    # The new pair was tested before the swap: Tenable saw it, and nothing else changed.
    assert {r.user for r in tenable_simulator.sim.requests} == {"scan_operator"}


@pytest.mark.parametrize(
    ("pair", "why"),
    [
        (("wrong-access", "wrong-secret"), "The new keys were refused: Invalid User Key or Secret Key."),
        (("sim-forbidden-access", "sim-forbidden-secret"), "The new keys were refused: Permission denied"),
        ((SIM_ACCESS_KEY, SIM_SECRET_KEY), "These are the keys this connection already uses"),
    ],
)
def test_a_refused_pair_changes_nothing_and_says_why(admin_client, tenable_simulator, pair, why):
    integration = make_integration(tenable_simulator.url)
    before = Integration.objects.filter(pk=integration.pk).values().get()
    response = _replace(admin_client, integration, pair)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and "HX-Trigger-After-Swap" not in response
    assert "New keys refused" in page and why in page and "The old keys stay active." in page
    assert pair[1] not in page
    integration.refresh_from_db()
    assert (integration.access_key, integration.secret_key) == (SIM_ACCESS_KEY, SIM_SECRET_KEY)
    assert Integration.objects.filter(pk=integration.pk).values().get() == before
    assert AuditEvent.objects.get(action="integration.keys_refused").details["reason"].startswith(why[:30])
    assert not AuditEvent.objects.filter(action="integration.keys_rotated").exists()
    _no_keys_in_the_audit_log(*pair)
    # The old pair still works.
    assert services.test_connection(integration).ok


def test_a_pair_lacking_what_the_profiles_need_is_refused_with_the_checklist(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    _profile(integration)  # bound to a scan: its runs read scan results
    page = html.unescape(_replace(admin_client, integration, BASIC).content.decode())
    assert "The new keys cannot do what this connection's profiles need." in page
    assert (
        "Profile “Weekly” (Payments) needs what this key cannot do and will fail: Cannot read or import"
        in page
    )
    assert "What it can do" in page and "Missing" in page  # the refused key's checklist, in place
    integration.refresh_from_db()
    assert integration.access_key == SIM_ACCESS_KEY and integration.last_test_details == {}


def test_without_profiles_a_least_privilege_pair_is_accepted(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    _replace(admin_client, integration, BASIC)
    integration.refresh_from_db()
    assert integration.access_key == BASIC[0] and integration.key_info.role_name == "Basic"


def test_keys_of_another_container_are_refused(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    details = services.test_connection(integration).details
    Integration.objects.filter(pk=integration.pk).update(
        last_test_ok=True, last_test_details={**details, "container": "Other Corp"}
    )
    page = html.unescape(_replace(admin_client, integration, OPERATOR).content.decode())
    assert (
        "The new keys belong to the container “Example Corp”, but this connection reaches “Other Corp”"
        in page
    )
    assert Integration.objects.get(pk=integration.pk).access_key == SIM_ACCESS_KEY


def test_undecryptable_old_keys_can_be_replaced(admin_client, tenable_simulator, fernet_keys):
    """Replace keys is also the way out of lost FERNET_KEYS: the new pair needs nothing from the old one."""
    import secrets

    fernet_keys([secrets.token_urlsafe(48)])
    integration = make_integration(tenable_simulator.url)
    fernet_keys([secrets.token_urlsafe(48)])
    response = _replace(admin_client, integration, OPERATOR)
    assert "closeDrawer" in response["HX-Trigger-After-Swap"]
    assert Integration.objects.get(pk=integration.pk).access_key == OPERATOR[0]


def test_only_admins_may_replace_keys(member_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    assert _replace(member_client, integration, OPERATOR).status_code == 403
    assert Integration.objects.get(pk=integration.pk).access_key == SIM_ACCESS_KEY


def test_the_drawer_and_its_full_page(admin_client, tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    url = reverse("integrations:replace_keys", args=[integration.pk])
    fragment = admin_client.get(url, headers=HX).content.decode()
    assert 'class="drawer"' in fragment and "<html" not in fragment
    assert "User Key" in fragment and "Secret Key" in fragment and "Test and replace" in fragment
    assert 'type="password"' in fragment and SIM_ACCESS_KEY not in fragment
    full = admin_client.get(url).content.decode()
    assert "<html" in full and "Replace keys" in full
    # Without htmx, an accepted pair redirects to the Integrations page.
    response = admin_client.post(url, {"access_key": OPERATOR[0], "secret_key": OPERATOR[1]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("integrations:scanners"))


def test_a_run_in_progress_finishes_with_the_pair_it_started_with(admin_user, monkeypatch, tenable_simulator):
    """The connector is built once per run with the keys read then: keys replaced mid-run do not reach it.
    The next run uses the new pair (runs keep working)."""
    sim = tenable_simulator.sim
    integration = make_integration(tenable_simulator.url)
    profile = _profile(integration, scan_id=sim.scan_id("completed"))
    original = runs._pipeline_with
    swapped: list[int] = []

    def replace_mid_run(run, connector):
        replacement = services.replace_keys(
            Integration.objects.get(pk=integration.pk),
            admin_user,
            access_key=OPERATOR[0],
            secret_key=OPERATOR[1],
        )
        assert replacement.accepted, replacement.reason
        swapped.append(len(sim.requests))
        return original(run, connector)

    monkeypatch.setattr(runs, "_pipeline_with", replace_mid_run)
    run = ScanRun.objects.create(project=profile.project, profile=profile)
    runs.execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    after_swap = sim.requests[swapped[0] :]
    assert after_swap and {r.user for r in after_swap} == {"main"}  # the old pair, to the end
    assert Integration.objects.get(pk=integration.pk).access_key == OPERATOR[0]

    monkeypatch.setattr(runs, "_pipeline_with", original)
    sim.clear_requests()
    second = ScanRun.objects.create(project=profile.project, profile=profile)
    runs.execute_run(second.pk)
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert {r.user for r in sim.requests} == {"scan_operator"}


# -- the keys' age and the reminder ---------------------------------------------------------------------------


def test_saving_keys_records_when_and_by_whom(admin_client, admin_user, tenable_simulator):
    admin_client.post(
        reverse("integrations:new", args=["tenableiovm"]),
        {
            "name": "Tenable.io VM",
            "access_key": SIM_ACCESS_KEY,
            "secret_key": SIM_SECRET_KEY,
            "api_url": tenable_simulator.url,
        },
        headers=HX,
    )
    integration = Integration.objects.get()
    assert integration.keys_set_by == admin_user and integration.keys_age_days == 0
    page = admin_client.get(reverse("integrations:scanners")).content.decode()
    assert "Keys set today, by admin" in page and "Time to rotate" not in page
    # Renaming keeps the keys, so their age stays.
    Integration.objects.filter(pk=integration.pk).update(keys_set_at=timezone.now() - timedelta(days=5))
    admin_client.post(
        reverse("integrations:settings", args=[integration.pk]),
        {"name": "Renamed", "access_key": "", "secret_key": "", "api_url": tenable_simulator.url},
        headers=HX,
    )
    assert Integration.objects.get().keys_age_days == 5


def test_old_keys_get_a_rotation_reminder_on_the_card_and_the_dashboard(admin_client, settings):
    alice = make_user("alice", Role.ADMIN)
    integration = make_integration(
        "https://cloud.tenable.com",
        keys_set_at=timezone.now() - timedelta(days=94, hours=1),
        keys_set_by=alice,
        last_test_ok=True,
        last_tested_at=timezone.now(),
    )
    instructions = integration.spec.token_instructions
    for url in (reverse("integrations:scanners"), reverse("dashboard")):
        page = admin_client.get(url).content.decode()
        assert "Keys set 94 days ago, by alice" in page
        assert "Time to rotate these keys" in page and "older than 90 days" in page
        assert f'href="{instructions}"' in page
        assert reverse("integrations:replace_keys", args=[integration.pk]) in page
    settings.KEY_ROTATION_DAYS = 120
    for url in (reverse("integrations:scanners"), reverse("dashboard")):
        page = admin_client.get(url).content.decode()
        assert "Keys set 94 days ago" in page or url == reverse("dashboard")
        assert "Time to rotate" not in page
    settings.KEY_ROTATION_DAYS = 0  # off
    assert not Integration.objects.get(pk=integration.pk).rotation_due


def test_members_never_see_connection_reminders(member_client):
    make_integration("https://cloud.tenable.com", keys_set_at=timezone.now() - timedelta(days=400))
    page = member_client.get(reverse("dashboard")).content.decode()
    assert "Time to rotate" not in page and "Connections that need attention" not in page


def test_the_migration_dates_saved_keys_from_the_audit_trail(admin_user):
    from django.apps import apps

    from accounts.models import record

    backfill = importlib.import_module("integrations.migrations.0003_key_rights").backfill
    with_keys = make_integration(
        "https://cloud.tenable.com", last_test_ok=False, last_tested_at=timezone.now()
    )
    keyed_at = record(
        admin_user, "integration.changed", with_keys, fields=["access_key", "secret_key"]
    ).created_at
    record(admin_user, "integration.changed", with_keys, fields=["name"])  # later, but not about keys
    unaudited = make_integration("https://fedcloud.tenable.com", name="Fed")
    no_keys = Integration.objects.create(
        connector="tenableiovm", name="Empty", api_url="https://cloud.tenable.com"
    )
    backfill(apps, None)
    with_keys.refresh_from_db()
    unaudited.refresh_from_db()
    no_keys.refresh_from_db()
    assert (with_keys.keys_set_at, with_keys.keys_set_by) == (keyed_at, admin_user)
    assert with_keys.failing_since == with_keys.last_tested_at  # it was failing already: no new notice
    assert (unaudited.keys_set_at, unaudited.keys_set_by) == (unaudited.created_at, None)
    assert no_keys.keys_set_at is None


def test_keys_changed_while_the_new_pair_was_tested_are_not_overwritten(
    admin_user, tenable_simulator, monkeypatch
):
    integration = make_integration(tenable_simulator.url)
    real_test = services.test_connection

    def test_while_someone_saves(connection, **kwargs):
        result = real_test(connection, **kwargs)
        Integration.objects.filter(pk=connection.pk).update(
            access_key=BASIC[0], secret_key=BASIC[1], keys_set_at=timezone.now()
        )
        return result

    monkeypatch.setattr(services, "test_connection", test_while_someone_saves)
    replacement = services.replace_keys(
        integration, admin_user, access_key=OPERATOR[0], secret_key=OPERATOR[1]
    )
    assert not replacement.accepted and "changed while the new keys were tested" in replacement.reason
    assert Integration.objects.get(pk=integration.pk).access_key == BASIC[0]
