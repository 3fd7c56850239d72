"""`manage.py demo_jira`: a Jira Cloud connection to the Jira simulator and Jira tickets for the Demo project —
created once, reused after. `make demo` runs it after `manage.py demo`, beside `manage.py jira_simulator`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User, record
from integrations.connectors import TICKETING
from integrations.models import Integration
from integrations.services import open_connector, remember_result, test_connection
from projects.models import Project
from tickets import services
from tickets.models import TicketLink, TicketMapping

SIM_EMAIL, SIM_TOKEN = "jira-bot@example.com", "sim-jira-token"  # the simulator's published account


class Command(BaseCommand):
    help = "Create (idempotently) a Jira Cloud connection to the Jira simulator and Jira tickets for the Demo project."

    def add_arguments(self, parser):
        parser.add_argument("--site-url", default="http://127.0.0.1:8835")
        parser.add_argument("--email", default=SIM_EMAIL)
        parser.add_argument("--api-token", default=SIM_TOKEN)
        parser.add_argument("--project", default="Demo")

    def handle(self, *args, site_url, email, api_token, project, **options):
        admin = User.objects.filter(username="demo").first()
        integration, created = Integration.objects.get_or_create(
            name="Jira simulator",
            defaults={"connector": "jiracloud", "api_url": site_url, "is_active": True, "updated_by": admin},
        )
        if created or integration.api_url != site_url:
            integration.api_url, integration.is_active, integration.login = site_url, True, email
            integration.access_key, integration.access_key_hint = api_token, api_token[-4:]
            integration.save()
            record(admin, "integration.created", integration, None, connector="jiracloud", via="demo")
        result = test_connection(integration)
        remember_result(integration, result, admin)
        if not result.ok:
            raise CommandError(f"The Jira simulator at {site_url} did not answer: {result.message}")

        demo = Project.objects.filter(name=project).first()
        if demo is None:
            raise CommandError(f"No project called {project!r}: run `manage.py demo` first.")
        with open_connector(integration, kind=TICKETING) as connector:
            sec = connector.project("SEC")
            links = list(
                TicketLink.objects.filter(project=demo, integration=integration).exclude(issue_key="")
            )
            if links and not connector.tickets([link.issue_key for link in links]):
                # The simulator keeps its issues in memory: after a restart it starts empty.
                TicketLink.objects.filter(project=demo, integration=integration).delete()
        task = next(t for t in sec.types if t.name == "Task")
        mapping, made = TicketMapping.objects.get_or_create(
            project=demo,
            defaults={
                "integration": integration, "jira_project": sec.key, "jira_project_name": sec.name,
                "issue_type_id": task.id, "issue_type_name": task.name, "updated_by": admin,
            },
        )  # fmt: skip
        if made:
            record(admin, "tickets.mapping_saved", demo, None, jira_project=sec.key, via="demo")
        services.sync_now(demo, admin)  # tickets for what is already imported (runs add theirs)
        self.stdout.write(
            f"  Jira simulator  {site_url} (e-mail {email}, API token {api_token}); {demo.name}'s tickets go to "
            f"{mapping.jira_project}: {site_url}/browse/{mapping.jira_project}-1"
        )
