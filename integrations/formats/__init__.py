"""File formats that carry findings (`.nessus` today), read into the neutral records of `records`. No Django.

Connectors and uploads use the same readers, so a file and a service export become the same hosts.
"""
