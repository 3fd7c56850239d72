"""The connector registry: one explicit dict, slug → connector class. Model choices and UI cards derive from it.

Two kinds share it: scanners (findings come in, `base.Connector`) and ticketing destinations (tickets go out,
`base.TicketingConnector`). To add one, write a package beside `tenable_io/` or `jira_cloud/` with the same shape
and add one line here (see CONTRIBUTING.md › Adding a connector). Only this module imports a connector's package;
everything else asks the registry and speaks the contracts of `base`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import (
    CATEGORIES,
    SCANNER,
    TICKETING,
    Connector,
    ConnectorError,
    ConnectorSpec,
    CredentialField,
    TicketingConnector,
    TicketingError,
)
from .jira_cloud.connector import JiraCloudConnector
from .tenable_io.connector import TenableIOConnector

CONNECTORS: dict[str, type[ConnectorSpec]] = {
    TenableIOConnector.slug: TenableIOConnector,
    JiraCloudConnector.slug: JiraCloudConnector,
}


def connector_for(slug: str) -> type[ConnectorSpec]:
    return CONNECTORS[slug]


def connector_choices() -> list[tuple[str, str]]:
    """(slug, label) of every registered connector; read when needed, so the model needs no migration per connector."""
    return [(slug, connector.label) for slug, connector in CONNECTORS.items()]


def slugs_of(kind: str) -> list[str]:
    """The slugs of the connectors of one kind (SCANNER or TICKETING)."""
    return [slug for slug, connector in CONNECTORS.items() if connector.kind == kind]


def connectors_by_category(
    kinds: Iterable[str] = (SCANNER,),
) -> list[tuple[str, str, list[type[ConnectorSpec]]]]:
    """(slug, label, connectors) for every category that has at least one connector of these kinds, in display
    order. Scanners only by default (Add Scanner); the Integrations page asks for both kinds."""
    kinds = set(kinds)
    chosen = [c for c in CONNECTORS.values() if c.kind in kinds]
    return [
        (slug, label, [c for c in chosen if c.category == slug])
        for slug, label in CATEGORIES
        if any(c.category == slug for c in chosen)
    ]


__all__ = [
    "CATEGORIES",
    "CONNECTORS",
    "SCANNER",
    "TICKETING",
    "Connector",
    "ConnectorError",
    "ConnectorSpec",
    "CredentialField",
    "TicketingConnector",
    "TicketingError",
    "connector_choices",
    "connector_for",
    "connectors_by_category",
    "slugs_of",
]
