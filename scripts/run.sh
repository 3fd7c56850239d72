#!/usr/bin/env bash
# Serve the app (gunicorn, scripts/web.sh) with a Celery worker and Celery beat beside it, as one foreground
# command; Ctrl-C stops all three. DEMO=1 (`make demo`) also starts the Tenable.io and Jira simulators and the demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
export PORT
pids=()
state=$(mktemp -d)
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
  echo "Stopped."
}
trap cleanup INT TERM EXIT

if [ "${DEMO:-}" = "1" ]; then
  SIM_PORT="${SIM_PORT:-8834}"
  JIRA_SIM_PORT="${JIRA_SIM_PORT:-8835}"
  "$BIN/python" manage.py tenable_simulator --port "$SIM_PORT" --launch-seconds 8 & pids+=($!)
  "$BIN/python" manage.py jira_simulator --port "$JIRA_SIM_PORT" > /dev/null & pids+=($!)
  for port in "$SIM_PORT" "$JIRA_SIM_PORT"; do
    for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
  done
  # The demo data (its first run waits in the queue for the worker); what it prints is shown last, below.
  "$BIN/python" manage.py demo --simulator-url "http://127.0.0.1:${SIM_PORT}" --url "http://127.0.0.1:${PORT}/" \
    > "$state/demo.txt" 2>&1 || true
  # Jira tickets for the demo project, in the Jira simulator (its first run's findings become tickets).
  "$BIN/python" manage.py demo_jira --site-url "http://127.0.0.1:${JIRA_SIM_PORT}" >> "$state/demo.txt" 2>&1 || true
fi

CELERY_READY_FILE="$state/worker-ready" \
  "$BIN/celery" -A config worker --loglevel=INFO --concurrency=2 --queues=imports,celery --hostname="worker@%h" & pids+=($!)
"$BIN/celery" -A config beat --loglevel=INFO --pidfile= & pids+=($!)
./scripts/web.sh & pids+=($!)

# The address (and the demo's sign-in) go last, after the web server and the worker have logged their start-up.
ready=0
"$BIN/python" scripts/wait_ready.py "http://127.0.0.1:${PORT}/healthz" "$state/worker-ready" "${pids[@]}" || ready=$?
if [ "$ready" = 2 ]; then exit 1; fi  # a process exited during start-up (its log says why): stop the others
echo
if [ -s "$state/demo.txt" ]; then cat "$state/demo.txt"; echo; fi
echo "  Tenable Console is running at http://127.0.0.1:${PORT}/   (Ctrl-C stops the web server, worker and beat)"
echo
wait -n
