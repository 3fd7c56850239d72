"""Signals integrations sends, for apps above it to answer (integrations never imports them)."""

from __future__ import annotations

from django.dispatch import Signal

# What the scanner profiles using some connections need, for least-privilege advice and for refusing replacement
# keys that would break them. Sent with `integrations=` (a list); each receiver returns
# {integration pk: {capability key (connectors.base.CAN_*): [labels of the profiles needing it]}}.
profile_needs = Signal()

# Which ticketing projects use some connections, so Test Connection can name the permissions missing there. Sent
# with `integrations=` (a list); each receiver returns {integration pk: [project keys]}.
ticket_projects = Signal()
