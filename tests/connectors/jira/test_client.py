"""JiraClient over real HTTP against the Jira simulator, plus loopback servers for network faults."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from integrations.connectors.jira_cloud import adf
from integrations.connectors.jira_cloud import errors as say
from integrations.connectors.jira_cloud.client import (
    SEARCH_FIELDS,
    JiraClient,
    Transition,
    jql_quote,
    pick_transition,
    site_origin,
    stable_label,
    summary_text,
)
from integrations.connectors.jira_cloud.errors import JiraError
from integrations.connectors.jira_cloud.simulator import JiraSimulator
from tests.jira_fixtures import (
    JIRA_API_TOKEN,
    JIRA_EMAIL,
    JIRA_VIEWER_API_TOKEN,
    JIRA_VIEWER_EMAIL,
    jira_client_for,
)

SENTINEL_TOKEN = "ATATT3xSentinel-token-0123456789"


def calls(sim: JiraSimulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.requests]


def new_fields(summary: str = "Apache 2.4.x < 2.4.62 Multiple Vulnerabilities", **extra) -> dict:
    fields = {
        "project": {"key": "SEC"},
        "issuetype": {"name": "Task"},
        "summary": summary,
        "description": adf.from_text("Upgrade Apache.\n\nSee https://httpd.apache.org/security/."),
        "labels": [stable_label("plugin", 201198)],
    }
    return {**fields, **extra}


def fails(call, *args, **kwargs) -> JiraError:
    with pytest.raises(JiraError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- who and where ---------------------------------------------------------------------------------


def test_myself_names_the_account(jira_client, jira_simulator):
    user = jira_client.myself()
    assert (user.display_name, user.email, user.active) == ("Tenable Console", JIRA_EMAIL, True)
    assert user.account_id == jira_simulator.sim.user(JIRA_EMAIL).account_id
    [request] = jira_simulator.sim.requests
    assert (request.path, request.auth, request.user) == ("/rest/api/3/myself", "valid", JIRA_EMAIL)


def test_basic_auth_header_is_email_and_token(jira_simulator, monkeypatch):
    seen = {}
    original = JiraSimulator._auth

    def spy(self, header):
        seen["header"] = header
        return original(self, header)

    monkeypatch.setattr(JiraSimulator, "_auth", spy)
    jira_client_for(jira_simulator.url).myself()
    expected = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_API_TOKEN}".encode()).decode()
    assert seen["header"] == f"Basic {expected}"


def test_a_netrc_entry_for_the_host_never_replaces_our_credentials(jira_simulator, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone@example.com password someone-elses-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert jira_client_for(jira_simulator.url).myself().email == JIRA_EMAIL


def test_test_connection_names_the_missing_project_permissions(jira_simulator):
    client = jira_client_for(jira_simulator.url, email=JIRA_VIEWER_EMAIL, api_token=JIRA_VIEWER_API_TOKEN)
    check = client.test_connection("SEC")
    assert check.user.email == JIRA_VIEWER_EMAIL and check.project.key == "SEC"
    assert check.missing_permissions == ["Create Issues", "Edit Issues", "Transition Issues", "Add Comments"]
    assert calls(jira_simulator.sim) == [
        "GET /rest/api/3/myself",
        "GET /rest/api/3/project/SEC",
        "GET /rest/api/3/mypermissions",
    ]
    assert jira_simulator.sim.requests[-1].query == {
        "projectKey": "SEC",
        "permissions": "BROWSE_PROJECTS,CREATE_ISSUES,EDIT_ISSUES,TRANSITION_ISSUES,ADD_COMMENTS",
    }


def test_test_connection_with_every_permission_misses_nothing(jira_client):
    check = jira_client.test_connection("sec")
    assert check.missing_permissions == [] and check.project.name == "Security Vulnerabilities"


def test_my_permissions_can_ask_for_schedule_issues(jira_simulator):
    jira_simulator.sim.add_user("planner@example.com", "planner-token", permissions={"BROWSE_PROJECTS"})
    client = jira_client_for(jira_simulator.url, email="planner@example.com", api_token="planner-token")
    check = client.my_permissions("SEC", ["BROWSE_PROJECTS", "SCHEDULE_ISSUES"])
    assert check.granted == {"BROWSE_PROJECTS": True, "SCHEDULE_ISSUES": False}
    assert check.missing == ["Schedule Issues"]


def test_project_lists_its_issue_types(jira_client):
    project = jira_client.project("SEC")
    assert (project.id, project.key, project.simplified) == ("10000", "SEC", False)
    assert [(t.name, t.subtask) for t in project.issue_types] == [
        ("Task", False),
        ("Bug", False),
        ("Sub-task", True),
    ]
    assert jira_client.project("OPS").simplified is True


def test_issue_types_are_the_ones_the_account_may_create(jira_client, jira_simulator):
    assert [t.name for t in jira_client.issue_types("SEC")] == ["Task", "Bug", "Sub-task"]
    viewer = jira_client_for(jira_simulator.url, email=JIRA_VIEWER_EMAIL, api_token=JIRA_VIEWER_API_TOKEN)
    assert viewer.issue_types("SEC") == []


def test_unknown_project_is_not_found_once(jira_client, jira_simulator):
    error = fails(jira_client.project, "NOPE")
    assert (error.kind, error.status, error.permanent) == ("not_found", 404, True)
    assert error.message == (
        "Jira project NOPE was not found, or this account cannot see it (it needs the “Browse Projects” "
        "permission). Check the project key."
    )
    assert len(jira_simulator.sim.requests) == 1


def test_a_project_the_account_cannot_browse_is_not_found(jira_simulator):
    jira_simulator.sim.add_user("ops@example.com", "ops-token", projects={"OPS"})
    client = jira_client_for(jira_simulator.url, email="ops@example.com", api_token="ops-token")
    assert client.project("OPS").key == "OPS"
    assert fails(client.test_connection, "SEC").kind == "not_found"


# -- issues ----------------------------------------------------------------------------------------


def test_create_issue_stores_every_mapped_field(jira_client, jira_simulator):
    label = stable_label("plugin", 201198)
    created = jira_client.create_issue(
        new_fields(priority={"name": "High"}, duedate="2025-03-01", labels=[label, "Scan-Tag"])
    )
    assert created.key == "SEC-1" and created.id
    stored = jira_simulator.sim.issue("SEC-1")
    assert stored.summary == "Apache 2.4.x < 2.4.62 Multiple Vulnerabilities"
    assert stored.labels == (label, "Scan-Tag")
    assert (stored.priority, stored.duedate, stored.status, stored.issue_type) == (
        "High",
        "2025-03-01",
        "To Do",
        "Task",
    )
    assert stored.description_text == "Upgrade Apache.\nSee https://httpd.apache.org/security/."
    issue = jira_client.issue("SEC-1")
    assert (issue.key, issue.status, issue.status_category, issue.done) == ("SEC-1", "To Do", "new", False)
    assert issue.labels == (label, "Scan-Tag") and issue.fields["duedate"] == "2025-03-01"


def test_create_without_create_issues_is_forbidden_and_names_it(jira_simulator):
    client = jira_client_for(jira_simulator.url, email=JIRA_VIEWER_EMAIL, api_token=JIRA_VIEWER_API_TOKEN)
    error = fails(client.create_issue, new_fields())
    assert (error.kind, error.status, error.permanent, error.outcome_unknown) == (
        "forbidden",
        403,
        True,
        False,
    )
    assert error.message == (
        "Jira refused the request (HTTP 403): the account lacks the “Create Issues” permission in project SEC. "
        "Ask a Jira administrator to grant it in the project's permission scheme (Project settings › Permissions)."
    )
    assert len(jira_simulator.sim.requests) == 1 and jira_simulator.sim.issues == []


def test_a_field_missing_from_the_screen_is_summarised(jira_client, jira_simulator):
    fields = new_fields(project={"key": "OPS"}, priority={"name": "High"})
    error = fails(jira_client.create_issue, fields)
    assert (error.kind, error.status, error.permanent) == ("bad_request", 400, True)
    assert error.message == (
        "Jira refused the request (HTTP 400): priority: Field 'priority' cannot be set. "
        "It is not on the appropriate screen, or unknown."
    )
    assert len(jira_simulator.sim.requests) == 1


def test_several_field_errors_are_all_named(jira_client):
    fields = new_fields(summary="", labels=["has space"])
    fields["issuetype"] = {"name": "Epic"}
    message = fails(jira_client.create_issue, fields).message
    assert "issuetype: The issue type selected is invalid." in message
    assert "summary: You must specify a summary of the issue." in message
    assert "labels: The label 'has space' contains spaces which is invalid." in message


def test_a_due_date_needs_schedule_issues(jira_simulator):
    sim = jira_simulator.sim
    sim.add_user("noschedule@example.com", "t0ken", permissions={"BROWSE_PROJECTS", "CREATE_ISSUES"})
    client = jira_client_for(jira_simulator.url, email="noschedule@example.com", api_token="t0ken")
    assert (
        "duedate: Field 'duedate' cannot be set."
        in fails(client.create_issue, new_fields(duedate="2025-03-01")).message
    )


def test_edit_issue_sets_fields_and_keeps_the_label_with_update_verbs(jira_client, jira_simulator):
    sim = jira_simulator.sim
    key = jira_client.create_issue(new_fields()).key
    label = stable_label("plugin", 201198)
    sim.edit_by_hand(key, labels=["triage"])  # someone removed our label
    jira_client.edit_issue(
        key,
        {"summary": "Apache: 3 hosts", "description": adf.Document().bullet_list(["a", "b", "c"]).as_dict()},
        update={"labels": [{"add": label}]},
    )
    stored = sim.issue(key)
    assert (stored.summary, stored.labels) == ("Apache: 3 hosts", ("triage", label))
    assert stored.description_text == "- a\n- b\n- c"
    assert sim.requests[-1].method == "PUT" and sim.requests[-1].body["update"] == {
        "labels": [{"add": label}]
    }


def test_edit_with_nothing_to_change_sends_nothing(jira_client, jira_simulator):
    jira_client.edit_issue("SEC-1", None)
    assert jira_simulator.sim.requests == []


def test_edit_without_edit_issues_names_the_permission(jira_client, jira_simulator):
    key = jira_client.create_issue(new_fields()).key
    viewer = jira_client_for(jira_simulator.url, email=JIRA_VIEWER_EMAIL, api_token=JIRA_VIEWER_API_TOKEN)
    error = fails(viewer.edit_issue, key, {"summary": "x"})
    assert error.kind == "forbidden" and "“Edit Issues” permission on SEC-1." in error.message


def test_an_issue_deleted_by_hand_is_not_found(jira_client, jira_simulator):
    key = jira_client.create_issue(new_fields()).key
    jira_simulator.sim.delete_by_hand(key)
    jira_simulator.sim.clear_requests()
    for call in (jira_client.issue, jira_client.transitions):
        error = fails(call, key)
        assert (error.kind, error.permanent) == ("not_found", True)
        assert error.message == (
            "Jira issue SEC-1 was not found: it may have been deleted or moved to another project, "
            "or this account cannot see it."
        )
    assert len(jira_simulator.sim.requests) == 2


def test_transition_to_done_then_comment_separately(jira_client, jira_simulator):
    sim = jira_simulator.sim
    key = jira_client.create_issue(new_fields()).key
    transitions = jira_client.transitions(key)
    assert [(t.id, t.name, t.to_status, t.to_category) for t in transitions] == [
        ("11", "Start Progress", "In Progress", "indeterminate"),
        ("21", "Done", "Done", "done"),
    ]
    done = pick_transition(transitions, category="done")
    sim.clear_requests()
    jira_client.transition(key, done.id, comment=adf.from_text("Fixed in Tenable on 2025-02-01."))
    assert calls(sim) == [
        f"POST /rest/api/3/issue/{key}/transitions",
        f"POST /rest/api/3/issue/{key}/comment",
    ]
    assert sim.requests[0].body == {"transition": {"id": "21"}}  # the comment is never inside the transition
    stored = sim.issue(key)
    assert (stored.status, stored.resolution, stored.comments) == (
        "Done",
        "Done",
        ("Fixed in Tenable on 2025-02-01.",),
    )
    assert jira_client.issue(key).done


def test_reopen_after_a_hand_close(jira_client, jira_simulator):
    sim = jira_simulator.sim
    key = jira_client.create_issue(new_fields()).key
    sim.transition_by_hand(key, "Done", comment="closed by hand")
    assert jira_client.issue(key).done
    reopen = pick_transition(jira_client.transitions(key), status="to do")
    assert reopen.name == "Reopen"
    jira_client.transition(key, reopen.id, comment=adf.from_text("Still open in Tenable."))
    stored = sim.issue(key)
    assert (stored.status, stored.resolution) == ("To Do", None)
    assert stored.comments == ("closed by hand", "Still open in Tenable.")


def test_a_transition_not_available_is_a_bad_request(jira_client, jira_simulator):
    key = jira_client.create_issue(new_fields()).key
    error = fails(jira_client.transition, key, "41")
    assert error.kind == "bad_request"
    assert (
        error.message
        == "Jira refused the request (HTTP 400): Transition id '41' is not valid for this issue."
    )


def test_pick_transition_prefers_the_status_name():
    options = [Transition("21", "Done", "Done", "done"), Transition("51", "Close", "Closed", "done")]
    assert pick_transition(options, status="Closed", category="done").id == "51"
    assert pick_transition(options, status="Missing", category="done").id == "21"
    assert pick_transition(options, status="Missing") is None


def test_add_comment_returns_its_id(jira_client, jira_simulator):
    key = jira_client.create_issue(new_fields()).key
    comment_id = jira_client.add_comment(key, adf.from_text("Host 10.0.0.5 is gone (asset deleted)."))
    assert comment_id == "10000"
    assert jira_simulator.sim.issue(key).comments == ("Host 10.0.0.5 is gone (asset deleted).",)


def test_a_comment_that_is_not_adf_is_refused(jira_client):
    key = jira_client.create_issue(new_fields()).key
    error = fails(jira_client.add_comment, key, {"text": "wiki *markup*"})
    assert error.message == (
        "Jira refused the request (HTTP 400): comment: Operation value must be an Atlassian Document "
        "(see the Atlassian Document Format)."
    )


# -- search ----------------------------------------------------------------------------------------


def test_find_by_label_uses_the_enhanced_search(jira_client, jira_simulator):
    label = stable_label("plugin", 201198)
    key = jira_client.create_issue(new_fields()).key
    jira_simulator.sim.seed_issue("SEC", "someone else's", labels=["other"])
    jira_simulator.sim.clear_requests()
    [issue] = jira_client.find_by_label("SEC", label)
    assert (issue.key, issue.labels, issue.status_category) == (key, (label,), "new")
    [request] = jira_simulator.sim.requests
    assert (request.method, request.path) == ("POST", "/rest/api/3/search/jql")
    assert request.body == {
        "jql": f'project = "SEC" AND labels = "{label}" ORDER BY created ASC',
        "fields": list(SEARCH_FIELDS),
        "maxResults": 100,
    }


def test_search_follows_next_page_tokens(jira_simulator):
    sim = jira_simulator.sim
    for n in range(250):
        sim.seed_issue("SEC", f"finding {n}", labels=["tc-bulk"], status="Done" if n % 5 == 0 else "To Do")
    client = jira_client_for(jira_simulator.url)
    found = client.search(
        'project = SEC AND labels = "tc-bulk" AND statusCategory != Done ORDER BY created ASC'
    )
    assert len(found) == 200 and len({i.key for i in found}) == 200
    assert found[0].summary == "finding 1" and found[-1].summary == "finding 249"
    bodies = [r.body for r in sim.requests]
    assert len(bodies) == 2 and "nextPageToken" not in bodies[0] and bodies[1]["nextPageToken"]


def test_search_copes_with_pages_smaller_than_asked(jira_simulator):
    sim = JiraSimulator(page_cap=7)
    server = sim.serve()
    try:
        for n in range(20):
            sim.seed_issue("SEC", f"finding {n}", labels=["tc-x"])
        client = jira_client_for(server.url)
        assert len(client.search('labels = "tc-x"', page_size=500)) == 20
        assert len(sim.requests) == 3
        assert [i.summary for i in client.search('labels = "tc-x"', limit=9)] == [
            f"finding {n}" for n in range(19, 10, -1)
        ]
    finally:
        server.stop()


def test_a_search_token_that_repeats_is_an_unexpected_response():
    class Looping(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(
                {"issues": [{"id": "1", "key": "SEC-1"}], "nextPageToken": "same", "isLast": False}
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    with _serve(Looping) as url:
        error = fails(jira_client_for(url).search, 'labels = "x"')
    assert (error.kind, error.message) == ("bad_response", "Jira sent an unexpected response (HTTP 200).")


def test_an_unbounded_or_wrong_query_is_refused_with_jiras_reason(jira_client):
    assert fails(jira_client.search, "ORDER BY created").message == (
        "Jira refused the request (HTTP 400): Unbounded JQL queries are not allowed here. "
        "Please add a search restriction to your query."
    )
    assert fails(jira_client.search, "project = NOPE").message == (
        "Jira refused the request (HTTP 400): The value 'NOPE' does not exist for the field 'project'."
    )


def test_jql_quote_escapes_quotes_and_backslashes():
    assert jql_quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c d"'


def test_stable_label_is_deterministic_and_label_safe():
    label = stable_label("asset-uuid", 19506, "tcp", 443)
    assert (
        label == stable_label("asset-uuid", 19506, "tcp", 443) != stable_label("asset-uuid", 19506, "tcp", 80)
    )
    assert label.startswith("tc-") and len(label) == 27 and " " not in label


def test_summary_text_is_one_line_within_the_limit():
    assert summary_text("Apache\n  httpd\r\n") == "Apache httpd"
    long = summary_text("x" * 400)
    assert len(long) == 255 and long.endswith("…")


# -- the stable key: a lost create is found, never duplicated --------------------------------------


def test_a_create_whose_answer_is_lost_is_not_repeated_and_is_found_by_its_label(jira_client, jira_simulator):
    sim = jira_simulator.sim
    sim.set_fault("lost_response", path="/rest/api/3/issue", method="POST", times=1)
    fields = new_fields()
    error = fails(jira_client.create_issue, fields)
    assert (error.kind, error.permanent, error.outcome_unknown) == ("connection", False, True)
    assert error.message == (
        f"Cannot connect to 127.0.0.1:{jira_simulator.port}: the connection was closed before Jira answered. "
        "The request reached Jira, which may have applied it; it was not repeated."
    )
    assert calls(sim) == ["POST /rest/api/3/issue"]  # exactly one attempt
    # What the caller does next: look by the stable label before creating again.
    found = jira_client.find_by_label("SEC", fields["labels"][0])
    assert [i.key for i in found] == ["SEC-1"]
    assert len(sim.issues) == 1


def test_a_create_that_times_out_is_not_repeated(jira_simulator, fake_time):
    sim = jira_simulator.sim
    sim.set_fault(
        "lost_response", path="/rest/api/3/issue", method="POST", times=1, mode="stall", seconds=1.0
    )
    client = jira_client_for(jira_simulator.url, fake_time, timeout=(2.0, 0.3))
    error = fails(client.create_issue, new_fields())
    assert (error.kind, error.outcome_unknown) == ("timeout", True)
    assert error.message.startswith("Jira did not respond within 0.3 seconds. The request reached Jira")
    assert calls(sim) == ["POST /rest/api/3/issue"] and fake_time.sleeps == []
    assert len(sim.issues) == 1


def test_a_read_whose_answer_is_lost_is_retried(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("lost_response", path="/myself", times=1)
    assert jira_client.myself().email == JIRA_EMAIL
    assert calls(jira_simulator.sim) == ["GET /rest/api/3/myself"] * 2


def test_search_after_a_lost_create_may_lag_until_jira_catches_up(jira_client, jira_simulator):
    sim = jira_simulator.sim
    sim.set_fault("stale_search")
    sim.set_fault("lost_response", path="/rest/api/3/issue", method="POST", times=1)
    label = new_fields()["labels"][0]
    assert fails(jira_client.create_issue, new_fields()).outcome_unknown
    assert jira_client.find_by_label("SEC", label) == []  # eventually consistent: not visible yet
    sim.clear_faults("stale_search")
    assert [i.key for i in jira_client.find_by_label("SEC", label)] == ["SEC-1"]


# -- 401, bad credentials, site URL, redirects -----------------------------------------------------


def test_a_wrong_token_fails_once_with_the_settings_path(jira_simulator):
    client = jira_client_for(jira_simulator.url, api_token="wrong-token")
    error = fails(client.myself)
    assert (error.kind, error.status, error.permanent) == ("auth", 401, True)
    assert error.message == say.AUTH
    assert "Atlassian account settings › Security › API tokens" in error.message
    assert len(jira_simulator.sim.requests) == 1 and jira_simulator.sim.requests[0].auth == "invalid"


def test_a_token_revoked_mid_run_stops_at_once(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("unauthorized", path="/issue")
    error = fails(jira_client.create_issue, new_fields())
    assert (error.kind, error.permanent, error.outcome_unknown) == ("auth", True, False)
    assert len(jira_simulator.sim.requests) == 1


@pytest.mark.parametrize(
    ("email", "token", "message"),
    [
        ("", "t", say.CREDENTIALS_MISSING),
        ("a@example.com", "  ", say.CREDENTIALS_MISSING),
        ("a@example.com", "line\nbreak", say.AUTH),
        ("a b@example.com", "token", say.AUTH),
    ],
)
def test_credentials_that_cannot_work_fail_without_a_request(jira_simulator, email, token, message):
    client = jira_client_for(jira_simulator.url, email=email, api_token=token)
    error = fails(client.myself)
    assert (error.kind, error.message) == ("auth", message)
    assert jira_simulator.sim.requests == []


def test_a_non_ascii_email_is_sent_as_utf8(jira_simulator):
    jira_simulator.sim.add_user("jürgen@example.com", "t0ken")
    assert jira_client_for(jira_simulator.url, email="jürgen@example.com", api_token="t0ken").myself().email


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://acme.atlassian.net", "https://acme.atlassian.net"),
        (" https://acme.atlassian.net/ ", "https://acme.atlassian.net"),
        ("https://acme.atlassian.net/jira/software/projects/SEC/boards/1", "https://acme.atlassian.net"),
        ("HTTPS://acme.atlassian.net:8443/browse/SEC-1", "https://acme.atlassian.net:8443"),
    ],
)
def test_site_url_is_reduced_to_the_site(given, origin):
    assert site_origin(given) == (origin, True)


@pytest.mark.parametrize(
    "given",
    [
        "",
        "acme.atlassian.net",
        "ftp://acme.atlassian.net",
        "https://me:pw@acme.atlassian.net",
        "https://a b.net",
    ],
)
def test_an_unusable_site_url_fails_without_a_request(given):
    error = fails(JiraClient(given, "a@example.com", "t").myself)
    assert (error.kind, error.permanent) == ("site_url", True)
    assert error.message == say.SITE_URL.format(url=given.strip())


def test_a_redirect_is_not_followed_so_the_token_stays_home(jira_simulator):
    elsewhere = socket.socket()
    elsewhere.bind(("127.0.0.1", 0))
    elsewhere.listen(1)
    elsewhere.settimeout(0.2)
    port = elsewhere.getsockname()[1]
    jira_simulator.sim.set_fault("redirect", location=f"http://127.0.0.1:{port}/rest/api/3/myself?steal=1")
    try:
        error = fails(jira_client_for(jira_simulator.url).myself)
        with pytest.raises(TimeoutError):
            elsewhere.accept()  # nobody ever connected there
    finally:
        elsewhere.close()
    assert (error.kind, error.status, error.permanent) == ("redirect", 302, True)
    assert error.message == (
        f"Jira answered with a redirect (HTTP 302) to http://127.0.0.1:{port}; it was not followed, "
        "so the API token stayed with 127.0.0.1. Check the site URL."
    )


def test_an_html_page_instead_of_json_is_an_unexpected_response(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("garbage")
    error = fails(jira_client.myself)
    assert (error.kind, error.message) == ("bad_response", "Jira sent an unexpected response (HTTP 200).")


def test_a_403_outside_a_project_asks_for_site_access(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("forbidden", path="/myself")
    error = fails(jira_client.myself)
    assert (error.kind, error.message) == ("forbidden", say.FORBIDDEN_SITE)
    jira_simulator.sim.set_fault("forbidden", path="/search/jql")
    assert "lacks the “Browse Projects” permission." in fails(jira_client.search, "project = SEC").message


def test_client_errors_are_never_retried(jira_client, jira_simulator, fake_time):
    for status_fault in ("forbidden", "not_found"):
        jira_simulator.sim.set_fault(status_fault, times=1)
        assert fails(jira_client.myself).permanent
    assert len(jira_simulator.sim.requests) == 2 and fake_time.sleeps == []


# -- 429 and 5xx -----------------------------------------------------------------------------------


def test_429_then_success_waits_at_least_retry_after(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault("rate_limit", retry_after="30", times=1)
    assert jira_client.myself().email == JIRA_EMAIL
    assert fake_time.sleeps == [30.0]
    assert calls(jira_simulator.sim) == ["GET /rest/api/3/myself"] * 2


def test_429_on_create_is_retried_because_jira_did_nothing(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault(
        "rate_limit", retry_after="5", path="/rest/api/3/issue", method="POST", times=1
    )
    assert jira_client.create_issue(new_fields()).key == "SEC-1"
    assert fake_time.sleeps == [5.0]
    assert calls(jira_simulator.sim) == ["POST /rest/api/3/issue"] * 2 and len(jira_simulator.sim.issues) == 1


def test_persistent_429_stops_at_the_budget_and_reports_retry_after(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault("rate_limit", retry_after="30")
    error = fails(jira_client.search, 'labels = "x"')
    assert (error.kind, error.status, error.retry_after, error.permanent) == (
        "rate_limited",
        429,
        30.0,
        False,
    )
    assert error.message == "Jira is rate-limiting this account; retry after 30 seconds."
    assert fake_time.sleeps == [30.0, 30.0]  # a third wait would pass the 60 s budget
    assert len(jira_simulator.sim.requests) == 3


def test_429_without_retry_after_backs_off(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault("rate_limit", retry_after=None, times=1)
    assert jira_client.myself()
    assert len(fake_time.sleeps) == 1 and 0.5 <= fake_time.sleeps[0] <= 0.625


def test_transient_503_is_retried_for_reads(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault("flap", status=503, times=2)
    assert jira_client.project("SEC").key == "SEC"
    assert len(jira_simulator.sim.requests) == 3 and len(fake_time.sleeps) == 2


def test_a_503_on_create_is_not_repeated(jira_client, jira_simulator, fake_time):
    jira_simulator.sim.set_fault("flap", status=503, path="/rest/api/3/issue", method="POST", times=5)
    error = fails(jira_client.create_issue, new_fields())
    assert (error.kind, error.status, error.outcome_unknown, error.permanent) == ("server", 503, True, False)
    assert error.message == (
        "Jira answered with a server error (HTTP 503); this is usually temporary — try again in a few "
        "minutes. The request reached Jira, which may have applied it; it was not repeated."
    )
    assert len(jira_simulator.sim.requests) == 1 and fake_time.sleeps == []


def test_a_503_on_edit_is_retried_since_an_edit_is_idempotent(jira_client, jira_simulator):
    key = jira_client.create_issue(new_fields()).key
    jira_simulator.sim.set_fault("flap", status=503, method="PUT", times=1)
    jira_client.edit_issue(key, {"summary": "edited"})
    assert jira_simulator.sim.issue(key).summary == "edited"


@pytest.mark.parametrize("status", [502, 503, 504])
def test_persistent_5xx_gives_up_after_bounded_retries(jira_client, jira_simulator, status):
    jira_simulator.sim.set_fault("flap", status=status, times=100)
    error = fails(jira_client.myself)
    assert (error.kind, error.status, error.outcome_unknown) == ("server", status, False)
    assert len(jira_simulator.sim.requests) == 4  # one try + max_retries


def test_500_is_not_retried(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("flap", status=500, times=5)
    assert fails(jira_client.myself).kind == "server" and len(jira_simulator.sim.requests) == 1


def test_retry_budget_bounds_total_waiting(jira_simulator, fake_time):
    jira_simulator.sim.set_fault("flap", status=503, times=100)
    client = jira_client_for(jira_simulator.url, fake_time, budget=1.0, max_retries=5)
    fails(client.myself)
    assert sum(fake_time.sleeps) <= 1.0
    assert len(jira_simulator.sim.requests) == len(fake_time.sleeps) + 1


# -- network ---------------------------------------------------------------------------------------


def test_dns_failure_is_fast_and_clear(monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    started = time.monotonic()
    error = fails(JiraClient("https://acme.atlassian.invalid", "a@example.com", "t").myself)
    assert time.monotonic() - started < 5
    assert (error.kind, error.permanent) == ("dns", False)
    assert error.message == "Cannot resolve acme.atlassian.invalid: check the site URL and this server's DNS."


def test_an_untrusted_certificate_fails_closed():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        error = fails(JiraClient(url, "a@example.com", "t", timeout=(2, 2)).create_issue, new_fields())
    finally:
        server.shutdown()
        server.server_close()
    assert (error.kind, error.permanent, error.outcome_unknown) == ("tls", True, False)
    assert error.message.startswith("TLS verification failed for 127.0.0.1: the certificate is not trusted.")


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts; nobody ever answers
    try:
        client = JiraClient(
            f"http://127.0.0.1:{listener.getsockname()[1]}", "a@example.com", "t", timeout=(1.0, 0.5)
        )
        started = time.monotonic()
        error = fails(client.myself)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert elapsed < 0.5 + 2
    assert (error.kind, error.permanent, error.outcome_unknown) == ("timeout", False, False)
    assert error.message == "Jira did not respond within 0.5 seconds."


def test_a_refused_connection_is_retried_then_reported(fake_time):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    error = fails(jira_client_for(f"http://127.0.0.1:{port}", fake_time).create_issue, new_fields())
    assert (error.kind, error.permanent, error.outcome_unknown) == ("connection", False, False)
    assert error.message == f"Cannot connect to 127.0.0.1:{port}: the connection was refused."
    assert len(fake_time.sleeps) == 3  # nothing was sent, so even a create may be tried again


def test_every_call_sets_an_explicit_timeout(jira_client, jira_simulator, monkeypatch):
    seen = []
    original = jira_client._session.request

    def spy(method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        assert kwargs.get("allow_redirects") is False
        return original(method, url, **kwargs)

    monkeypatch.setattr(jira_client._session, "request", spy)
    key = jira_client.create_issue(new_fields()).key
    jira_client.test_connection("SEC")
    jira_client.issue_types("SEC")
    jira_client.edit_issue(key, {"summary": "y"})
    jira_client.issue(key)
    jira_client.transitions(key)
    jira_client.transition(key, "21", comment=adf.from_text("done"))
    jira_client.add_comment(key, adf.from_text("again"))
    jira_client.search('labels = "x"')
    assert len(seen) == 12 and set(seen) == {(2.0, 5.0)}


def test_one_request_stream_per_client(jira_client, jira_simulator):
    jira_simulator.sim.set_fault("slow", seconds=0.1)
    threads = [threading.Thread(target=jira_client.myself) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(jira_simulator.sim.requests) == 4
    assert jira_simulator.sim.peak_requests(JIRA_EMAIL) == 1


# -- secrets ---------------------------------------------------------------------------------------


def test_the_token_never_reaches_messages_reprs_or_logs(jira_simulator, caplog):
    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(f"{JIRA_EMAIL}:{SENTINEL_TOKEN}".encode()).decode()
    client = jira_client_for(jira_simulator.url, api_token=SENTINEL_TOKEN)
    errors = [fails(client.myself), fails(client.create_issue, new_fields())]
    text = " ".join([caplog.text, repr(client), *(repr(e) for e in errors), *(str(e) for e in errors)])
    assert errors[0].kind == "auth"
    assert SENTINEL_TOKEN not in text and encoded not in text
    assert all(SENTINEL_TOKEN not in repr(r) for r in jira_simulator.sim.requests)


def test_a_token_echoed_in_an_error_body_is_redacted():
    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(
                {"errorMessages": [f"Bad header {self.headers['Authorization']}"], "errors": {}}
            )
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    with _serve(Echo) as url:
        error = fails(jira_client_for(url, api_token=SENTINEL_TOKEN).myself)
    assert error.message == "Jira refused the request (HTTP 400): Bad header Basic [redacted]."


def test_the_error_pickles_for_celery():
    error = JiraError("m", kind="server", permanent=False, status=503, retry_after=2.0, outcome_unknown=True)
    again = pickle.loads(pickle.dumps(error))
    assert repr(again) == repr(error)


def test_the_client_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys, integrations.connectors.jira_cloud.client, integrations.connectors.jira_cloud.simulator; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


class _serve:
    """A one-off loopback HTTP server with `handler`, as a context manager giving its URL."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = HTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
