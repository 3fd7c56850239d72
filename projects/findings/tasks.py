"""Celery task of findings review (its name is the one it had in `projects.tasks`; beat calls it hourly)."""

from __future__ import annotations

from celery import shared_task

from .triage import expire_acceptances


@shared_task(name="projects.tasks.expire_risk_acceptances")
def expire_risk_acceptances() -> int:
    """Re-open findings whose risk acceptance has expired."""
    return expire_acceptances()
