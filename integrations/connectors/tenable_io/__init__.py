"""Tenable.io VM: `client` (the one HTTP door), `connector` (the contract over it), `checklist` (what a key can
do, for Test Connection), `simulator` (the fake service).

Nothing here imports Django. Scan exports are read by `integrations.formats.nessus` (the reader uploads use),
bulk export chunks by `integrations.formats.tenable_export`; only the registry (`integrations.connectors`)
imports this package.
"""
