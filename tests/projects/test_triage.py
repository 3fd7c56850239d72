"""Triage (issue #7): single, bulk and undo, each with a FindingEvent and an audit event; W2 permissions;
acceptances that expire count as open at once and are cleared by `expire_acceptances`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from projects.findings.filters import FindingFilters, filter_findings
from projects.findings.triage import BULK_LIMIT, expire_acceptances
from projects.models import Finding, FindingEvent
from tests.conftest import make_project
from tests.projects.test_findings import make_asset, make_finding, make_plugin


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def setup(db, member, viewer, outsider):
    project = make_project("Payments", members=[member], viewers=[viewer])
    host = make_asset(project, "web-01", "10.0.0.1")
    findings = [
        make_finding(project, host, make_plugin(100 + i, f"plugin {i}"), severity=3, port=i) for i in range(4)
    ]
    other = make_project("Other", members=[outsider])
    foreign = make_finding(other, make_asset(other, "other-host"), make_plugin(999, "foreign"), severity=4)
    return {"project": project, "findings": findings, "foreign": foreign}


def triage_url(setup, finding=None, action="finding_triage"):
    finding = finding or setup["findings"][0]
    return reverse(f"projects:{action}", args=[setup["project"].pk, finding.pk])


def bulk_url(setup):
    return reverse("projects:findings_triage", args=[setup["project"].pk])


def snapshot():
    return sorted(
        Finding.objects.values_list("pk", "triage", "triage_reason", "triage_until", "triage_by_id")
    )


# ---------------------------------------------------------------------------
# One finding
# ---------------------------------------------------------------------------
def test_mark_false_positive(member_client, member, setup):
    finding = setup["findings"][0]
    response = member_client.post(
        triage_url(setup), {"triage": "false_positive", "reason": "Lab host, not prod"}
    )
    assert response.status_code == 302
    assert response["Location"] == finding.get_absolute_url()
    finding.refresh_from_db()
    assert (finding.triage, finding.triage_reason, finding.triage_by) == (
        "false_positive",
        "Lab host, not prod",
        member,
    )
    assert finding.triage_at is not None and finding.triage_until is None
    event = FindingEvent.objects.get(finding=finding)
    assert (event.kind, event.actor) == ("triaged", member)
    assert "Lab host, not prod" in event.note
    audit = AuditEvent.objects.get(action="finding.triaged")
    assert audit.object_id == str(finding.pk) and audit.actor == member
    assert audit.details["triage"] == "false_positive" and audit.details["reason_given"] is True
    assert "Lab host" not in str(audit.details)
    # The finding page now shows it, and the default list no longer does.
    page = member_client.get(finding.get_absolute_url()).content.decode()
    assert "False positive" in page and "Lab host, not prod" in page and "Undo triage" in page
    listing = member_client.get(reverse("projects:findings", args=[setup["project"].pk]))
    assert finding.pk not in {f.pk for f in listing.context["page"].rows}


def test_accept_risk_until_a_date(member_client, setup):
    until = timezone.localdate() + timedelta(days=30)
    response = member_client.post(
        triage_url(setup),
        {"triage": "risk_accepted", "reason": "Vendor patch in Q3", "until": until.isoformat()},
    )
    assert response.status_code == 302
    finding = Finding.objects.get(pk=setup["findings"][0].pk)
    assert (finding.triage, finding.triage_until) == ("risk_accepted", until)
    assert AuditEvent.objects.get(action="finding.triaged").details["until"] == until.isoformat()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"triage": "false_positive", "reason": ""}, "Give a reason"),
        ({"triage": "false_positive", "reason": "   "}, "Give a reason"),
        ({"triage": "risk_accepted", "reason": "x", "until": "2001-01-01"}, "Pick a date after today"),
        ({"triage": "false_positive", "reason": "x", "until": "2999-01-01"}, "Only an accepted risk"),
        ({"triage": "fixed", "reason": "x"}, "Select a valid choice"),
        ({"triage": "risk_accepted", "reason": "x" * 1001}, "at most 1000"),
        ({"triage": "risk_accepted", "reason": "x", "until": "tomorrow"}, "Enter a valid date"),
    ],
)
def test_invalid_triage_changes_nothing(member_client, setup, data, error):
    before = snapshot()
    response = member_client.post(triage_url(setup), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert snapshot() == before
    assert not FindingEvent.objects.exists() and not AuditEvent.objects.exists()


def test_undo_triage(member_client, member, setup):
    finding = setup["findings"][0]
    member_client.post(triage_url(setup), {"triage": "false_positive", "reason": "noise"})
    response = member_client.post(triage_url(setup, action="finding_untriage"))
    assert response.status_code == 302
    finding.refresh_from_db()
    assert (finding.triage, finding.triage_reason, finding.triage_by, finding.triage_until) == (
        "",
        "",
        None,
        None,
    )
    assert list(finding.events.values_list("kind", flat=True)) == ["triaged", "untriaged"]
    assert AuditEvent.objects.filter(action="finding.untriaged", object_id=str(finding.pk)).count() == 1
    # Undoing again is a no-op: no event, no audit.
    member_client.post(triage_url(setup, action="finding_untriage"))
    assert finding.events.count() == 2


def test_triage_post_for_another_projects_finding_is_404(member_client, setup):
    foreign = setup["foreign"]
    before = snapshot()
    for action in ("finding_triage", "finding_untriage"):
        response = member_client.post(
            triage_url(setup, foreign, action), {"triage": "false_positive", "reason": "x"}
        )
        assert response.status_code == 404
    assert snapshot() == before


# ---------------------------------------------------------------------------
# Bulk
# ---------------------------------------------------------------------------
def test_bulk_marks_only_selected_findings_of_this_project(member_client, setup):
    a, b, c, _ = setup["findings"]
    foreign = setup["foreign"]
    back = reverse("projects:findings", args=[setup["project"].pk]) + "?severity=3&state=open"
    response = member_client.post(
        bulk_url(setup),
        {
            "ids": [a.pk, b.pk, foreign.pk],
            "triage": "false_positive",
            "reason": "Scanner artefact",
            "next": back,
        },
    )
    assert response.status_code == 302 and response["Location"] == back
    triaged = set(Finding.objects.filter(triage="false_positive").values_list("pk", flat=True))
    assert triaged == {a.pk, b.pk}
    foreign.refresh_from_db()
    assert foreign.triage == ""
    assert FindingEvent.objects.filter(kind="triaged").count() == 2
    audits = AuditEvent.objects.filter(action="finding.triaged")
    assert {e.object_id for e in audits} == {str(a.pk), str(b.pk)}
    assert all(e.details["bulk"] for e in audits)
    assert c.pk not in triaged
    messages = [str(m) for m in member_client.get(back).context["messages"]]
    assert "Marked 2 findings as false positive." in messages


def test_bulk_accept_with_expiry_then_clear(member_client, setup):
    a, b, *_ = setup["findings"]
    until = (timezone.localdate() + timedelta(days=7)).isoformat()
    member_client.post(
        bulk_url(setup), {"ids": [a.pk, b.pk], "triage": "risk_accepted", "reason": "Q3", "until": until}
    )
    assert set(
        Finding.objects.filter(triage="risk_accepted", triage_until=until).values_list("pk", flat=True)
    ) == {a.pk, b.pk}
    member_client.post(bulk_url(setup), {"ids": [a.pk, b.pk], "triage": "clear"})
    assert not Finding.objects.exclude(triage="").exists()
    assert FindingEvent.objects.filter(kind="untriaged").count() == 2
    assert AuditEvent.objects.filter(action="finding.untriaged").count() == 2


@pytest.mark.parametrize(
    "data",
    [
        {"triage": "false_positive", "reason": "x"},  # nothing selected
        {"ids": ["1"], "triage": "false_positive", "reason": ""},  # no reason
        {"ids": ["abc"], "triage": "false_positive", "reason": "x"},
        {"ids": ["1"], "triage": "delete", "reason": "x"},
        {"ids": ["1"], "triage": "risk_accepted", "reason": "x", "until": "1999-01-01"},
    ],
)
def test_bulk_invalid_changes_nothing(member_client, setup, data):
    before = snapshot()
    data = {**data}
    if data.get("ids") == ["1"]:
        data["ids"] = [str(setup["findings"][0].pk)]
    response = member_client.post(bulk_url(setup), data)
    assert response.status_code == 302
    assert snapshot() == before
    assert not AuditEvent.objects.exists()
    follow = member_client.get(response["Location"])
    assert any("Nothing changed" in str(m) for m in follow.context["messages"])


def test_bulk_is_capped(member_client, setup):
    before = snapshot()
    ids = [str(i) for i in range(1, BULK_LIMIT + 2)]
    member_client.post(bulk_url(setup), {"ids": ids, "triage": "false_positive", "reason": "x"})
    assert snapshot() == before


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "\\\\evil"]
)
def test_bulk_never_redirects_off_site(member_client, setup, target):
    response = member_client.post(
        bulk_url(setup),
        {"ids": [setup["findings"][0].pk], "triage": "false_positive", "reason": "x", "next": target},
    )
    assert response["Location"] == reverse("projects:findings", args=[setup["project"].pk])


# ---------------------------------------------------------------------------
# W2: who may triage
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("persona", ["anonymous", "viewer", "outsider"])
@pytest.mark.parametrize("action", ["single", "untriage", "bulk"])
@pytest.mark.parametrize("htmx", [False, True])
def test_only_members_triage(client, viewer, outsider, setup, persona, action, htmx, caplog):
    finding = setup["findings"][0]
    Finding.objects.filter(pk=setup["findings"][1].pk).update(triage="false_positive", triage_reason="keep")
    if persona != "anonymous":
        client.force_login({"viewer": viewer, "outsider": outsider}[persona])
    target, data = {
        "single": (triage_url(setup), {"triage": "false_positive", "reason": "x"}),
        "untriage": (triage_url(setup, setup["findings"][1], "finding_untriage"), {}),
        "bulk": (bulk_url(setup), {"ids": [finding.pk, setup["findings"][1].pk], "triage": "clear"}),
    }[action]
    before = snapshot()
    response = client.post(target, data, headers={"HX-Request": "true"} if htmx else {})
    expected = {"anonymous": 302, "viewer": 403, "outsider": 404}[persona]
    if persona == "anonymous" and htmx:
        assert response["HX-Redirect"].startswith("/login/")
    else:
        assert response.status_code == expected
    assert snapshot() == before
    assert not FindingEvent.objects.exists() and not AuditEvent.objects.exists()
    if persona == "viewer":
        assert "denied" in caplog.text


def test_admin_may_triage_any_project(admin_client, setup):
    response = admin_client.post(triage_url(setup), {"triage": "false_positive", "reason": "admin says"})
    assert response.status_code == 302
    assert Finding.objects.get(pk=setup["findings"][0].pk).triage == "false_positive"


# ---------------------------------------------------------------------------
# Expired acceptances
# ---------------------------------------------------------------------------
def test_expired_acceptance_counts_as_open_until_cleared(member_client, setup):
    a, b, c, d = setup["findings"]
    today = timezone.localdate()
    Finding.objects.filter(pk=a.pk).update(
        triage="risk_accepted", triage_reason="old", triage_until=today - timedelta(days=1)
    )
    Finding.objects.filter(pk=b.pk).update(
        triage="risk_accepted", triage_reason="new", triage_until=today + timedelta(days=1)
    )
    Finding.objects.filter(pk=c.pk).update(triage="risk_accepted", triage_reason="no end")
    Finding.objects.filter(pk=d.pk).update(triage="false_positive", triage_reason="fp")
    project = setup["project"]

    def pks(**query):
        return set(filter_findings(project, FindingFilters(**query)).values_list("pk", flat=True))

    assert pks() == {a.pk}  # default: open and untriaged, which includes the expired acceptance
    assert pks(triage="expired") == {a.pk}
    assert pks(triage="risk_accepted") == {b.pk, c.pk}
    page = member_client.get(a.get_absolute_url()).content.decode()
    assert "Acceptance expired" in page and "Save triage" in page

    assert expire_acceptances() == 1
    a.refresh_from_db()
    assert (a.triage, a.triage_until, a.triage_reason) == ("", None, "")
    event = FindingEvent.objects.get(finding=a)
    assert (
        event.kind == "expired"
        and event.actor is None
        and (today - timedelta(days=1)).isoformat() in event.note
    )
    audit = AuditEvent.objects.get(action="finding.acceptance_expired")
    assert audit.object_id == str(a.pk) and audit.actor_name == "system"
    assert pks() == {a.pk}
    assert set(Finding.objects.exclude(triage="").values_list("pk", flat=True)) == {b.pk, c.pk, d.pk}
    assert expire_acceptances() == 0  # idempotent


def test_expire_acceptances_uses_the_given_time(setup):
    finding = setup["findings"][0]
    until = timezone.localdate() + timedelta(days=10)
    Finding.objects.filter(pk=finding.pk).update(
        triage="risk_accepted", triage_reason="x", triage_until=until
    )
    assert expire_acceptances(now=timezone.now() + timedelta(days=5)) == 0
    assert expire_acceptances(now=timezone.now() + timedelta(days=11)) == 1


def test_expire_acceptances_in_batches(setup, monkeypatch):
    from projects.findings import triage

    monkeypatch.setattr(triage, "EXPIRY_BATCH", 2)
    yesterday = timezone.localdate() - timedelta(days=1)
    Finding.objects.filter(project=setup["project"]).update(
        triage="risk_accepted", triage_reason="x", triage_until=yesterday
    )
    assert expire_acceptances() == 4
    assert FindingEvent.objects.filter(kind="expired").count() == 4
    assert AuditEvent.objects.filter(action="finding.acceptance_expired").count() == 4


def test_only_the_triage_module_writes_findings():
    """Reading modules never write: triage changes go through projects/findings/triage.py (imports never call it)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    reading = [p for p in sorted((root / "projects" / "findings").glob("*.py")) if p.name != "triage.py"]
    assert len(reading) >= 6  # filters, queries, overview, charts, csv_export, views (and __init__, tasks)
    for path in reading:
        source = path.read_text()
        assert not re.search(r"(objects|\)|findings|qs)\.(update|delete|bulk_update)\(|\.save\(", source), (
            path
        )


