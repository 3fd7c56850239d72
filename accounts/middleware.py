from __future__ import annotations

import json
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpResponseBadRequest, JsonResponse, QueryDict
from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect

_PUBLIC_PREFIXES = ("/setup/", "/healthz", "/static/", "/favicon.ico")


class FirstRunMiddleware:
    """Until the first user exists, every page leads to the one-time setup page."""

    has_users = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not FirstRunMiddleware.has_users:
            if get_user_model().objects.exists():
                FirstRunMiddleware.has_users = True
            elif not request.path.startswith(_PUBLIC_PREFIXES):
                return redirect("setup")
        return self.get_response(request)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's login gate, but an anonymous htmx request gets HX-Redirect instead of a login page in a fragment."""

    def handle_no_permission(self, request, view_func):
        if getattr(request, "htmx", False):
            login_url = resolve_url(self.get_login_url(view_func))
            return HttpResponseClientRedirect(f"{login_url}?next={request.htmx.current_url_abs_path or '/'}")
        return super().handle_no_permission(request, view_func)


class SessionTimeoutMiddleware:
    """Ends a signed-in session after SESSION_IDLE_TIMEOUT seconds without a request, and SESSION_COOKIE_AGE
    seconds after sign-in however active it was (Django alone renews the age whenever the session is saved).

    The last-seen time is written at most once a minute, so ordinary requests do not all write the session.
    """

    STARTED, SEEN = "_session_started", "_session_seen"
    WRITE_EVERY = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            session = request.session
            started = session.setdefault(self.STARTED, now)
            seen = session.get(self.SEEN, now)
            if now - seen > settings.SESSION_IDLE_TIMEOUT:
                self._end(request, f"after {settings.SESSION_IDLE_TIMEOUT // 60} minutes without activity")
            elif now - started > settings.SESSION_COOKIE_AGE:
                self._end(request, f"{settings.SESSION_COOKIE_AGE // 3600} hours after signing in")
            elif now - seen >= self.WRITE_EVERY or self.SEEN not in session:
                session[self.SEEN] = now
        return self.get_response(request)

    @staticmethod
    def _end(request, when: str) -> None:
        logout(request)
        messages.info(request, f"You were signed out {when}. Sign in again to continue.")


@receiver(user_logged_in, dispatch_uid="accounts.session_started")
def _session_started(sender, request, user, **kwargs) -> None:
    """The absolute timeout counts from signing in."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[SessionTimeoutMiddleware.STARTED] = now
        request.session[SessionTimeoutMiddleware.SEEN] = now


NUL_MESSAGE = (
    "The request contains a NUL character (%00), which no field here accepts. Remove it and try again."
)


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class RejectNulMiddleware:
    """Answers 400 when the path, the query string or a form/JSON body holds a NUL character.

    PostgreSQL cannot store NUL in text, so such a value reaching a query turned into a 500 (issue 12 §6). Checked
    once here rather than in every view. Multipart bodies are left alone: uploads are streamed by their view,
    and their text fields go through form validation, which refuses NUL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if "\x00" in request.path or _holds_nul(dict(request.GET.lists())):
            return True
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return False
        if request.content_type == "application/x-www-form-urlencoded":
            # Parsed from the raw body, not request.POST: that would freeze the upload handlers of a later view.
            return _holds_nul(dict(QueryDict(request.body, encoding=request.encoding).lists()))
        if request.content_type == "application/json":
            body = request.body
            if b"\\u0000" in body or b"\x00" in body:
                try:
                    return _holds_nul(json.loads(body))
                except ValueError:
                    return False  # not JSON: the view says so
        return False
