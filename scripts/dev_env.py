"""Write a development .env with fresh SECRET_KEY and FERNET_KEYS, or check the one that exists.

`make run` and `make test` run this first. A `.env` copied from `.env.example` (a template for production:
DEBUG=false, empty keys, Docker Compose host names) cannot start the app on a laptop; instead of a traceback from
the settings, say what is wrong and how to fix it, and exit 1.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
# Values in .env.example that only make sense inside docker compose or on the real console's host.
PLACEHOLDERS = {
    "DATABASE_URL": " (docker compose's PostgreSQL, host `db`), which `make run` cannot reach",
    "REDIS_URL": " (docker compose's Redis, host `redis`), which `make run` cannot reach",
    "ALLOWED_HOSTS": ", so http://127.0.0.1 would answer 400 Bad Request",
}


def read_env(path: Path) -> dict[str, str]:
    """NAME=value lines (comments and blank lines skipped, surrounding quotes removed)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def problems(path: Path) -> list[str]:
    """What would stop `make run` from serving http://127.0.0.1 with these values (the environment wins)."""
    values = read_env(path)
    example = read_env(EXAMPLE) if EXAMPLE.is_file() else {}

    def get(name: str) -> str:
        return os.environ.get(name, values.get(name, ""))

    def given(name: str) -> bool:
        return bool(get(name) or get(f"{name}_FILE"))

    found = []
    debug = get("DEBUG").lower() in {"1", "true", "yes", "on"}
    required = ["SECRET_KEY"] if debug else ["SECRET_KEY", "FERNET_KEYS"]
    found += [f"{name} is empty" for name in required if not given(name)]
    for name, why in PLACEHOLDERS.items():
        if name in values and name not in os.environ and example.get(name) == values[name]:
            found.append(f"{name}={values[name]} is .env.example's placeholder{why}")
    return found


def write(path: Path) -> None:
    path.write_text(
        "# Development settings written by `make run`. Never use these values in production.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"FERNET_KEYS={secrets.token_urlsafe(48)}\n"
    )
    path.chmod(0o600)
    print(f"Wrote {path} with freshly generated SECRET_KEY and FERNET_KEYS.")


def main(path: Path) -> int:
    if os.environ.get("ENV_FILE"):  # the settings read another file (or none): this one does not matter
        return 0
    if not path.exists():
        write(path)
        return 0
    found = problems(path)
    if found:
        print(
            f"{path} cannot start the app here (was it copied from .env.example? That file is a template for "
            "production):\n"
            + "".join(f"  - {line}\n" for line in found)
            + f"For development, delete {path} and "
            "run `make run` again: it writes a development .env with fresh keys (SQLite, embedded broker). "
            "For production settings, fill in those values (README › Production).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".env")))
