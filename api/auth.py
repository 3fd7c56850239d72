"""How `/api/v1/` knows who is calling: an API token (`Authorization: Bearer kdt_…`) or a browser session.

Sessions must send the CSRF token on writes, as every form in the app does; tokens need none (a browser never
attaches them on its own). Permissions come afterwards, from the same helpers the UI uses. An address that keeps
sending bad tokens gets 429 for a while (`BadTokenThrottleMiddleware`, RELIABILITY W10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from accounts.models import record
from accounts.network import client_ip

from .models import ApiToken

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKENS_PAGE = "Settings › API Tokens"


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A wrong, revoked or expired token is refused with the reason."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        token_row = ApiToken.lookup(token.strip())
        if token_row is None:
            raise AuthenticationError(
                message=f"The API token is not valid. Check KDT_TOKEN, or create a new token in {TOKENS_PAGE}."
            )
        if token_row.is_revoked:
            raise AuthenticationError(
                message=f"The API token “{token_row.name}” was revoked. Create a new one in {TOKENS_PAGE}."
            )
        if token_row.is_expired:
            raise AuthenticationError(
                message=f"The API token “{token_row.name}” expired on {token_row.expires_at:%Y-%m-%d}. "
                f"Create a new one in {TOKENS_PAGE}."
            )
        if not token_row.user.is_active:
            raise AuthenticationError(message="The API token's owner is deactivated; ask an admin.")
        token_row.touch()
        request.user = token_row.user
        request.api_token = token_row
        return token_row.user


class SessionAuth(APIKeyCookie):
    """The signed-in browser session; unsafe methods also need Django's CSRF token (X-CSRFToken header)."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS:
            self._check_csrf(request)
        return user

    @staticmethod
    def _check_csrf(request: HttpRequest) -> None:
        # Read the body first: the CSRF check may parse a form from the stream, and the API still needs the body.
        request.body  # noqa: B018
        if check_csrf(request) is not None:
            raise HttpError(
                403,
                "CSRF check failed: send the page's CSRF token in the X-CSRFToken header, "
                "or use an API token (Authorization: Bearer …).",
            )


def anonymous_message() -> str:
    """What an unauthenticated caller is told."""
    return (
        "Authentication required: send an API token as `Authorization: Bearer <token>` "
        f"(create one in {TOKENS_PAGE}), or sign in."
    )


class BadTokenThrottleMiddleware:
    """After API_TOKEN_FAILURE_LIMIT bad tokens (answers 401) from one address within the cool-off, every request
    from it that carries a token gets 429 until the window ends, so tokens cannot be guessed at speed.

    Counts live in Django's cache: per process with the default local-memory cache, shared with a shared one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.headers.get("Authorization", "").lower().startswith("bearer"):
            return self.get_response(request)
        key = f"api-bad-tokens:{client_ip(request)}"
        window = int(settings.AXES_COOLOFF_TIME.total_seconds())
        if (cache.get(key) or 0) >= settings.API_TOKEN_FAILURE_LIMIT:
            minutes = max(1, window // 60)
            return JsonResponse(
                {
                    "detail": f"Too many invalid API tokens from this address; try again within {minutes} "
                    f"minutes. Check KDT_TOKEN, or create a new token in {TOKENS_PAGE}."
                },
                status=429,
                headers={"Retry-After": str(window)},
            )
        response = self.get_response(request)
        if response.status_code == 401:
            cache.add(key, 0, timeout=window)
            try:
                failures = cache.incr(key)
            except ValueError:  # expired between add and incr
                failures = 1
                cache.set(key, failures, timeout=window)
            if failures == settings.API_TOKEN_FAILURE_LIMIT:
                record(None, "api.token_throttled", None, request, failures=failures)
        return response
