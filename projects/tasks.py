"""The projects app's Celery tasks, gathered where Celery's autodiscovery looks (`<app>.tasks`).

Each room defines its own; their names stay `projects.tasks.<name>` for queued messages, routes and beat.
"""

from .findings.tasks import expire_risk_acceptances
from .runs.tasks import import_uploaded_file, run_scan, run_scheduled_profile, sweep_stale_runs

__all__ = [
    "expire_risk_acceptances",
    "import_uploaded_file",
    "run_scan",
    "run_scheduled_profile",
    "sweep_stale_runs",
]
