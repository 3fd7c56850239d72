"""The scheduled connection check (issue 15): every active connection is re-tested; one whose keys start failing
shows "Connection failing" with the reason on the card and the dashboard, and each admin is told once (an in-app
notice on their next visit; e-mail when EMAIL_HOST is set)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent, Notice
from integrations import services, tasks
from integrations.models import Integration
from tests.conftest import make_user
from tests.integrations.conftest import make_integration
from tests.tenable_fixtures import SIM_ROLE_KEYS

pytestmark = pytest.mark.django_db
REVOKED = "Invalid User Key or Secret Key."


@pytest.fixture
def admins(db):
    return [
        make_user("alice", Role.ADMIN, email="alice@example.com"),
        make_user("bob", Role.ADMIN),
        make_user("root", Role.MEMBER, is_superuser=True, email="root@example.com"),
    ]


@pytest.fixture
def working(tenable_simulator):
    integration = make_integration(tenable_simulator.url)
    services.check_connection(integration.pk)
    integration.refresh_from_db()
    assert integration.state == "connected"
    return integration


def _revoke(server) -> None:
    server.sim.set_fault("revoked_key")


def test_a_healthy_check_records_the_result_and_tells_nobody(working, admins):
    assert working.last_test_ok and working.failing_since is None
    assert working.last_test_details["role_name"] == "Administrator"
    assert not Notice.objects.exists() and mail.outbox == []
    assert not AuditEvent.objects.exists()  # a routine check is not an audit event


def test_keys_that_start_failing_are_told_to_each_admin_once(
    working, admins, member, tenable_simulator, settings
):
    settings.EMAIL_HOST = "smtp.example.com"
    _revoke(tenable_simulator)
    result = services.check_connection(working.pk)
    assert not result.ok
    working.refresh_from_db()
    assert working.state == "failing" and working.failing_since and REVOKED in working.last_test_message
    notices = Notice.objects.all()
    assert sorted(n.user.username for n in notices) == ["alice", "bob", "root"]
    assert all(n.text.startswith(f"Connection failing: {working.name}. {REVOKED}") for n in notices)
    assert [m.to for m in mail.outbox] == [["alice@example.com", "root@example.com"]]
    assert mail.outbox[0].subject == f"[Tenable Console] Connection failing: {working.name}"
    assert AuditEvent.objects.filter(action="integration.check_failed").count() == 1
    # Still failing the next day: nobody is told again.
    services.check_connection(working.pk)
    assert Notice.objects.count() == 3 and len(mail.outbox) == 1


def test_no_email_unless_email_is_configured(working, admins, tenable_simulator, settings):
    settings.EMAIL_HOST = ""
    _revoke(tenable_simulator)
    services.check_connection(working.pk)
    assert Notice.objects.count() == 3 and mail.outbox == []


def test_the_admin_sees_the_notice_once_on_their_next_visit(working, admins, client, tenable_simulator):
    _revoke(tenable_simulator)
    services.check_connection(working.pk)
    client.force_login(admins[0])
    # An htmx fragment is not a visit: the notice waits for a page.
    client.get(
        reverse("integrations:scanners"), headers={"HX-Request": "true", "HX-Target": "connector-cards"}
    )
    assert Notice.objects.unseen().filter(user=admins[0]).exists()
    page = client.get(reverse("projects:list")).content.decode()
    assert f"Connection failing: {working.name}." in page and "Open Integrations" in page
    assert "Connection failing" not in client.get(reverse("projects:list")).content.decode()
    assert Notice.objects.unseen().count() == 2  # bob and root have not visited yet


def test_card_and_dashboard_show_connection_failing_with_the_reason(working, admin_client, tenable_simulator):
    _revoke(tenable_simulator)
    services.check_connection(working.pk)
    for url in (reverse("integrations:scanners"), reverse("dashboard")):
        page = admin_client.get(url).content.decode()
        assert "Connection failing" in page and REVOKED in page and "Failing since" in page


def test_a_recovered_connection_withdraws_unseen_notices(working, admins, tenable_simulator):
    _revoke(tenable_simulator)
    services.check_connection(working.pk)
    tenable_simulator.sim.clear_faults()
    services.check_connection(working.pk)
    working.refresh_from_db()
    assert working.state == "connected" and working.failing_since is None
    assert not Notice.objects.exists()
    assert AuditEvent.objects.filter(action="integration.check_recovered").count() == 1


def test_a_transient_failure_is_retried_before_it_counts(working, admins, tenable_simulator):
    tenable_simulator.sim.set_fault("flap", status=503, times=100)
    with pytest.raises(services.CheckLater):
        services.check_connection(working.pk, final=False)
    working.refresh_from_db()
    assert working.state == "connected" and not Notice.objects.exists()
    services.check_connection(working.pk, final=True)
    working.refresh_from_db()
    assert working.state == "failing" and Notice.objects.count() == 3


def test_the_task_retries_a_transient_failure_then_records_the_outcome(working, admins, tenable_simulator):
    tenable_simulator.sim.set_fault(
        "flap", status=503, times=4
    )  # the client's own retry, then one task retry
    tasks.check_connection.apply(args=[working.pk])
    working.refresh_from_db()
    assert working.state == "connected" and not Notice.objects.exists()
    tenable_simulator.sim.set_fault("flap", status=503, times=100)
    tasks.check_connection.apply(args=[working.pk])  # every retry fails: the last attempt records it
    working.refresh_from_db()
    assert working.state == "failing" and Notice.objects.count() == 3


def test_a_check_that_began_before_keys_were_replaced_records_nothing(
    working, admin_user, admins, tenable_simulator, monkeypatch
):
    _revoke(tenable_simulator)
    real_test = services.test_connection

    def test_then_rotate(integration, **kwargs):
        result = real_test(integration, **kwargs)
        Integration.objects.filter(pk=integration.pk).update(
            keys_set_at=timezone.now() + timedelta(seconds=1)
        )
        return result

    monkeypatch.setattr(services, "test_connection", test_then_rotate)
    services.check_connection(working.pk)
    working.refresh_from_db()
    assert working.state == "connected" and not Notice.objects.exists()


def test_check_connections_queues_every_active_connection_with_keys(tenable_simulator, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(tasks.check_connection, "delay", queued.append)
    active = make_integration(tenable_simulator.url)
    make_integration(tenable_simulator.url, name="Off", is_active=False)
    Integration.objects.create(connector="tenableiovm", name="Empty", is_active=True)
    assert tasks.check_connections() == 1 and queued == [active.pk]


def test_beat_runs_the_check_every_connection_check_hours():
    entry = django_settings.CELERY_BEAT_SCHEDULE["check-connections"]
    assert entry["task"] == tasks.check_connections.name == "integrations.tasks.check_connections"
    assert entry["schedule"] == django_settings.CONNECTION_CHECK_HOURS * 3600 == 24 * 3600


def test_a_basic_key_is_checked_like_any_other(admins, tenable_simulator):
    access, secret = SIM_ROLE_KEYS["basic"]
    integration = make_integration(tenable_simulator.url, access, secret)
    services.check_connection(integration.pk)
    integration.refresh_from_db()
    assert (
        integration.state == "connected" and integration.capabilities["read_scan_results"].status == "missing"
    )
