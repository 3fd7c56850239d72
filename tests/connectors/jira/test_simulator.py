"""The Jira simulator itself: JQL subset, screens and validation, the workflow, faults, hooks, accounts."""

from __future__ import annotations

import base64

import pytest
import requests

from integrations.connectors.jira_cloud import adf
from integrations.connectors.jira_cloud.simulator import FAULTS, JiraSimulator
from integrations.connectors.jira_cloud.simulator.jql import JqlError, parse
from tests.jira_fixtures import JIRA_API_TOKEN, JIRA_EMAIL, JIRA_VIEWER_API_TOKEN, JIRA_VIEWER_EMAIL

AUTH = (JIRA_EMAIL, JIRA_API_TOKEN)


def api(server, method: str, path: str, auth=AUTH, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.url}/rest/api/3{path}", auth=auth, timeout=5, **kwargs)


def keys(server, jql: str, **extra) -> list[str]:
    response = api(server, "POST", "/search/jql", json={"jql": jql, "fields": ["summary"], **extra})
    assert response.status_code == 200, response.text
    return [issue["key"] for issue in response.json()["issues"]]


@pytest.fixture
def seeded(jira_simulator):
    sim = jira_simulator.sim
    sim.seed_issue("SEC", "Apache", labels=["tc-a", "scan-weekly"])  # SEC-1
    sim.seed_issue("SEC", "OpenSSL", labels=["tc-b"], status="In Progress")  # SEC-2
    sim.seed_issue("SEC", "Old one", labels=["tc-c"], status="Done")  # SEC-3
    sim.seed_issue("SEC", "No labels")  # SEC-4
    sim.seed_issue("OPS", "Ops task", labels=["tc-a"])  # OPS-1
    return jira_simulator


# -- JQL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ('project = SEC AND labels = "tc-a"', ["SEC-1"]),
        ("labels = tc-a ORDER BY key ASC", ["OPS-1", "SEC-1"]),
        ('labels in ("tc-a", "tc-b") AND project = "SEC" ORDER BY created ASC', ["SEC-1", "SEC-2"]),
        ("project = SEC AND statusCategory != Done ORDER BY created", ["SEC-1", "SEC-2", "SEC-4"]),
        ('project = SEC AND statusCategory = "In Progress"', ["SEC-2"]),
        ("project = SEC AND status = Done", ["SEC-3"]),
        ("project = SEC AND resolution = Unresolved ORDER BY created DESC", ["SEC-4", "SEC-2", "SEC-1"]),
        ("project = SEC AND labels != tc-a ORDER BY created", ["SEC-2", "SEC-3"]),  # never the unlabelled
        ("project = SEC AND labels is EMPTY", ["SEC-4"]),
        ("project = SEC AND labels not in (tc-a, tc-b)", ["SEC-3"]),
        ('project = SEC AND (labels = tc-a OR summary ~ "openssl") ORDER BY key', ["SEC-1", "SEC-2"]),
        ("project = SEC AND NOT labels = tc-a AND issuetype = Task ORDER BY id", ["SEC-2", "SEC-3", "SEC-4"]),
        ("key = sec-3", ["SEC-3"]),
        ("project = OPS", ["OPS-1"]),
    ],
)
def test_jql_subset(seeded, jql, expected):
    assert keys(seeded, jql) == expected


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("", "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."),
        ("order by created DESC", "Unbounded JQL queries are not allowed here."),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("assignee = me", "Field 'assignee' does not exist or you do not have permission to view it."),
        (
            "project = SEC AND",
            "Error in the JQL Query: Expecting a field name but reached the end of the query.",
        ),
        (
            "project = SEC labels = x",
            "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'labels'.",
        ),
        ("project = SEC ORDER BY priority", "Not able to sort using field 'priority'."),
        ('labels = "unterminated', "Error in the JQL Query: The character '\"' is a reserved JQL character."),
    ],
)
def test_jql_errors_use_jiras_sentences(seeded, jql, message):
    response = api(seeded, "POST", "/search/jql", json={"jql": jql})
    assert response.status_code == 400
    assert response.json()["errorMessages"][0].startswith(message)


