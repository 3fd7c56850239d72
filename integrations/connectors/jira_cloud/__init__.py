"""Jira Cloud: `client` (the one HTTP door), `adf` (document builder), `simulator` (the fake service).

Nothing here imports Django.
"""
