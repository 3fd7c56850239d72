"""Tenable.io VM: `client` (the one HTTP door), `nessus` (streaming parser), `simulator` (the fake service).

Nothing here imports Django; `connector` adapts the client to the connector registry.
"""
