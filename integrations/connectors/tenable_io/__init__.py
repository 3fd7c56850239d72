"""Tenable.io VM: `client` (the one HTTP door), `connector` (the contract over it), `simulator` (the fake service).

Nothing here imports Django. Exports are read by `integrations.formats.nessus`, the same reader uploads use;
only the registry (`integrations.connectors`) imports this package.
"""
