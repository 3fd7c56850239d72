"""Sign-in throttling with django-axes: failures and lockouts go to the audit log, the lockout page, unlocking.

Axes counts failures per username and per client address (`AXES_LOCKOUT_PARAMETERS`); both are locked for
`AXES_COOLOFF_TIME` after `AXES_FAILURE_LIMIT` failures. Unknown usernames are counted the same way, so the
answer never tells whether an account exists.
"""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db.models import Sum
from django.dispatch import receiver
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .models import record

USERNAME_MAX = 150


def cooloff() -> timedelta:
    return settings.AXES_COOLOFF_TIME


def _username(credentials: dict | None) -> str:
    return str((credentials or {}).get("username") or "")[:USERNAME_MAX]


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    """Every failed sign-in (wrong password, unknown user, or any attempt while locked out) is audited."""
    username = _username(credentials)
    user = get_user_model().objects.filter(username=username).first() if username else None
    record(None, "login.failed", user, request, username=username)


@receiver(user_locked_out, dispatch_uid="accounts.audit_locked_out")
def audit_locked_out(
    sender, request=None, username: str | None = None, ip_address: str | None = None, **kwargs
):
    """The moment a username or address reaches the limit; later attempts during the lockout are failures."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    user = get_user_model().objects.filter(username=username).first() if username else None
    record(
        None,
        "login.locked_out",
        user,
        request,
        username=(username or "")[:USERNAME_MAX],
        minutes=int(cooloff().total_seconds() // 60),
    )


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The same page whether or not the account exists (AXES_LOCKOUT_CALLABLE)."""
    context = {"minutes": int(cooloff().total_seconds() // 60)}
    return render(request, "registration/locked_out.html", context, status=429)


def _active_attempts():
    return AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - cooloff())


def _locked(field: str) -> set[str]:
    rows = (
        _active_attempts()
        .values(field)
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .values_list(field, flat=True)
    )
    return {value for value in rows if value}


def locked_usernames() -> set[str]:
    """Usernames that cannot sign in right now because of repeated failures."""
    return _locked("username")


def locked_addresses() -> list[str]:
    """Client addresses that cannot sign in right now because of repeated failures."""
    return sorted(_locked("ip_address"))


def unlock_username(username: str) -> int:
    """Forget the failures of this username (from every address); returns how many records went."""
    return reset(username=username)


def unlock_address(ip_address: str) -> int:
    """Forget the failures from this address (for every username)."""
    return reset(ip=ip_address)
