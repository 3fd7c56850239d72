"""Live lookups for the mapping page: a Jira project, the issue types the account may create there, and the
permissions it lacks; and Test mapping. Interactive (a short time budget), cached for a minute."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache

from integrations.connectors import TICKETING, TicketingError
from integrations.connectors.base import TicketingInfo, TicketProject
from integrations.models import Integration
from integrations.services import CredentialsUnavailable, open_connector

log = logging.getLogger(__name__)
CACHE_SECONDS = 60


@dataclass
class ProjectLookup:
    """A Jira project as the connection sees it: the project (None when it could not be read), the permissions
    the account lacks there, and why the lookup failed."""

    project: TicketProject | None = None
    missing: list[str] = field(default_factory=list)
    error: str = ""


def lookup_project(integration: Integration, key: str) -> ProjectLookup:
    """The project and its creatable issue types, with the permissions missing (cached per connection and key)."""
    key = key.strip().upper()
    stamp = int(integration.updated_at.timestamp()) if integration.updated_at else 0
    cache_key = f"jira-project:{integration.pk}:{stamp}:{key}"
    found = cache.get(cache_key)
    if found is not None:
        return found
    try:
        with open_connector(integration, interactive=True, kind=TICKETING) as connector:
            found = ProjectLookup(connector.project(key), connector.missing_permissions(key))
    except CredentialsUnavailable as exc:
        return ProjectLookup(error=exc.message)
    except TicketingError as exc:
        log.info("Jira lookup of %s on connection %s failed: %s", key, integration.pk, exc.kind)
        return ProjectLookup(error=exc.message)
    cache.set(cache_key, found, CACHE_SECONDS)
    return found


def test_mapping(integration: Integration, key: str) -> tuple[TicketingInfo | None, str]:
    """Test mapping: who the account is and the permissions it lacks in the project (never cached)."""
    try:
        with open_connector(integration, interactive=True, kind=TICKETING) as connector:
            return connector.test_connection([key]), ""
    except CredentialsUnavailable as exc:
        return None, exc.message
    except TicketingError as exc:
        return None, exc.message
