"""`python -m kdt` is the same as the `kdt` command."""

from kdt.cli import main

raise SystemExit(main())
