"""The connector registry: one explicit dict, slug → connector class. Model choices and UI cards derive from it.

To add a scanner, write a package beside `tenable_io/` with the same shape and add one line here
(see CONTRIBUTING.md › Adding a connector). Only this module imports a connector's package; everything else
asks the registry and speaks the contract of `base`.
"""

from __future__ import annotations

from .base import CATEGORIES, Connector, ConnectorError, CredentialField
from .tenable_io.connector import TenableIOConnector

CONNECTORS: dict[str, type[Connector]] = {
    TenableIOConnector.slug: TenableIOConnector,
}


def connector_for(slug: str) -> type[Connector]:
    return CONNECTORS[slug]


def connector_choices() -> list[tuple[str, str]]:
    """(slug, label) of every registered connector; read when needed, so the model needs no migration per connector."""
    return [(slug, connector.label) for slug, connector in CONNECTORS.items()]


def connectors_by_category() -> list[tuple[str, str, list[type[Connector]]]]:
    """(slug, label, connectors) for every category that has at least one connector, in display order."""
    return [
        (slug, label, [c for c in CONNECTORS.values() if c.category == slug])
        for slug, label in CATEGORIES
        if any(c.category == slug for c in CONNECTORS.values())
    ]


__all__ = [
    "CATEGORIES",
    "CONNECTORS",
    "Connector",
    "ConnectorError",
    "CredentialField",
    "connector_choices",
    "connector_for",
    "connectors_by_category",
]
