"""The strict Content-Security-Policy is served in every setting (issue 13): development (DEBUG on) as well as
production (DEBUG off), each evaluated fresh in a subprocess the way it starts."""

from __future__ import annotations

import json

import pytest

from tests.accounts.test_settings import _prod_env, _run
from tests.browser.conftest import parse_policy, policy_problems

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings

call_command("migrate", verbosity=0)
plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
override_settings(STORAGES=plain).enable()  # no collectstatic manifest here
client = Client(HTTP_HOST="console.example.com")
seen = {}
for path in ["/login/", "/setup/", "/no-such-page/"]:
    response = client.get(path, secure=True)
    seen[path] = [response.status_code, response.headers.get("Content-Security-Policy")]
print(json.dumps(seen))
"""


@pytest.mark.parametrize("debug", ["true", "false"])
def test_every_setting_serves_the_strict_policy(debug, tmp_path):
    env = _prod_env(DEBUG=debug, VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = _run(["-c", PROBE], **env)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    status, header = seen["/setup/"]  # no user yet: the first-run page, where /login/ redirects
    assert status == 200 and policy_problems(header) == []
    assert parse_policy(seen["/login/"][1]) == parse_policy(header)
    if debug == "false":  # Django's technical 404 page (DEBUG on) is exempt, so its styles still show
        assert policy_problems(seen["/no-such-page/"][1]) == []