# ---------------------------------------------------------------------------
# No default decision (issue 12 §8): the reviewer chooses False positive or Risk accepted
# ---------------------------------------------------------------------------
def test_triage_forms_preselect_nothing(member_client, setup):
    finding = setup["findings"][0]
    page = member_client.get(reverse("projects:finding", args=[setup["project"].pk, finding.pk]))
    form = page.content.decode().split('class="form-grid triage-form"', 1)[1].split("</form>", 1)[0]
    assert 'name="triage"' in form and "checked" not in form
    listing = member_client.get(reverse("projects:findings", args=[setup["project"].pk])).content.decode()
    select = re.search(r'<select id="bulk-triage"[^>]*>(.*?)</select>', listing, re.S)
    assert select and " required" in select.group(0)
    assert re.match(
        r'\s*<option value="">Mark as…</option>', select.group(1)
    ) and "selected" not in select.group(1)


def test_triage_without_a_choice_asks_for_one_and_changes_nothing(member_client, setup):
    before = snapshot()
    response = member_client.post(triage_url(setup), {"reason": "looked at it"})
    assert "Choose False positive or Risk accepted." in response.content.decode()
    ids = [f.pk for f in setup["findings"][:2]]
    response = member_client.post(bulk_url(setup), {"ids": ids, "reason": "x"}, follow=True)
    assert "Choose what to mark the selected findings as." in response.content.decode()
    assert snapshot() == before
