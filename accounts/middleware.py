from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect

_PUBLIC_PREFIXES = ("/setup/", "/healthz", "/static/")


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
