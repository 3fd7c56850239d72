"""Requests a few pages under production settings and prints what came back as JSON.

Run by test_production_headers.py in a subprocess with DEBUG=false, so the settings module is evaluated the way
a production process evaluates it; its database is a fresh SQLite file under VAR_DIR. Static files are served
without the collectstatic manifest (what `make test` has), which changes no header.
"""

from __future__ import annotations

import json

import django

PASSWORD = "a-long-probe-password-42"
COOKIE_ATTRIBUTES = ("secure", "httponly", "samesite", "path", "domain", "max-age")


def main() -> None:
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from accounts.models import User

    call_command("migrate", verbosity=0)
    User.objects.create_user("admin", password=PASSWORD, role="admin")
    from django.conf import settings

    no_manifest = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=no_manifest).enable()
    client = Client(HTTP_HOST="console.example.com", raise_request_exception=False)
    seen: dict[str, dict] = {}

    def grab(name: str, response) -> None:
        seen[name] = {
            "status": response.status_code,
            "headers": dict(response.headers),
            "cookies": {
                key: {attr: morsel[attr] for attr in COOKIE_ATTRIBUTES}
                for key, morsel in response.cookies.items()
            },
            "body": response.content.decode(errors="replace"),
        }

    grab("plain_http", client.get("/login/"))
    grab("login_page", client.get("/login/", secure=True))
    grab("login", client.post("/login/", {"username": "admin", "password": PASSWORD}, secure=True))
    htmx = {"HX-Request": "true", "HX-Target": "connector-cards"}
    grab("fragment", client.get("/integrations/", headers=htmx, secure=True))
    grab("not_found", client.get("/no-such-page/", secure=True))
    with override_settings(ROOT_URLCONF="tests.boom_urls"):
        grab("server_error", client.get("/boom/", secure=True))
        grab("server_error_htmx", client.get("/boom/", headers={"HX-Request": "true"}, secure=True))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
