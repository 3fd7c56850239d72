"""`manage.py jira_simulator`: serve the fake Jira Cloud on 127.0.0.1 until Ctrl-C (demos, browser tests)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from integrations.connectors.jira_cloud.simulator import (
    API_TOKEN,
    EMAIL,
    VIEWER_API_TOKEN,
    VIEWER_EMAIL,
    JiraSimulator,
)


class Command(BaseCommand):
    help = (
        "Serve a simulated Jira Cloud site (REST v3; stateful, deterministic, no internet) until Ctrl-C. "
        f"Besides the --email/--api-token account (every permission), {VIEWER_EMAIL} / {VIEWER_API_TOKEN} "
        "may only browse projects, so every write answers 403."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8835)
        parser.add_argument("--email", default=EMAIL)
        parser.add_argument("--api-token", default=API_TOKEN)

    def handle(self, *args, **options):
        sim = JiraSimulator(email=options["email"], api_token=options["api_token"])
        server = sim.serve(options["host"], options["port"])
        self.stdout.write(self.style.SUCCESS(f"Jira Cloud simulator listening on {server.url}"))
        self.stdout.write(f"  site URL:           {server.url}")
        self.stdout.write(
            f"  account:            e-mail {options['email']!r}, API token {options['api_token']!r}"
        )
        self.stdout.write(
            f"  browse-only:        e-mail {VIEWER_EMAIL!r}, API token {VIEWER_API_TOKEN!r} (403 on writes)"
        )
        self.stdout.write(
            "  projects:           SEC (Security Vulnerabilities), OPS (Operations, no Priority)"
        )
        self.stdout.write("  workflow:           To Do → In Progress → Done; Done → To Do (Reopen)")
        self.stdout.write("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            server.stop()
