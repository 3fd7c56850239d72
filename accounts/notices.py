"""In-app notices for admins (and e-mail when EMAIL_HOST is set): each admin sees a notice once, on their next page.

Background work (the scheduled connection check) has no request to put a message into, so it leaves a `Notice`
per admin; `NoticeMiddleware` turns each unseen one into a Django message on the admin's next full page view and
marks it seen, so it is shown exactly once however many tabs ask at the same moment.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from .choices import Role
from .models import Notice, User

log = logging.getLogger(__name__)

LEVELS = {
    Notice.Level.INFO: messages.INFO,
    Notice.Level.WARNING: messages.WARNING,
    Notice.Level.ERROR: messages.ERROR,
}
# Paths whose answers are not pages with a messages area.
NOT_PAGES = ("/api/", "/static/", "/healthz", "/setup/")


def admins():
    return (
        User.objects.filter(is_active=True).filter(Q(role=Role.ADMIN) | Q(is_superuser=True)).order_by("pk")
    )


def notify_admins(
    topic: str,
    text: str,
    *,
    level: str = Notice.Level.WARNING,
    link: str = "",
    link_text: str = "",
    subject: str = "",
) -> int:
    """Leave a notice for every admin (replacing an unseen one on the same topic) and, when EMAIL_HOST is set,
    e-mail the admins who have an address. Returns how many admins were told."""
    people = list(admins())
    with transaction.atomic():
        Notice.objects.unseen().filter(topic=topic, user__in=people).delete()
        Notice.objects.bulk_create(
            Notice(user=user, topic=topic, level=level, text=text[:1000], link=link, link_text=link_text)
            for user in people
        )
    addresses = [user.email for user in people if user.email]
    if settings.EMAIL_HOST and addresses:
        body = f"{text}\n\n{settings.SITE_URL}{link}\n" if link else f"{text}\n"
        try:
            send_mail(f"[Tenable Console] {subject or text[:80]}", body, None, addresses)
        except Exception:  # SMTP trouble must not lose the in-app notice (already saved) or fail the caller
            log.exception("Could not e-mail the admins about %s", topic)
    return len(people)


def withdraw(topic: str) -> int:
    """Delete the unseen notices on a topic that no longer applies (e.g. the connection works again)."""
    deleted, _ = Notice.objects.unseen().filter(topic=topic).delete()
    return deleted


def show_unseen(request: HttpRequest) -> int:
    """Put the user's unseen notices into this request's messages and mark them seen (each one only once)."""
    shown = 0
    for notice in Notice.objects.unseen().filter(user=request.user):
        # A conditional update claims the notice: two requests at the same moment cannot both show it.
        if not Notice.objects.filter(pk=notice.pk, seen_at__isnull=True).update(seen_at=timezone.now()):
            continue
        text = (
            format_html('{} <a href="{}">{}</a>', notice.text, notice.link, notice.link_text or "Open")
            if notice.link
            else notice.text
        )
        messages.add_message(request, LEVELS.get(notice.level, messages.WARNING), text)
        shown += 1
    return shown


class NoticeMiddleware:
    """Shows a signed-in user's unseen notices on their next full page (never in an htmx fragment or the API)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            request.method == "GET"
            and user is not None
            and user.is_authenticated
            and not getattr(request, "htmx", False)
            and not request.path.startswith(NOT_PAGES)
        ):
            show_unseen(request)
        return self.get_response(request)
