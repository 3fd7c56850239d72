#!/usr/bin/env bash
# Serve the app with a Celery worker and Celery beat beside it, as one foreground command; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped."
}
trap cleanup INT TERM EXIT

if [ "${DEMO:-}" = "1" ]; then
  SIM_PORT="${SIM_PORT:-8834}"
  "$BIN/python" manage.py tenable_simulator --port "$SIM_PORT" --launch-seconds 8 & pids+=($!)
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$SIM_PORT") 2>/dev/null && break; sleep 0.2; done
fi

"$BIN/celery" -A config worker --loglevel=INFO --concurrency=2 --queues=imports,celery --hostname="worker@%h" & pids+=($!)
"$BIN/celery" -A config beat --loglevel=INFO --pidfile= & pids+=($!)
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}" & pids+=($!)
sleep 2
if [ "${DEMO:-}" = "1" ]; then
  "$BIN/python" manage.py demo --simulator-url "http://127.0.0.1:${SIM_PORT}" --url "http://127.0.0.1:${PORT}/"
fi
echo
echo "  Tenable Console is running at http://127.0.0.1:${PORT}/   (Ctrl-C stops the web server, worker and beat)"
echo
wait -n
