#!/usr/bin/env bash
# The web server `make run` starts (and the tests start): gunicorn with 3 single-threaded worker processes, as in
# the Dockerfile. Each holds at most one database connection, so the app holds at most 3 however many requests
# arrive (they wait in the listen queue instead); whitenoise serves the static files. http://127.0.0.1:$PORT/
# (Sync workers, not threads: gunicorn's threaded worker can hang on Ctrl-C, which signals it twice. No control
# socket: it would be one path in $HOME shared by every gunicorn on the machine.)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/gunicorn config.wsgi:application --bind "127.0.0.1:${PORT:-8000}" --workers 3 \
  --timeout 120 --graceful-timeout 10 --access-logfile - --error-logfile - --no-control-socket
