"""How the product is run: `make run`'s web server under a burst (W11), `make demo`, `make check-deploy`, `.env`.

These start the real commands (scripts/web.sh, scripts/run.sh, make) in subprocesses on free ports, each bounded
in time, against the test database or a scratch copy of the repository — never the working copy's var/ or .env.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
# What a developer's shell or CI may export and the scratch copy must not inherit (it has its own .env and var/).
SCRUBBED = {
    "DATABASE_URL",
    "REDIS_URL",
    "ENV_FILE",
    "VAR_DIR",
    "DEBUG",
    "SECRET_KEY",
    "FERNET_KEYS",
    "ALLOWED_HOSTS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests' fixture; `check --deploy` refuses it
}
# `make` must not reinstall the shared virtualenv from inside a test.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.runtime", "-o", ".venv/.dev"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail(f"nothing answered at {url} within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
    """Signal the process group (what Ctrl-C does in a terminal); return how long it took to exit."""
    started = time.monotonic()
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - started


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def web_pool_size() -> int:
    """Processes × threads from the gunicorn command `make run` uses: the most DB connections it may hold."""
    command = (ROOT / "scripts" / "web.sh").read_text()
    workers = int(re.search(r"--workers (\d+)", command).group(1))
    threads = re.search(r"--threads (\d+)", command)
    return workers * (int(threads.group(1)) if threads else 1)


# ---------------------------------------------------------------------------------------------------------------
# RELIABILITY W11: a burst of concurrent requests on the server `make run` starts, with PostgreSQL
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_make_run_server_answers_a_burst_with_bounded_database_connections(
    postgres_required, settings, tmp_path
):
    from django.db import connection

    from accounts.choices import Role
    from accounts.models import User
    from tests.conftest import make_project

    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = User.objects.create_user("burst", password=PASSWORD, role=Role.ADMIN)
    project = make_project("Burst", members=[user])

    db = connection.settings_dict
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(
        ENV_FILE="none",
        DEBUG="true",
        SECRET_KEY=settings.SECRET_KEY,
        FERNET_KEYS=",".join(settings.FERNET_KEYS),
        DATABASE_URL=f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'] or '')}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        VAR_DIR=str(tmp_path),
        PORT=str(port),
    )
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "web.sh")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/healthz", server, log)
        session = requests.Session()
        login = session.get(f"{base}/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        signed_in = session.post(
            f"{base}/login/",
            data={"username": "burst", "password": PASSWORD, "csrfmiddlewaretoken": token},
            timeout=30,
            allow_redirects=False,
        )
        assert signed_in.status_code == 302, signed_in.text[:500]
        cookies = session.cookies.get_dict()
        url = f"{base}{project.get_absolute_url()}findings/"

        def fetch(_: int) -> int:
            return requests.get(url, cookies=cookies, timeout=60, allow_redirects=False).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            futures = [pool.submit(fetch, i) for i in range(200)]
            done, pending = wait(futures, timeout=120)
        elapsed = time.monotonic() - started
        assert not pending, f"{len(pending)} of 200 requests unanswered after {elapsed:.0f} s"
        errors = [repr(f.exception()) for f in done if f.exception()]
        statuses = sorted(f.result() for f in done if not f.exception())
        assert not errors, errors[:3]
        assert statuses == [200] * 200, (
            f"{statuses.count(200)} of 200 answered 200: {set(statuses)}\n" + log.read_text()[-2000:]
        )

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            held = cursor.fetchone()[0]
        assert held <= web_pool_size(), (
            f"the server holds {held} connections (at most {web_pool_size()} expected)"
        )
    finally:
        stop(server)


# ---------------------------------------------------------------------------------------------------------------
# .env and .env.example
# ---------------------------------------------------------------------------------------------------------------
SETTING_READ = re.compile(
    r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']"""  # django-environ: env.int("NAME", ...)
    r"""|\bos\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)
# Environment variables read by code that are not settings of the app.
NOT_SETTINGS = {
    "CELERY_READY_FILE": "scripts/run.sh's handshake with the worker it starts",
}
APP_CODE = ["config", "accounts", "integrations", "projects", "api"]


def _settings_read() -> dict[str, str]:
    found = {}
    for folder in APP_CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for match in SETTING_READ.finditer(path.read_text()):
                found.setdefault(match.group(1) or match.group(2), str(path.relative_to(ROOT)))
    return {name: where for name, where in found.items() if name not in NOT_SETTINGS}


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^(?:#\s?)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_example_lists_every_setting_the_app_reads():
    read, listed = _settings_read(), _env_example_names()
    assert len(read) > 20  # the scan itself works
    missing = {name: where for name, where in read.items() if name not in listed}
    assert not missing, f".env.example lacks settings the app reads: {missing}"
    assert listed <= set(read), f".env.example lists settings nothing reads: {sorted(listed - set(read))}"


def _dev_env(path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dev_env.py"), str(path)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_env_copied_from_the_example_is_refused_with_what_to_do(tmp_path):
    copied = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", copied)
    result = _dev_env(copied)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for words in (
        "copied from .env.example",
        "SECRET_KEY is empty",
        "FERNET_KEYS is empty",
        "DATABASE_URL=postgres://tenable:password@db:5432/tenable is .env.example's placeholder",
        f"delete {copied} and run `make run` again",
    ):
        assert words in result.stderr, result.stderr

    # Filled in for production (and pointed at reachable services), it is accepted.
    text = copied.read_text()
    text = text.replace("SECRET_KEY=\n", f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
    text = text.replace("FERNET_KEYS=\n", f"FERNET_KEYS={secrets.token_urlsafe(48)}\n")
    text = re.sub(r"^(DATABASE_URL|REDIS_URL|ALLOWED_HOSTS)=.*$", r"\1=", text, flags=re.MULTILINE)
    copied.write_text(text)
    assert _dev_env(copied).returncode == 0


def test_make_writes_a_development_env_once(tmp_path):
    path = tmp_path / ".env"
    first = _dev_env(path)
    assert first.returncode == 0 and "Wrote" in first.stdout
    written = path.read_text()
    assert "DEBUG=true" in written and oct(path.stat().st_mode & 0o777) == "0o600"
    assert _dev_env(path).returncode == 0 and path.read_text() == written  # kept, and accepted


# ---------------------------------------------------------------------------------------------------------------
# A newcomer's path in a scratch copy of the repository: `make demo`'s setup, then `make run`/`make demo`,
# `make check-deploy` and the deploy-check test (issue: they used to read the working copy's var/ database).
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A copy of the repository with its own .env and var/ set up by `make setup` (the first half of `make demo`)."""
    if not (VENV / "bin" / "python").exists() or shutil.which("make") is None:
        pytest.skip("needs the project's .venv and make")
    copy = tmp_path_factory.mktemp("checkout") / "repo"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", ".env", "staticfiles", "__pycache__", ".pytest_cache", ".ruff_cache",
            "test-artifacts", "*.egg-info", "build",
        ),
    )  # fmt: skip
    (copy / ".venv").symlink_to(VENV.resolve())
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    setup = subprocess.run([*MAKE, "setup"], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (copy / ".env").is_file() and (copy / "var" / "db.sqlite3").is_file()
    return copy, env


def test_after_make_demo_the_deploy_check_and_its_test_still_pass(scratch):
    from integrations.connectors.tenable_io.simulator import TenableSimulator

    copy, env = scratch
    simulator = TenableSimulator(scans=2).serve()
    try:
        demo = subprocess.run(
            [str(copy / ".venv" / "bin" / "python"), "manage.py", "demo", "--simulator-url", simulator.url],
            cwd=copy, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        simulator.stop()
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Demo ready." in demo.stdout  # var/ now holds secrets encrypted with this copy's .env keys

    check = subprocess.run(
        [*MAKE, "check-deploy"], cwd=copy, env=env, capture_output=True, text=True, timeout=180
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout

    test = "tests/accounts/test_settings.py::test_check_deploy_passes_with_production_settings"
    pytest_run = subprocess.run(
        [str(copy / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", test],
        cwd=copy, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert pytest_run.returncode == 0, pytest_run.stdout[-3000:] + pytest_run.stderr[-2000:]
    assert "1 passed" in pytest_run.stdout


def test_make_demo_serves_with_gunicorn_prints_the_sign_in_last_and_ctrl_c_stops_everything(scratch):
    from integrations.connectors.jira_cloud.client import JiraClient

    copy, env = scratch
    port, sim_port, jira_port = free_port(), free_port(), free_port()
    log = copy / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./scripts/run.sh"],
            cwd=copy,
            env={
                **env,
                "DEMO": "1",
                "PORT": str(port),
                "SIM_PORT": str(sim_port),
                "JIRA_SIM_PORT": str(jira_port),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "is running at" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        output = log.read_text()
        assert "is running at" in output, output[-3000:]
        # Web (gunicorn, not runserver), worker and beat started before the banner; the sign-in is in it.
        banner = output.index("Demo ready.")
        for started in (r"Listening at: http://127\.0\.0\.1", r"worker@\S+ ready\.", r"beat: Starting"):
            found = re.search(started, output)
            assert found and found.start() < banner, f"{started!r} not before the banner:\n{output[-3000:]}"
        assert "Sign in as      demo" in output[banner:]
        assert "Starting development server" not in output  # runserver is for development only
        assert requests.get(f"http://127.0.0.1:{port}/static/css/app.css", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["database"] == "ok"
        # The Jira simulator runs too: the demo project's first run becomes tickets there (issue 20).
        assert f"Jira simulator  http://127.0.0.1:{jira_port}" in output[banner:], output[-3000:]
        with JiraClient(f"http://127.0.0.1:{jira_port}", "jira-bot@example.com", "sim-jira-token") as jira:
            deadline = time.monotonic() + 90
            while not jira.search("project = SEC") and time.monotonic() < deadline:
                time.sleep(1)
            assert jira.search("project = SEC"), log.read_text()[-3000:]
    finally:
        took = stop(process, signal.SIGINT)  # Ctrl-C
    assert process.returncode is not None and not group_alive(process.pid), "something outlived Ctrl-C"
    assert took < 30 and "Stopped." in log.read_text()
