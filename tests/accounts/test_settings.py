"""Production start-up rules, run in subprocesses so the settings module is evaluated fresh."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run with only the given settings: no .env, and a throwaway var/ (SQLite) instead of the working copy's."""
    ignored = {"DEBUG", "SECRET_KEY", "FERNET_KEYS", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    ignored |= {"DATABASE_URL", "REDIS_URL", "VAR_DIR"}
    base = {k: v for k, v in os.environ.items() if k not in ignored}
    with tempfile.TemporaryDirectory() as var_dir:
        base.update(
            {"ENV_FILE": "none", "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": var_dir}, **env
        )
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
        )


def _prod_env(**overrides: str) -> dict[str, str]:
    env = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FERNET_KEYS": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "console.example.com",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_check_deploy_passes_with_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **_prod_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_fernet_keys_in_production():
    env = _prod_env()
    del env["FERNET_KEYS"]
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "FERNET_KEYS not set" in result.stderr


def test_refuses_to_start_without_secret_key_or_hosts():
    env = _prod_env()
    del env["SECRET_KEY"], env["ALLOWED_HOSTS"]
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY, ALLOWED_HOSTS not set" in result.stderr


def test_fernet_keys_must_differ_from_secret_key():
    key = secrets.token_urlsafe(50)
    result = _run(["manage.py", "check"], **_prod_env(SECRET_KEY=key, FERNET_KEYS=key))
    assert result.returncode != 0
    assert "separate from SECRET_KEY" in result.stderr


def test_production_headers_and_cookies(settings):
    result = _run(
        [
            "-c",
            "import django;django.setup();from django.conf import settings as s;"
            "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.X_FRAME_OPTIONS)",
        ],
        **_prod_env(),
    )
    assert result.stdout.split() == ["__Host-sessionid", "True", "31536000", "DENY"]


def test_redis_visibility_timeout_outlasts_the_task_time_limit():
    """A long import must not be redelivered to a second worker while the first still runs (RELIABILITY C3)."""
    result = _run(
        [
            "-c",
            "import django;django.setup();from django.conf import settings as s;"
            "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], s.CELERY_TASK_TIME_LIMIT,"
            " s.CELERY_TASK_SOFT_TIME_LIMIT, s.CELERY_TASK_ACKS_LATE, s.CELERY_TASK_REJECT_ON_WORKER_LOST)",
        ],
        **_prod_env(REDIS_URL="redis://127.0.0.1:6379/0"),
    )
    visibility, hard, soft, acks_late, reject = result.stdout.split()
    assert int(visibility) > int(hard) > int(soft)
    assert acks_late == reject == "True"