def test_a_project_the_account_cannot_browse_does_not_exist_for_jql():
    with pytest.raises(JqlError, match="does not exist for the field 'project'"):
        parse("project = SEC", check_project=lambda value: False)


def test_search_returns_ids_only_unless_fields_are_asked(seeded):
    [issue] = api(seeded, "POST", "/search/jql", json={"jql": "key = SEC-1"}).json()["issues"]
    assert set(issue) == {"id", "key", "self"}
    [issue] = api(
        seeded, "GET", "/search/jql", params={"jql": "key = SEC-1", "fields": "labels,status"}
    ).json()["issues"]
    assert (
        set(issue["fields"]) == {"labels", "status"}
        and issue["fields"]["status"]["statusCategory"]["key"] == "new"
    )


def test_paging_tokens_belong_to_their_query(seeded):
    first = api(seeded, "POST", "/search/jql", json={"jql": "project = SEC", "maxResults": 2}).json()
    assert (len(first["issues"]), first["isLast"]) == (2, False)
    again = api(
        seeded,
        "POST",
        "/search/jql",
        json={"jql": "project = SEC", "nextPageToken": first["nextPageToken"], "maxResults": 2},
    ).json()
    assert (len(again["issues"]), again["isLast"], "nextPageToken" in again) == (2, True, False)
    other = api(
        seeded, "POST", "/search/jql", json={"jql": "project = OPS", "nextPageToken": first["nextPageToken"]}
    )
    assert other.status_code == 400 and other.json()["errorMessages"] == [
        "The provided next page token is invalid or expired."
    ]


def test_the_removed_search_endpoint_answers_410(seeded):
    response = api(seeded, "GET", "/search", params={"jql": "project = SEC"})
    assert response.status_code == 410 and "/rest/api/3/search/jql" in response.json()["errorMessages"][0]


def test_stale_search_hides_new_issues_unless_reconciled(jira_simulator):
    sim = jira_simulator.sim
    sim.set_fault("stale_search")
    created = api(
        jira_simulator,
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": "SEC"},
                "issuetype": {"name": "Task"},
                "summary": "new",
                "labels": ["tc-new"],
            }
        },
    ).json()
    assert keys(jira_simulator, "labels = tc-new") == []
    assert keys(jira_simulator, "labels = tc-new", reconcileIssues=[int(created["id"])]) == ["SEC-1"]


# -- create, edit, screens -------------------------------------------------------------------------


def test_create_validates_like_jira(jira_simulator):
    fields = {
        "project": {"key": "SEC"},
        "issuetype": {"id": "10001"},
        "summary": "two\nlines",
        "description": "wiki {code}",
        "labels": ["ok", "not ok"],
        "priority": {"name": "Urgent"},
        "duedate": "01/03/2025",
        "customfield_10038": "x",
    }
    response = api(jira_simulator, "POST", "/issue", json={"fields": fields})
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {
            "summary": "The summary is invalid because it contains newline characters.",
            "description": "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
            "labels": "The label 'not ok' contains spaces which is invalid.",
            "priority": "The priority selected is invalid.",
            "duedate": "Error parsing date string: 01/03/2025",
            "customfield_10038": "Field 'customfield_10038' cannot be set. It is not on the appropriate screen, or unknown.",
        },
    }
    assert jira_simulator.sim.issues == []


def test_create_needs_a_project_and_a_creatable_issue_type(jira_simulator):
    missing = api(jira_simulator, "POST", "/issue", json={"fields": {"summary": "x"}}).json()
    assert missing["errors"] == {"project": "Specify a valid project ID or key"}
    subtask = api(
        jira_simulator,
        "POST",
        "/issue",
        json={"fields": {"project": {"id": "10000"}, "issuetype": {"name": "Sub-task"}, "summary": "x"}},
    ).json()
    assert subtask["errors"] == {"issuetype": "The issue type selected is invalid."}


