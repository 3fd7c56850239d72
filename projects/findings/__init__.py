"""Reviewing findings: `filters` (the query string, parsed), `queries` (lists, pages, groups, hosts, history),
`overview` with its `charts`, `triage`, `csv_export`, and the views."""
