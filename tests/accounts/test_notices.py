"""In-app notices (issue 15): left for every admin by background work, shown once on the next page they open."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from accounts import notices
from accounts.choices import Role
from accounts.models import Notice
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_every_active_admin_gets_one_and_a_newer_one_replaces_an_unseen_one(admin_user, member):
    make_user("retired", Role.ADMIN, is_active=False)
    root = make_user("root", Role.VIEWER, is_superuser=True)
    assert notices.notify_admins("topic:1", "First.") == 2
    assert notices.notify_admins("topic:1", "Second.") == 2
    assert sorted(Notice.objects.values_list("user__username", "text")) == [
        ("admin", "Second."),
        (root.username, "Second."),
    ]
    notices.notify_admins("topic:2", "Other.")
    assert notices.withdraw("topic:1") == 2 and Notice.objects.count() == 2


def test_a_notice_is_shown_once_with_its_link(client, admin_user):
    notices.notify_admins(
        "t", "Connection failing: X. <b>bad</b>", link="/integrations/", link_text="Open Integrations"
    )
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    assert (
        'Connection failing: X. &lt;b&gt;bad&lt;/b&gt; <a href="/integrations/">Open Integrations</a>' in page
    )
    assert "Connection failing" not in client.get(reverse("dashboard")).content.decode()
    assert Notice.objects.get().seen_at is not None


def test_api_calls_and_htmx_fragments_do_not_consume_a_notice(client, admin_user):
    notices.notify_admins("t", "Something happened.")
    client.force_login(admin_user)
    client.get("/api/v1/projects")
    client.get(reverse("integrations:scanners"), headers={"HX-Request": "true"})
    assert Notice.objects.unseen().count() == 1


def test_a_notice_claimed_by_another_request_is_not_shown_twice(rf, admin_user, monkeypatch):
    notices.notify_admins("t", "Once.")
    shown: list[str] = []
    monkeypatch.setattr(notices.messages, "add_message", lambda request, level, text: shown.append(text))
    request = rf.get("/")
    request.user = admin_user
    stale = list(Notice.objects.unseen())  # what two requests at the same moment both read

    class BothRead:
        def filter(self, **kwargs):
            return stale

    monkeypatch.setattr(Notice.objects, "unseen", BothRead)
    assert notices.show_unseen(request) == 1
    assert notices.show_unseen(request) == 0 and shown == ["Once."]


def test_email_goes_to_admins_with_an_address_only_when_configured(admin_user, settings):
    make_user("noaddress", Role.ADMIN)
    settings.EMAIL_HOST = ""
    notices.notify_admins("t", "Hello.")
    assert mail.outbox == []
    settings.EMAIL_HOST = "smtp.example.com"
    notices.notify_admins("t", "Hello.", subject="Greeting", link="/x/")
    assert [(m.to, m.subject) for m in mail.outbox] == [(["admin@example.com"], "[Tenable Console] Greeting")]
    assert f"{settings.SITE_URL}/x/" in mail.outbox[0].body


def test_a_mail_server_failure_keeps_the_notice(admin_user, settings, monkeypatch, caplog):
    settings.EMAIL_HOST = "smtp.example.com"

    def refuse(*args, **kwargs):
        raise OSError("Connection refused")

    monkeypatch.setattr(notices, "send_mail", refuse)
    assert notices.notify_admins("t", "Still here.") == 1
    assert Notice.objects.get().text == "Still here." and "Could not e-mail the admins" in caplog.text
