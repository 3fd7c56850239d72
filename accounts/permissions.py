"""Role gates used by every app's views."""

from __future__ import annotations

import logging
from functools import wraps

from django.core.exceptions import PermissionDenied

log = logging.getLogger("security")


def deny(request, action: str, obj=None) -> PermissionDenied:
    """Log a refused action (user, action, object) and return the exception to raise."""
    log.warning("denied user=%s action=%s object=%s", getattr(request.user, "pk", None), action, obj)
    return PermissionDenied


def admin_required(view):
    """Only admins (role admin or superuser) may pass; everyone else gets 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_admin:
            raise deny(request, view.__name__)
        return view(request, *args, **kwargs)

    return wrapper