def test_the_browse_only_account_gets_403_on_every_write(seeded):
    viewer = (JIRA_VIEWER_EMAIL, JIRA_VIEWER_API_TOKEN)
    fields = {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "x"}
    assert api(seeded, "POST", "/issue", viewer, json={"fields": fields}).status_code == 403
    assert api(seeded, "PUT", "/issue/SEC-1", viewer, json={"fields": {"summary": "y"}}).status_code == 403
    assert (
        api(seeded, "POST", "/issue/SEC-1/transitions", viewer, json={"transition": {"id": "21"}}).status_code
        == 403
    )
    comment = {"body": adf.from_text("x")}
    assert api(seeded, "POST", "/issue/SEC-1/comment", viewer, json=comment).status_code == 403
    assert api(seeded, "GET", "/issue/SEC-1/transitions", viewer).json()["transitions"] == []
    assert api(seeded, "GET", "/issue/SEC-1", viewer).status_code == 200


def test_edit_label_verbs_and_set(seeded):
    update = {"labels": [{"add": "tc-z"}, {"remove": "scan-weekly"}], "summary": [{"set": "Apache httpd"}]}
    assert api(seeded, "PUT", "/issue/SEC-1", json={"update": update}).status_code == 204
    stored = seeded.sim.issue("SEC-1")
    assert (stored.labels, stored.summary) == (("tc-a", "tc-z"), "Apache httpd")
    refused = api(seeded, "PUT", "/issue/SEC-1", json={"fields": {"project": {"key": "OPS"}}})
    assert refused.json()["errors"] == {
        "project": "Field 'project' cannot be set. It is not on the appropriate screen, or unknown."
    }


def test_a_transition_comment_sticks_only_when_the_transition_has_a_screen(seeded):
    body = {"transition": {"id": "21"}, "update": {"comment": [{"add": {"body": adf.from_text("via Done")}}]}}
    assert api(seeded, "POST", "/issue/SEC-1/transitions", json=body).status_code == 204
    body = {
        "transition": {"id": "41"},
        "update": {"comment": [{"add": {"body": adf.from_text("via Reopen")}}]},
    }
    assert (
        api(seeded, "POST", "/issue/SEC-1/transitions", json=body).status_code == 204
    )  # accepted, comment dropped
    assert seeded.sim.issue("SEC-1").comments == ("via Done",)
    assert seeded.sim.issue("SEC-1").status == "To Do"


def test_a_resolution_can_be_set_only_on_a_transition_with_a_screen(seeded):
    ok = {"transition": {"id": "21"}, "fields": {"resolution": {"name": "Won't Do"}}}
    assert api(seeded, "POST", "/issue/SEC-1/transitions", json=ok).status_code == 204
    assert seeded.sim.issue("SEC-1").resolution == "Won't Do"
    refused = {"transition": {"id": "41"}, "fields": {"resolution": {"name": "Done"}}}
    assert api(seeded, "POST", "/issue/SEC-1/transitions", json=refused).status_code == 400


def test_get_issue_shape(seeded):
    fields = api(seeded, "GET", "/issue/SEC-2").json()["fields"]
    assert (
        fields["status"]["name"] == "In Progress"
        and fields["status"]["statusCategory"]["key"] == "indeterminate"
    )
    assert fields["project"]["key"] == "SEC" and fields["issuetype"]["name"] == "Task"
    assert fields["created"] == "2025-01-01T00:02:00.000+0000"
    assert fields["comment"] == {"comments": [], "maxResults": 0, "total": 0, "startAt": 0}
    assert api(seeded, "GET", "/issue/10001").json()["key"] == "SEC-2"


