"""Projects: the list with severity counts, create, edit, delete with its confirmation, and members with roles."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import AuditEvent
from integrations.models import Integration
from projects.models import Asset, Finding, Membership, Plugin, Project, ScannerProfile, ScanRun
from projects.profiles.schedules import sync_schedule
from projects.views import with_finding_counts
from tests.conftest import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(member, viewer):
    return make_project("Payments", members=[member], viewers=[viewer])


def add_finding(
    project, severity: int, state: str = "open", triage: str = "", host: str = "10.0.0.1"
) -> Finding:
    asset, _ = Asset.objects.get_or_create(
        project=project, identity=host, defaults={"name": host, "ip": host}
    )
    plugin, _ = Plugin.objects.get_or_create(
        plugin_id=10_000 + severity, defaults={"name": f"Plugin {severity}"}
    )
    now = timezone.now()
    return Finding.objects.create(
        project=project,
        asset=asset,
        plugin=plugin,
        fingerprint=uuid.uuid4(),
        severity=severity,
        effective_severity=severity,
        state=state,
        triage=triage,
        first_seen=now,
        last_seen=now,
    )


def make_scheduled_profile(project, name: str = "Nightly") -> ScannerProfile:
    integration = Integration.objects.first() or Integration.objects.create(
        connector="tenableiovm", name="Tenable.io VM", is_active=True, api_url="http://127.0.0.1:9"
    )
    profile = ScannerProfile.objects.create(
        project=project,
        integration=integration,
        name=name,
        scan_id=101,
        meta_data="m",
        scheduler_enabled=True,
        schedule_time=time(2, 0),
    )
    sync_schedule(profile)
    return profile


# ---------------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------------


def test_list_counts_open_findings_by_severity_in_one_query(admin_client, project):
    for severity in (4, 4, 3, 2, 0):
        add_finding(project, severity, host=f"10.0.0.{severity}")
    add_finding(project, 4, state="fixed", host="10.0.1.1")  # fixed: not open
    add_finding(project, 3, state="reopened", host="10.0.1.2")  # reopened counts as open
    add_finding(project, 2, triage="false_positive", host="10.0.1.3")  # false positives are not counted
    make_project("Empty")
    with CaptureQueriesContext(connection) as queries:
        rows = {p.name: p for p in with_finding_counts(Project.objects.all())}
    assert len(queries) == 1
    payments = rows["Payments"]
    assert (payments.open_critical, payments.open_high, payments.open_medium, payments.open_low) == (
        2,
        2,
        1,
        0,
    )
    assert payments.open_info == 1 and payments.open_total == 6 and rows["Empty"].open_total == 0
    html = admin_client.get(reverse("projects:list")).content.decode()
    assert 'title="2 Critical"' in html and 'title="2 High"' in html and "No open findings" in html


def test_list_shows_members_only_their_projects(member_client, project):
    make_project("Secret project")
    html = member_client.get(reverse("projects:list")).content.decode()
    assert "Payments" in html and "Secret project" not in html and "New project" not in html


def test_counts_of_one_project_do_not_leak_into_another(admin_client, project):
    other = make_project("Other")
    add_finding(other, 4)
    make_scheduled_profile(project)
    rows = {p.name: p for p in with_finding_counts(Project.objects.all())}
    assert rows["Payments"].open_total == 0 and rows["Payments"].profile_count == 1
    assert rows["Other"].open_critical == 1 and rows["Other"].profile_count == 0


# ---------------------------------------------------------------------------------------------------
# Create and edit
# ---------------------------------------------------------------------------------------------------


def test_admin_creates_a_project_and_the_name_is_unique(admin_client, admin_user, project):
    response = admin_client.post(reverse("projects:create"), {"name": "Web", "description": "Web tier"})
    created = Project.objects.get(name="Web")
    assert response.status_code == 302 and created.created_by == admin_user
    assert AuditEvent.objects.filter(action="project.created", object_id=str(created.pk)).exists()
    response = admin_client.post(reverse("projects:create"), {"name": "Payments"})
    assert "Project with this Name already exists." in response.content.decode()


def test_create_ignores_extra_fields(admin_client, admin_user, member):
    admin_client.post(
        reverse("projects:create"), {"name": "Web", "created_by": member.pk, "members": [member.pk]}
    )
    created = Project.objects.get(name="Web")
    assert created.created_by == admin_user and not created.memberships.exists()


def test_members_cannot_create_projects(member_client):
    assert member_client.post(reverse("projects:create"), {"name": "Web"}).status_code == 403
    assert not Project.objects.filter(name="Web").exists()


def test_member_edits_their_project_and_the_change_is_audited(member_client, member, project):
    url = reverse("projects:edit", args=[project.pk])
    assert "General" in member_client.get(url).content.decode()
    response = member_client.post(url, {"name": "Payments EU", "description": "EU card processing"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.name == "Payments EU"
    event = AuditEvent.objects.get(action="project.changed")
    assert event.actor == member and event.details == {"fields": ["name", "description"]}
    html = member_client.get(url).content.decode()
    assert "-p Payments must now use -p Payments EU" in html
    assert "Delete project" not in html  # admins only


@pytest.mark.parametrize(("persona", "status"), [("viewer", 403), ("outsider", 404), ("anonymous", 302)])
def test_project_mutations_are_refused_without_rights(client, project, outsider, persona, status, admin_user):
    if persona == "viewer":
        client.force_login(project.memberships.get(role="viewer").user)
    elif persona == "outsider":
        client.force_login(outsider)
    membership = project.memberships.get(role="member")
    requests = [
        (reverse("projects:edit", args=[project.pk]), {"name": "Hacked"}),
        (reverse("projects:delete", args=[project.pk]), {"confirm_name": "Payments"}),
        (reverse("projects:members", args=[project.pk]), {"user": admin_user.pk, "role": "member"}),
        (reverse("projects:member_role", args=[project.pk, membership.pk]), {"role": "viewer"}),
        (reverse("projects:member_remove", args=[project.pk, membership.pk]), {}),
    ]
    before = (list(Project.objects.values()), list(Membership.objects.values()))
    for url, data in requests:
        response = client.post(url, data)
        assert response.status_code == status, (persona, url)
        if persona == "anonymous":
            assert "/login/" in response.url
    assert (list(Project.objects.values()), list(Membership.objects.values())) == before
    assert not AuditEvent.objects.exists()


def test_members_cannot_delete_or_manage_members(member_client, project, admin_user):
    membership = project.memberships.get(role="viewer")
    assert (
        member_client.post(
            reverse("projects:delete", args=[project.pk]), {"confirm_name": "Payments"}
        ).status_code
        == 403
    )
    assert (
        member_client.post(reverse("projects:member_remove", args=[project.pk, membership.pk])).status_code
        == 403
    )
    response = member_client.post(
        reverse("projects:members", args=[project.pk]), {"user": admin_user.pk, "role": "member"}
    )
    assert response.status_code == 403
    assert Project.objects.filter(pk=project.pk).exists() and project.memberships.count() == 2


# ---------------------------------------------------------------------------------------------------
# Delete
# ---------------------------------------------------------------------------------------------------


def test_delete_confirmation_says_what_goes_with_it(admin_client, project):
    profile = make_scheduled_profile(project)
    ScanRun.objects.create(project=project, profile=profile, status="succeeded")
    add_finding(project, 4)
    html = admin_client.get(reverse("projects:delete", args=[project.pk])).content.decode()
    assert "Delete project Payments?" in html
    for text in (
        "<strong>1</strong> scanner profile",
        "1 schedule",
        "<strong>1</strong> run",
        "<strong>1</strong> finding",
    ):
        assert text in html
    assert "<strong>2</strong> memberships" in html and "Type the project name to confirm" in html


def test_delete_needs_the_typed_name_then_removes_everything(admin_client, admin_user, project):
    make_scheduled_profile(project)
    add_finding(project, 3)
    url = reverse("projects:delete", args=[project.pk])
    response = admin_client.post(url, {"confirm_name": "payments"})
    assert (
        "Type Payments exactly" in response.content.decode()
        and Project.objects.filter(pk=project.pk).exists()
    )
    response = admin_client.post(url, {"confirm_name": "Payments"})
    assert response.status_code == 302 and response.url == reverse("projects:list")
    assert (
        not Project.objects.exists() and not ScannerProfile.objects.exists() and not Finding.objects.exists()
    )
    assert not PeriodicTask.objects.exists()
    event = AuditEvent.objects.get(action="project.deleted")
    assert (
        event.actor == admin_user and event.details["name"] == "Payments" and event.details["findings"] == 1
    )


# ---------------------------------------------------------------------------------------------------
# Members
# ---------------------------------------------------------------------------------------------------


def test_admin_adds_changes_and_removes_members(admin_client, admin_user, project):
    newcomer = make_user("newcomer")
    url = reverse("projects:members", args=[project.pk])
    html = admin_client.get(url).content.decode()
    assert "newcomer" in html and "Add member" in html
    admin_client.post(url, {"user": newcomer.pk, "role": "viewer"})
    membership = project.memberships.get(user=newcomer)
    assert membership.role == "viewer"
    admin_client.post(reverse("projects:member_role", args=[project.pk, membership.pk]), {"role": "member"})
    membership.refresh_from_db()
    assert membership.role == "member"
    admin_client.post(reverse("projects:member_remove", args=[project.pk, membership.pk]))
    assert not project.memberships.filter(user=newcomer).exists()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "details"))
    assert actions == [
        ("project.member_added", {"user": "newcomer", "role": "viewer"}),
        ("project.member_changed", {"user": "newcomer", "role": "member"}),
        ("project.member_removed", {"user": "newcomer"}),
    ]


def test_add_member_offers_only_users_not_yet_in_the_project(admin_client, project, admin_user):
    url = reverse("projects:members", args=[project.pk])
    response = admin_client.post(
        url, {"user": admin_user.pk, "role": "member"}
    )  # admins see everything already
    assert "Select a valid choice" in response.content.decode()
    existing = project.memberships.get(role="member").user
    response = admin_client.post(url, {"user": existing.pk, "role": "viewer"})
    assert "Select a valid choice" in response.content.decode()
    assert project.memberships.count() == 2


def test_a_global_viewer_can_only_be_a_project_viewer(admin_client, project):
    reader = make_user("reader", "viewer")
    url = reverse("projects:members", args=[project.pk])
    response = admin_client.post(url, {"user": reader.pk, "role": "member"})
    assert "is a viewer across the app" in response.content.decode()
    assert not project.memberships.filter(user=reader).exists()


def test_members_see_the_member_list_without_controls(member_client, project):
    html = member_client.get(reverse("projects:members", args=[project.pk])).content.decode()
    assert "member" in html and "viewer" in html and "Add member" not in html and "Remove" not in html


def test_other_projects_memberships_answer_404(admin_user, project):
    other = make_project("Other", members=[make_user("someone")])
    foreign = other.memberships.get()
    client = Client()
    client.force_login(admin_user)
    for name in ("member_role", "member_remove"):
        response = client.post(reverse(f"projects:{name}", args=[project.pk, foreign.pk]), {"role": "viewer"})
        assert response.status_code == 404
    assert other.memberships.get().role == "member"


def test_dashboard_and_list_count_open_findings_by_the_same_rule_as_the_findings_pages(member_client, member):
    """Open = open or reopened and untriaged; an expired risk acceptance counts again (projects.findings)."""
    mine = make_project("Mine", members=[member])
    add_finding(mine, 4)
    add_finding(mine, 3, state="reopened", host="10.0.0.2")
    accepted = add_finding(mine, 2, triage="risk_accepted", host="10.0.0.3")
    expired = add_finding(mine, 1, triage="risk_accepted", host="10.0.0.4")
    Finding.objects.filter(pk=accepted.pk).update(triage_until=timezone.localdate() + timedelta(days=30))
    Finding.objects.filter(pk=expired.pk).update(triage_until=timezone.localdate() - timedelta(days=1))
    add_finding(mine, 4, state="fixed", host="10.0.0.5")
    add_finding(make_project("Theirs"), 4)  # another project's findings never count
    html = member_client.get(reverse("dashboard")).content.decode()
    assert '<div class="label">Open findings</div><div class="value">3</div>' in html
    assert {p.name: p.open_total for p in with_finding_counts(Project.objects.all())}["Mine"] == 3
