"""`manage.py demo`: an admin, an active Tenable.io VM connection to the simulator, and a demo project with a
bound scanner profile — created once, reused after. `make demo` runs it beside the simulator."""

from __future__ import annotations

import secrets

from django.core.management.base import BaseCommand, CommandError

from accounts.choices import Role
from accounts.models import User, record
from integrations.models import Integration
from integrations.services import open_connector, remember_result, test_connection
from projects.models import Membership, Project, ScannerProfile
from projects.runs.services import RunRefused, request_run


class Command(BaseCommand):
    help = (
        "Create (idempotently) the demo admin, a connection to the Tenable.io simulator and a demo project."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default="http://127.0.0.1:8834")
        parser.add_argument("--access-key", default="sim-access")
        parser.add_argument("--secret-key", default="sim-secret")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, simulator_url, access_key, secret_key, url, **options):
        password = None
        admin = User.objects.filter(username="demo").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("demo", "demo@example.com", password, role=Role.ADMIN)
        integration, created = Integration.objects.get_or_create(
            name="Tenable.io simulator",
            defaults={
                "connector": "tenableiovm",
                "api_url": simulator_url,
                "is_active": True,
                "updated_by": admin,
            },
        )
        if created or integration.api_url != simulator_url:
            integration.api_url, integration.is_active = simulator_url, True
            integration.access_key, integration.secret_key = access_key, secret_key
            integration.access_key_hint = access_key[-4:]
            integration.save()
            record(admin, "integration.created", integration, None, connector="tenableiovm", via="demo")
        result = test_connection(integration)
        remember_result(integration, result, admin)
        if not result.ok:
            raise CommandError(f"The simulator at {simulator_url} did not answer: {result.message}")

        project, _ = Project.objects.get_or_create(
            name="Demo",
            defaults={"description": "Findings imported from the Tenable.io simulator.", "created_by": admin},
        )
        Membership.objects.get_or_create(project=project, user=admin)
        with open_connector(integration) as connector:
            scans = connector.list_sources().scans
        scan = next((s for s in scans if s.status == "completed" and s.type != "agent"), scans[0])
        profile, created = ScannerProfile.objects.get_or_create(
            project=project,
            name="Web tier (weekly)",
            defaults={
                "integration": integration, "scan_id": scan.id, "scan_name": scan.name,
                "scan_schedule_uuid": scan.schedule_uuid or "", "meta_data": "env=demo", "scan_tag": "demo",
            },
        )  # fmt: skip
        if created:
            try:
                request_run(profile, user=admin)
            except RunRefused as refused:
                self.stderr.write(f"First run not started: {refused.message}")

        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  Open            {url}")
        if password:
            self.stdout.write(
                f"  Sign in as      demo / {password}   (shown once; change it under the user menu)"
            )
        else:
            self.stdout.write(
                "  Sign in as      demo (password from the first `make demo`; reset it with `manage.py changepassword demo`)"
            )
        self.stdout.write(f"  Project         {project.name}: {url.rstrip('/')}{project.get_absolute_url()}")
        self.stdout.write(f"  Simulator       {simulator_url} (keys {access_key} / {secret_key})")