def test_requests_need_json(jira_simulator):
    response = api(jira_simulator, "POST", "/issue", data="fields=1", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    response = api(
        jira_simulator, "POST", "/issue", data="{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


# -- accounts, faults, hooks -----------------------------------------------------------------------


def test_wrong_or_missing_credentials_get_401(jira_simulator):
    wrong = api(jira_simulator, "GET", "/myself", auth=(JIRA_EMAIL, "nope"))
    assert wrong.status_code == 401 and wrong.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    assert api(jira_simulator, "GET", "/myself", auth=None).status_code == 401
    garbled = requests.get(
        f"{jira_simulator.url}/rest/api/3/myself", headers={"Authorization": "Basic %%%"}, timeout=5
    )
    assert garbled.status_code == 401
    assert [r.auth for r in jira_simulator.sim.requests] == ["invalid", "missing", "invalid"]


def test_recorded_requests_never_hold_the_token(jira_simulator):
    api(jira_simulator, "GET", "/myself")
    encoded = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_API_TOKEN}".encode()).decode()
    text = repr(jira_simulator.sim.requests)
    assert JIRA_API_TOKEN not in text and encoded not in text


def test_429_carries_jiras_headers(jira_simulator):
    jira_simulator.sim.set_fault("rate_limit", retry_after="30")
    response = api(jira_simulator, "GET", "/myself")
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"
    assert response.headers["X-RateLimit-Reset"] == "2025-01-01T00:00Z"
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"


def test_faults_are_scoped_by_account_path_method_and_count(jira_simulator):
    sim = jira_simulator.sim
    sim.set_fault("forbidden", key=JIRA_VIEWER_EMAIL)
    sim.set_fault("not_found", path="/project/", method="GET", after=1, times=1)
    assert (
        api(jira_simulator, "GET", "/myself", (JIRA_VIEWER_EMAIL, JIRA_VIEWER_API_TOKEN)).status_code == 403
    )
    assert api(jira_simulator, "GET", "/myself").status_code == 200
    assert [api(jira_simulator, "GET", "/project/SEC").status_code for _ in range(3)] == [200, 404, 200]
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_fault("nope")
    assert "lost_response" in FAULTS and "stale_search" in FAULTS


def test_hand_hooks_change_the_ground_truth(seeded):
    sim = seeded.sim
    sim.transition_by_hand("SEC-1", "Done", comment="Closed by hand")
    sim.edit_by_hand("SEC-1", labels=["triage"], summary="renamed")
    sim.comment_by_hand("SEC-1", "a human note")
    stored = sim.issue("SEC-1")
    assert (stored.status, stored.status_category, stored.resolution) == ("Done", "done", "Done")
    assert (stored.labels, stored.summary, stored.comments) == (
        ("triage",),
        "renamed",
        ("Closed by hand", "a human note"),
    )
    sim.delete_by_hand("SEC-1")
    assert sim.issue("SEC-1") is None and api(seeded, "GET", "/issue/SEC-1").status_code == 404
    assert [i.key for i in sim.issues] == ["SEC-2", "SEC-3", "SEC-4", "OPS-1"]


def test_peak_concurrency_is_counted_per_account(jira_simulator):
    import threading

    jira_simulator.sim.set_fault("slow", seconds=0.2)
    threads = [threading.Thread(target=api, args=(jira_simulator, "GET", "/myself")) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert jira_simulator.sim.peak_requests(JIRA_EMAIL) == 3
    assert jira_simulator.sim.peak_requests(JIRA_VIEWER_EMAIL) == 0


def test_the_same_data_every_time():
    first, second = JiraSimulator(), JiraSimulator()
    for sim in (first, second):
        sim.seed_issue("SEC", "x", labels=["tc-a"])
    assert first.issues == second.issues and first.user(JIRA_EMAIL) == second.user(JIRA_EMAIL)


def test_the_management_command_describes_the_accounts():
    from integrations.management.commands.jira_simulator import Command

    assert JIRA_VIEWER_EMAIL in Command.help and "403" in Command.help
