"""A profile's schedule goes with it, however the profile is deleted (directly or with its project)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import ScannerProfile
from .profiles import delete_schedule


@receiver(post_delete, sender=ScannerProfile, dispatch_uid="projects.profile_schedule_cleanup")
def delete_profile_schedule(sender, instance: ScannerProfile, **kwargs) -> None:
    delete_schedule(instance.periodic_task_id)
