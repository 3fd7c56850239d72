"""Issue 20: never two tickets for one subject, never a tight loop. A crash between the Jira create and our
commit, a create whose answer is lost (`lost_response`), search that lags (`stale_search`), a database that lost
its links; hand-closed tickets (reopen or comment); rate limits (429 + Retry-After, bounded); permissions named;
the per-run cap; one request stream per connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.connectors import TicketingError
from integrations.connectors.jira_cloud.connector import JiraCloudConnector
from tests.jira_fixtures import JIRA_VIEWER_API_TOKEN, JIRA_VIEWER_EMAIL
from tests.tickets.conftest import (
    APACHE,
    DB1,
    PING,
    TLS,
    WEB1,
    WEB2,
    make_jira,
    make_mapping,
    process,
    sync_of,
)
from tickets import services
from tickets.choices import Grouping, HandClosed, LinkState
from tickets.models import ConnectionLease, TicketLink, TicketSync

pytestmark = pytest.mark.django_db


def creates(sim) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == "/rest/api/3/issue")


class Crash(Exception):
    """The worker dies between Jira's create and our commit."""


def test_a_crash_between_create_and_commit_never_duplicates(
    project, upload, jira_simulator, fake_clock, monkeypatch
):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    real_create = JiraCloudConnector.create

    def create_then_die(self, *args, **kwargs):
        real_create(self, *args, **kwargs)  # Jira has the ticket …
        raise Crash  # … and we never record it

    monkeypatch.setattr(JiraCloudConnector, "create", create_then_die)
    run = upload({**WEB1, "items": [APACHE]})
    sync = sync_of(run)
    with pytest.raises(Crash):
        process(sync)
    assert len(sim.issues) == 1
    [link] = TicketLink.objects.all()
    assert (link.state, link.issue_key) == (LinkState.CREATING, "")
    assert link.create_sent_at is not None  # committed before the POST went out

    # The worker is gone: its claim lapses, the sweeper puts the row back, a new worker runs it.
    monkeypatch.setattr(JiraCloudConnector, "create", real_create)
    TicketSync.objects.filter(pk=sync.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    ConnectionLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    services.sweep()
    sync = process(sync)
    assert sync.status == "done", sync.error
    assert (sync.created, sync.adopted) == (0, 1)
    [issue] = sim.issues
    link.refresh_from_db()
    assert (link.state, link.issue_key) == (LinkState.OPEN, issue.key)
    assert creates(sim) == 1


def test_a_lost_answer_waits_for_search_then_adopts_the_ticket(
    project, upload, jira_simulator, fake_clock, settings
):
    """`lost_response`: Jira created the issue, the answer never came. Search lags (`stale_search`), so the next
    pass within the settle time creates nothing; once search shows it, it is adopted."""
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    sim.set_fault("lost_response", path="/rest/api/3/issue", method="POST", times=1)
    sim.set_fault("stale_search")
    sync = process(sync_of(upload({**WEB1, "items": [APACHE]})))
    assert sync.status == "pending"  # a transient failure: back in the queue, not failed
    assert "may have applied it" in sync.message
    assert sync.next_attempt_at >= timezone.now() + timedelta(
        seconds=settings.TICKETS_SEARCH_SETTLE_SECONDS - 1
    )
    assert len(sim.issues) == 1

    # Next pass, search still stale and the create only just sent: no second create.
    sync = process(sync)
    assert sync.status == "pending" and creates(sim) == 1
    assert "Waiting 30 s for Jira's search to catch up" in sync.message
    assert len(sim.issues) == 1

    # Search catches up: the ticket is found by its key label and adopted.
    sim.clear_faults("stale_search")
    sync = process(sync)
    assert sync.status == "done", sync.error
    assert sync.adopted == 1 and creates(sim) == 1
    [issue] = sim.issues
    assert TicketLink.objects.get().issue_key == issue.key


def test_a_lost_database_link_is_rebuilt_by_searching(project, upload, jira_simulator, fake_clock):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    process(sync_of(upload({**WEB1, "items": [APACHE, TLS]})))
    assert len(sim.issues) == 2
    TicketLink.objects.all().delete()  # a restore from an old backup, say
    sync = process(TicketSync.objects.create(project=project, trigger="sync_now"))
    assert (sync.created, sync.adopted) == (0, 2), sync.error
    assert len(sim.issues) == 2
    assert set(TicketLink.objects.values_list("issue_key", flat=True)) == {"SEC-1", "SEC-2"}


def test_a_label_removed_by_hand_comes_back(project, upload, jira_simulator, fake_clock):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    process(sync_of(upload({**WEB1, "items": [APACHE]})))
    link = TicketLink.objects.get()
    sim.edit_by_hand(link.issue_key, labels=["triaged-by-hand"])
    process(
        sync_of(upload({**WEB1, "items": [APACHE]}, {**WEB2, "items": [APACHE]}))
    )  # hosts changed: an update
    assert link.stable_key in sim.issue(link.issue_key).labels
    assert "triaged-by-hand" in sim.issue(link.issue_key).labels


@pytest.mark.parametrize("policy", [HandClosed.REOPEN, HandClosed.COMMENT])
def test_a_ticket_closed_by_hand_while_the_finding_is_open(
    project, upload, jira_simulator, fake_clock, policy
):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url), hand_closed=policy)
    process(sync_of(upload({**WEB1, "items": [APACHE]})))
    [issue] = sim.issues
    sim.transition_by_hand(issue.key, "Done")
    process(sync_of(upload({**WEB1, "items": [APACHE]})))
    after = sim.issue(issue.key)
    still = (
        f"Tenable still reports {APACHE[4]} on web-1. Close it in Tenable Console (fix it, or mark it false "
        "positive or accepted risk) and this ticket closes on the next sync."
    )
    if policy == HandClosed.REOPEN:
        assert after.status == "To Do"
        assert after.comments == (
            f"Reopened by Tenable Console: this ticket was closed in Jira, but {still}",
        )
    else:
        assert after.status == "Done"
        assert after.comments == (still,)
        # Said once: another run with the finding still open adds nothing.
        process(sync_of(upload({**WEB1, "items": [APACHE]})))
        assert sim.issue(issue.key).comments == (still,)
    assert len(sim.issues) == 1
    assert TicketLink.objects.get().status == after.status


