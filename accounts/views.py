from __future__ import annotations

from celery import current_app
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.sessions.models import Session
from django.core.paginator import Paginator
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_guid import get_guid

from .forms import SetupForm, UserCreateForm, UserEditForm
from .middleware import FirstRunMiddleware
from .models import AuditEvent, User, record
from .permissions import admin_required
from .throttling import locked_addresses, locked_usernames, unlock_address, unlock_username


@login_not_required
@never_cache
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """One-time page that creates the first admin; gone as soon as any user exists."""
    if User.objects.exists():
        raise Http404("Setup is already complete.")
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        FirstRunMiddleware.has_users = True
        record(user, "user.created", user, request, role=user.role, via="first-run setup")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, "Welcome! Your admin account is ready. Next: connect Tenable.io under Integrations."
        )
        return redirect("dashboard")
    return render(request, "accounts/setup.html", {"form": form})


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that name no icon (JSON, the admin): send them the logo."""
    return HttpResponsePermanentRedirect(static("img/logo.svg"))


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Database and broker reachability as JSON, for load balancers and `make run` smoke checks."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        return "unreachable"


def _check_broker() -> str:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return "ok"
    except Exception:
        return "unreachable"


@admin_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    users = list(User.objects.order_by("-is_active", "username"))
    locked = locked_usernames()
    for user in users:
        user.is_locked_out = user.username in locked
    return render(request, "accounts/users.html", {"users": users, "locked_addresses": locked_addresses()})


@admin_required
@require_POST
def user_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    """Lift a sign-in lockout of this user (failures from every address are forgotten)."""
    user = get_object_or_404(User, pk=pk)
    unlock_username(user.username)
    record(request.user, "user.unlocked", user, request)
    messages.success(request, f"{user.username} can sign in again.")
    return redirect("users")


@admin_required
@require_POST
def address_unlock(request: HttpRequest) -> HttpResponse:
    """Lift a sign-in lockout of one client address (e.g. an office behind one NAT address)."""
    address = request.POST.get("ip_address", "")
    if address in locked_addresses():
        unlock_address(address)
        record(request.user, "address.unlocked", None, request, address=address)
        messages.success(request, f"Sign-ins from {address} are allowed again.")
    return redirect("users")


@admin_required
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        record(request.user, "user.created", user, request, role=user.role)
        messages.success(request, f"User {user.username} created. Share the password with them securely.")
        return redirect("users")
    return render(request, "accounts/user_form.html", {"form": form, "title": "Add user"})


@admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = UserEditForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        if user == request.user and (
            not form.cleaned_data["is_active"] or form.cleaned_data["role"] != "admin"
        ):
            form.add_error(None, "You cannot demote or deactivate yourself; ask another admin.")
        else:
            changed = form.changed_data
            form.save()
            if "is_active" in changed and not user.is_active:
                _end_sessions(user)
            record(request.user, "user.changed", user, request, fields=changed)
            messages.success(request, f"User {user.username} saved.")
            return redirect("users")
    return render(
        request, "accounts/user_form.html", {"form": form, "title": f"Edit {user.username}", "edited": user}
    )


def _end_sessions(user: User) -> None:
    """A deactivated user is signed out everywhere at once."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


@admin_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.select_related("actor")
    action = request.GET.get("action", "")
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {"page": page, "action": action})


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page (handler500): no detail, only the request id that the server log carries too (W9).

    Rendered without the request's context, like Django's own, so a failing database or session cannot
    break the error page itself.
    """
    template = "partials/_server_error.html" if request.headers.get("HX-Request") else "500.html"
    html = loader.get_template(template).render({"request_id": get_guid() or ""})
    return HttpResponseServerError(html)
