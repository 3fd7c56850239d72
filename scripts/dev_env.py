"""Write a development .env with fresh SECRET_KEY and FERNET_KEYS, unless one already exists."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
if path.exists():
    sys.exit(0)
path.write_text(
    "# Development settings written by `make run`. Never use these values in production.\n"
    "DEBUG=true\n"
    f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"FERNET_KEYS={secrets.token_urlsafe(48)}\n"
)
path.chmod(0o600)
print(f"Wrote {path} with freshly generated SECRET_KEY and FERNET_KEYS.")