def test_rate_limits_are_honoured_and_bounded(project, upload, jira_simulator, fake_clock):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    # A short burst: the door waits Retry-After (on the fake clock) and the sync completes.
    sim.set_fault("rate_limit", retry_after="7", times=2)
    sync = process(sync_of(upload({**WEB1, "items": [APACHE]})))
    assert sync.status == "done", sync.error
    assert fake_clock.sleeps[:2] == [7.0, 7.0]
    assert len(sim.issues) == 1

    # A long one: the sync goes back to the queue for Retry-After, with a bounded number of requests.
    sim.set_fault("rate_limit", retry_after="40")
    sim.clear_requests()
    before = timezone.now()
    sync = process(sync_of(upload({**WEB1, "items": [APACHE]}, {**WEB2, "items": [APACHE]})))
    assert sync.status == "pending"
    assert "Jira is rate-limiting this account; retry after 40 seconds." in sync.message
    assert before + timedelta(seconds=39) <= sync.next_attempt_at <= before + timedelta(seconds=60)
    assert len(sim.requests) <= 3  # one call and its bounded retries, never a tight loop
    sim.clear_faults("rate_limit")
    sync = process(sync)
    assert sync.status == "done" and sync.updated == 1


def test_the_task_retries_after_the_wait_it_was_given(
    project, upload, jira_simulator, fake_clock, monkeypatch
):
    from celery.exceptions import Retry

    from tickets.tasks import sync_tickets

    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url))
    sim.set_fault("rate_limit", retry_after="40")
    sync = sync_of(upload({**WEB1, "items": [APACHE]}))
    seen = {}

    def retry(**kwargs):
        seen.update(kwargs)
        return Retry()

    monkeypatch.setattr(sync_tickets, "retry", retry)
    with pytest.raises(Retry):
        sync_tickets.run(sync.pk)
    assert 40 <= seen["countdown"] <= 48  # Retry-After, plus a little jitter


