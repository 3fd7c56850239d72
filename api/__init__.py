"""The JSON API (`/api/v1/`) used by CI and the `kdt` command line, and the per-user API tokens it accepts."""
