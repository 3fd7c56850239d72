"""Wait until the web server answers and the Celery worker is ready (at most a minute), then exit.

`scripts/run.sh` runs it so that its banner (the address, the demo's sign-in) is printed after the start-up
logs of gunicorn and Celery, where a person sees it. Usage: wait_ready.py URL READY_FILE PID...; it gives up at
once (exit 2) when one of the PIDs (the processes run.sh started) has exited.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = 60.0
SETTLE = 0.5  # Celery logs "ready." just after it signals readiness


def answers(url: str) -> bool:
    """True once the server answers at all (503 "degraded" included: it is serving)."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(url: str, ready_file: str, *pids: str) -> int:
    deadline = time.monotonic() + TIMEOUT
    web = worker = False
    while not (web and worker) and time.monotonic() < deadline:
        if not all(alive(int(pid)) for pid in pids):
            return 2
        web = web or answers(url)
        worker = worker or Path(ready_file).exists()
        time.sleep(0.2)
    time.sleep(SETTLE)
    return 0 if web and worker else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