def test_missing_permissions_fail_the_sync_with_their_names(project, upload, jira_simulator, fake_clock):
    make_mapping(project, make_jira(jira_simulator.url, login=JIRA_VIEWER_EMAIL, token=JIRA_VIEWER_API_TOKEN))
    sync = process(sync_of(upload({**WEB1, "items": [APACHE]})))
    assert sync.status == "failed"
    assert sync.error == (
        "Jira refused the request (HTTP 403): the account lacks the “Create Issues” permission in project SEC. "
        "Ask a Jira administrator to grant it in the project's permission scheme (Project settings › Permissions)."
    )
    assert not TicketLink.objects.exclude(
        create_sent_at=None
    ).exists()  # certainly not created: nothing to find


def test_a_revoked_token_fails_at_once(project, upload, jira_simulator, fake_clock):
    make_mapping(project, make_jira(jira_simulator.url, token="revoked-token"))
    sync = process(sync_of(upload({**WEB1, "items": [APACHE]})))
    assert sync.status == "failed"
    assert sync.error.startswith("Jira rejected the e-mail address and API token (HTTP 401).")


def test_the_cap_leaves_the_rest_for_the_next_run(project, upload, jira_simulator, fake_clock):
    sim = jira_simulator.sim
    make_mapping(project, make_jira(jira_simulator.url), grouping=Grouping.FINDING, creation_cap=2)
    hosts = [{**WEB1, "items": [APACHE, TLS]}, {**WEB2, "items": [APACHE]}, {**DB1, "items": [APACHE, PING]}]
    sync = process(sync_of(upload(*hosts)))
    assert (sync.created, sync.waiting) == (2, 2)
    assert sync.message == "Created 2 of 4 tickets (cap of 2 per run); the rest follow on the next run."
    assert len(sim.issues) == 2
    assert sim.issues[0].summary.startswith("[Critical]")  # the most severe first
    sync = process(sync_of(upload(*hosts)))
    assert (sync.created, sync.waiting) == (2, 0)
    assert len(sim.issues) == 4
    sync = process(sync_of(upload(*hosts)))
    assert (sync.created, sync.status) == (0, "done")
    assert len(sim.issues) == 4


def test_one_request_stream_per_connection(project, upload, jira_simulator, fake_clock):
    """While one sync holds the connection's lease, another (any project on it) waits and sends nothing."""
    sim = jira_simulator.sim
    jira = make_jira(jira_simulator.url)
    make_mapping(project, jira)
    sync = sync_of(upload({**WEB1, "items": [APACHE]}))
    holder = services.Lease(jira.pk, "another-worker")
    assert holder.take()
    assert not services.Lease(jira.pk, "a-third").take()
    sim.clear_requests()
    assert services.process(sync.pk) == services.BUSY_RETRY
    sync.refresh_from_db()
    assert sync.status == "pending" and "Another sync is using this Jira connection" in sync.message
    assert sim.requests == []
    holder.release()
    assert process(sync).status == "done"
    assert ConnectionLease.objects.get().holder == ""  # released when done


def test_a_lapsed_lease_is_noticed_before_the_next_call(
    project, upload, jira_simulator, fake_clock, monkeypatch
):
    jira = make_jira(jira_simulator.url)
    make_mapping(project, jira)
    sync = sync_of(upload({**WEB1, "items": [APACHE]}, {**WEB2, "items": [TLS]}))
    lease = services.Lease(jira.pk, "me", seconds=0.0)
    assert lease.take()
    ConnectionLease.objects.update(holder="someone-else")
    with pytest.raises(services.LeaseLost):
        lease.renew()
    assert sync.pk


def test_errors_keep_their_fields_across_processes():
    import pickle

    error = TicketingError("lost", kind="timeout", permanent=False, retry_after=3.0, outcome_unknown=True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.kind, copy.retry_after, copy.outcome_unknown) == ("lost", "timeout", 3.0, True)
