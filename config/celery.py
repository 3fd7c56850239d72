"""The Celery app: settings come from Django's under the CELERY_ namespace."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tenable_console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _touch_ready_file(**kwargs) -> None:
    """Tell `scripts/run.sh` the worker is ready (it names a file in CELERY_READY_FILE), so its banner comes last."""
    path = os.environ.get("CELERY_READY_FILE")
    if path:
        Path(path).touch()
