"""Response headers and cookies under production settings (RELIABILITY W8), and the 500 page (W9).

One subprocess evaluates the settings with DEBUG=false, as production does, and requests the login page, a
sign-in, an htmx fragment, a 404 and a forced exception; the assertions read what it printed.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.accounts.test_settings import _prod_env, _run
from tests.boom_urls import SENTINEL

YEAR = 365 * 24 * 60 * 60


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    var_dir = tmp_path_factory.mktemp("prod-var")
    result = _run(
        ["-m", "tests.accounts.production_probe"],
        **_prod_env(VAR_DIR=str(var_dir), DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    seen["log"] = result.stderr
    return seen


def _assert_security_headers(response: dict) -> None:
    headers = {k.lower(): v for k, v in response["headers"].items()}
    hsts = dict(
        [*part.strip().split("="), ""][:2] for part in headers["strict-transport-security"].split(";")
    )
    assert int(hsts["max-age"]) >= YEAR and "includeSubDomains" in hsts
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["permissions-policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert "unsafe-inline" not in headers.get("content-security-policy", "")


@pytest.mark.parametrize("name", ["login_page", "login", "fragment", "not_found", "server_error"])
def test_security_headers_everywhere(production, name):
    _assert_security_headers(production[name])


def test_pages_are_what_they_claim(production):
    assert production["plain_http"]["status"] == 301
    assert production["plain_http"]["headers"]["Location"].startswith("https://")
    assert production["login_page"]["status"] == 200 and "Sign in" in production["login_page"]["body"]
    assert production["login"]["status"] == 302
    fragment = production["fragment"]
    assert (
        fragment["status"] == 200 and "<html" not in fragment["body"] and "Tenable.io VM" in fragment["body"]
    )
    assert production["not_found"]["status"] == 404


def test_cookies_are_host_only_secure_and_lax(production):
    csrf = production["login_page"]["cookies"]["__Host-csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax" and csrf["path"] == "/" and not csrf["domain"]
    session = production["login"]["cookies"]["__Host-sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert session["path"] == "/" and not session["domain"]
    assert int(session["max-age"]) == 12 * 60 * 60


@pytest.mark.parametrize("name", ["server_error", "server_error_htmx"])
def test_unhandled_exception_shows_a_request_id_and_nothing_else(production, name):
    """W9: no traceback, setting names or the sentinel in the body; the same request id in the server log."""
    response = production[name]
    body = response["body"]
    assert response["status"] == 500
    for leak in (
        "Traceback",
        SENTINEL,
        "SECRET_KEY",
        "FERNET_KEYS",
        "DATABASES",
        "RuntimeError",
        "boom_urls",
    ):
        assert leak not in body
    request_id = response["headers"]["X-Request-ID"]
    assert request_id in body
    error_lines = [line for line in production["log"].splitlines() if "ERROR" in line and "/boom/" in line]
    assert error_lines and all(f"[{request_id}]" in line for line in error_lines if request_id in line)
    assert any(f"[{request_id}]" in line for line in error_lines)
    if name == "server_error_htmx":
        assert "<html" not in body
    else:
        assert "Something went wrong on our side" in body
