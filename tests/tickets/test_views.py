"""Issue 20 › Per project mapping and Manual: Project › Settings › Jira (live lookups, Test mapping naming missing
permissions, the description preview with Tenable's text escaped, Sync now, the sync log), "Create Jira ticket"
on a finding and in bulk, and the finding page's Jira card. Members change, viewers look, outsiders get 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from projects.models import Finding
from tests.conftest import make_project
from tests.jira_fixtures import JIRA_VIEWER_API_TOKEN, JIRA_VIEWER_EMAIL
from tests.tickets.conftest import (
    APACHE,
    PING,
    SEC_TASK,
    TLS,
    WEB1,
    WEB2,
    make_jira,
    make_mapping,
    process,
    sync_of,
)
from tickets.choices import Grouping
from tickets.models import TicketLink, TicketMapping, TicketRequest, TicketSync

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
def team(member, viewer, project):
    project.memberships.create(user=member, role="member")
    project.memberships.create(user=viewer, role="viewer")
    return project


def form_data(integration, **extra) -> dict:
    data = {
        "integration": integration.pk,
        "jira_project": "sec",
        "issue_type_id": SEC_TASK,
        "enabled": "on",
        "min_severity": 3,
        "grouping": "plugin",
        "priority_4": "Highest",
        "priority_3": "High",
        "priority_2": "Medium",
        "priority_1": "Low",
        "priority_0": "",
        "label_scan_tag": "on",
        "extra_labels": "tenable, vuln-mgmt",
        "description_template": "{synopsis}\n\n## Hosts\n{hosts}",
        "done_status": "Done",
        "reopen_status": "To Do",
        "hand_closed": "comment",
        "creation_cap": 25,
    }
    return {**data, **extra}


def test_without_a_connection_the_page_says_where_to_make_one(member_client, team):
    page = member_client.get(reverse("tickets:mapping", args=[team.pk])).content.decode()
    assert "No Jira Cloud connection yet" in page and "An admin connects Jira Cloud" in page


def test_the_project_key_is_looked_up_live(member_client, team, jira_simulator):
    jira = make_jira(jira_simulator.url)
    url = reverse("tickets:lookup", args=[team.pk])
    html = member_client.get(
        url, {"integration": jira.pk, "jira_project": "sec"}, headers=HX
    ).content.decode()
    assert "SEC · Security Vulnerabilities" in html
    assert ">Task<" in html and ">Bug<" in html and "Sub-task" not in html
    html = member_client.get(
        url, {"integration": jira.pk, "jira_project": "NOPE"}, headers=HX
    ).content.decode()
    assert "Jira project NOPE was not found, or this account cannot see it" in html


def test_saving_the_mapping_checks_jira_and_starts_a_sync(member_client, member, team, jira_simulator):
    jira = make_jira(jira_simulator.url)
    response = member_client.post(reverse("tickets:mapping", args=[team.pk]), form_data(jira))
    assert response.status_code == 302, response.content.decode()[:3000]
    mapping = TicketMapping.objects.get(project=team)
    assert (mapping.jira_project, mapping.jira_project_name, mapping.issue_type_name) == (
        "SEC", "Security Vulnerabilities", "Task"
    )  # fmt: skip
    assert mapping.priorities == {"4": "Highest", "3": "High", "2": "Medium", "1": "Low", "0": ""}
    assert (mapping.extra_labels, mapping.hand_closed, mapping.creation_cap) == (
        "tenable, vuln-mgmt",
        "comment",
        25,
    )
    assert mapping.label_meta_data is False and mapping.updated_by == member
    assert TicketSync.objects.get(project=team).trigger == "sync_now"
    page = member_client.get(reverse("tickets:mapping", args=[team.pk])).content.decode()
    assert "Jira tickets set up: tickets go to SEC." in page


def test_bad_input_gets_sentences(member_client, team, jira_simulator):
    jira = make_jira(jira_simulator.url)
    url = reverse("tickets:mapping", args=[team.pk])
    html = member_client.post(url, form_data(jira, jira_project="NOPE")).content.decode()
    assert "Jira project NOPE was not found" in html
    html = member_client.post(
        url, form_data(jira, description_template="{hosts} {cvss9} {oops}")
    ).content.decode()
    assert "Unknown placeholders {cvss9}, {oops}: use the ones listed below the field." in html
    html = member_client.post(url, form_data(jira, issue_type_id="10003")).content.decode()  # a sub-task
    assert "Select a valid choice" in html
    html = member_client.post(url, form_data(jira, creation_cap=0)).content.decode()
    assert "Between 1 and 1,000 ticket creations per run." in html
    assert not TicketMapping.objects.exists()


def test_test_mapping_names_each_missing_permission(member_client, team, jira_simulator):
    viewer_account = make_jira(jira_simulator.url, login=JIRA_VIEWER_EMAIL, token=JIRA_VIEWER_API_TOKEN)
    html = member_client.post(
        reverse("tickets:test", args=[team.pk]), form_data(viewer_account), headers=HX
    ).content.decode()
    assert "Permissions missing in SEC" in html and "Connected as Read-only viewer" in html
    for name in ("Create Issues", "Edit Issues", "Transition Issues", "Add Comments"):
        assert f"<li>{name}</li>" in html
    assert "<li>Browse Projects</li>" not in html
    good = make_jira(jira_simulator.url, name="Jira 2")
    html = member_client.post(
        reverse("tickets:test", args=[team.pk]), form_data(good), headers=HX
    ).content.decode()
    assert "Mapping works" in html and "Every permission tickets need is granted in SEC" in html


def test_the_preview_keeps_tenables_text_as_text(member_client, team, upload, jira_simulator):
    jira = make_jira(jira_simulator.url)
    upload({**WEB1, "name": PAYLOAD, "items": [(91000, 443, "tcp", 4, PAYLOAD)]})
    html = member_client.post(
        reverse("tickets:preview", args=[team.pk]),
        form_data(
            jira, description_template="{synopsis}\n\n## Hosts for {plugin_name}\n{hosts}\n{console_url}"
        ),
        headers=HX,
    ).content.decode()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h3>Hosts for &lt;script&gt;" in html
    assert '<ul><li><p><a href="http://127.0.0.1:8000/projects/' in html  # hosts link to their findings
    assert "Priority: Highest" in html and "[Critical] &lt;script&gt;" in html


def test_viewers_look_and_outsiders_get_404(viewer_client, team, jira_simulator, client, outsider):
    jira = make_jira(jira_simulator.url)
    make_mapping(team, jira)
    page = viewer_client.get(reverse("tickets:mapping", args=[team.pk])).content.decode()
    assert "Jira tickets" in page and "disabled" in page and ">Sync now</button>" not in page
    assert viewer_client.post(reverse("tickets:mapping", args=[team.pk]), form_data(jira)).status_code == 403
    assert viewer_client.post(reverse("tickets:sync", args=[team.pk])).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("tickets:mapping", args=[team.pk])).status_code == 404
    assert client.post(reverse("tickets:bulk", args=[team.pk]), {"ids": [1]}).status_code == 404


def test_sync_now_and_the_log(member_client, team, jira_simulator, fake_clock, upload):
    make_mapping(team, make_jira(jira_simulator.url))
    process(sync_of(upload({**WEB1, "items": [APACHE, TLS]})))
    member_client.post(reverse("tickets:sync", args=[team.pk]))
    pending = TicketSync.objects.get(trigger="sync_now")
    log = member_client.get(reverse("tickets:syncs", args=[team.pk]), headers=HX)
    assert log.status_code == 200 and 'hx-trigger="every 2s"' in log.content.decode()  # polls while pending
    process(pending)
    log = member_client.get(reverse("tickets:syncs", args=[team.pk]), headers=HX)
    assert log.status_code == 286  # stop polling
    html = log.content.decode()
    assert "2 created" in html and "Nothing to change" in html and "2 open tickets" in html


def test_a_ticket_appears_on_its_finding(member_client, team, jira_simulator, fake_clock, upload):
    make_mapping(team, make_jira(jira_simulator.url))
    process(sync_of(upload({**WEB1, "items": [APACHE]}, {**WEB2, "items": [APACHE]})))
    finding = Finding.objects.get(asset__name="web-1", plugin_id=APACHE[0])
    page = member_client.get(finding.get_absolute_url()).content.decode()
    assert f'href="{jira_simulator.url}/browse/SEC-1"' in page
    assert "<strong>SEC-1</strong>" in page and ">To Do</span>" in page
    assert "One ticket for this vulnerability on 2 hosts" in page and "Create Jira ticket" not in page
    jira_simulator.sim.transition_by_hand("SEC-1", "In Progress")
    process(TicketSync.objects.create(project=team, trigger="sync_now"))
    assert ">In Progress</span>" in member_client.get(finding.get_absolute_url()).content.decode()


def test_create_jira_ticket_on_a_finding_below_the_threshold(
    member_client, team, jira_simulator, fake_clock, upload
):
    sim = jira_simulator.sim
    make_mapping(team, make_jira(jira_simulator.url), grouping=Grouping.FINDING)
    process(sync_of(upload({**WEB1, "items": [APACHE, PING]})))
    info = Finding.objects.get(plugin_id=PING[0])
    page = member_client.get(info.get_absolute_url()).content.decode()
    assert "tickets are created for High and above" in page and "Create Jira ticket" in page
    response = member_client.post(reverse("tickets:finding", args=[team.pk, info.pk]))
    assert response.status_code == 302
    assert TicketRequest.objects.filter(finding=info).exists()
    card = member_client.get(reverse("tickets:finding", args=[team.pk, info.pk]), headers=HX)
    assert card.status_code == 200 and "Creating the Jira ticket" in card.content.decode()  # and it polls
    process(TicketSync.objects.get(trigger="manual"))
    card = member_client.get(reverse("tickets:finding", args=[team.pk, info.pk]), headers=HX)
    assert card.status_code == 286 and "<strong>SEC-2</strong>" in card.content.decode()
    assert sim.issue("SEC-2").summary == f"[Info] {PING[4]} on web-1"
    # Asking again reuses the ticket.
    member_client.post(reverse("tickets:finding", args=[team.pk, info.pk]))
    process(TicketSync.objects.filter(trigger="manual").order_by("-pk").first())
    assert len(sim.issues) == 2


def test_bulk_create_from_the_findings_list(member_client, team, jira_simulator, fake_clock, upload, member):
    sim = jira_simulator.sim
    make_mapping(team, make_jira(jira_simulator.url), grouping=Grouping.FINDING, min_severity=4)
    upload({**WEB1, "items": [APACHE, PING]}, {**WEB2, "items": [APACHE]})
    listing = member_client.get(reverse("projects:findings", args=[team.pk])).content.decode()
    assert f'formaction="{reverse("tickets:bulk", args=[team.pk])}"' in listing
    ids = list(Finding.objects.filter(project=team).values_list("pk", flat=True))
    triaged = Finding.objects.get(plugin_id=PING[0])
    Finding.objects.filter(pk=triaged.pk).update(triage="false_positive", triage_by=member)
    other = make_project("Other")
    foreign = Finding.objects.create(
        project=other, asset=triaged.asset, plugin=triaged.plugin, fingerprint=triaged.fingerprint,
        severity=0, effective_severity=0, first_seen=triaged.first_seen, last_seen=triaged.last_seen,
    )  # fmt: skip
    response = member_client.post(
        reverse("tickets:bulk", args=[team.pk]),
        {"ids": [*ids, foreign.pk], "next": "/projects/"},
        follow=True,
    )
    html = response.content.decode()
    assert "Jira tickets requested for 2 findings" in html
    assert f"No ticket: {PING[4]} on web-1 is marked false positive: clear its triage first." in html
    process(TicketSync.objects.get(trigger="manual"))
    assert sorted(i.summary for i in sim.issues) == [
        f"[High] {APACHE[4]} on web-1:443",
        f"[High] {APACHE[4]} on web-2:443",
    ]
    assert not TicketRequest.objects.filter(finding=foreign).exists()
    assert TicketLink.objects.count() == 2


def test_the_jira_simulator_shows_a_linked_ticket(member_client, team, jira_simulator, fake_clock, upload):
    """`make demo`'s ticket links lead somewhere: the simulator's /browse/KEY page, every text escaped."""
    import requests

    make_mapping(team, make_jira(jira_simulator.url))
    process(sync_of(upload({**WEB1, "name": PAYLOAD, "items": [APACHE]})))
    link = TicketLink.objects.get()
    page = requests.get(link.url, auth=("jira-bot@example.com", "sim-jira-token"), timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert (
        f"{link.issue_key}: [High] {APACHE[4].replace('<', '&lt;')}" in page.text
        and "Status: <strong>To Do</strong>" in page.text
    )
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert requests.get(link.url, timeout=5).status_code == 401  # the browser asks for the account
