"""What the webhooks app listens to: a finished run (the outbox row) and a profile saved with its webhook URL."""

from __future__ import annotations

from django.db.models.signals import pre_save
from django.dispatch import receiver

from projects.models import ScannerProfile, ScanRun
from projects.signals import run_finished

from .services import queue_run_event


@receiver(run_finished, dispatch_uid="webhooks.queue_run_event")
def _queue_run_event(sender, run: ScanRun, **kwargs) -> None:
    """Sent inside the transaction that finishes the run, so the outbox row commits with it or not at all."""
    queue_run_event(run)


@receiver(pre_save, sender=ScannerProfile, dispatch_uid="webhooks.reenable_on_save")
def _reenable_on_save(sender, instance: ScannerProfile, update_fields=None, raw=False, **kwargs) -> None:
    """Saving the profile with its webhook URL (new or the same) turns a 410-disabled webhook back on."""
    # Partial saves (update_fields) are other code's bookkeeping, not someone saving the profile.
    if raw or update_fields is not None or not instance.pk:
        return
    if not instance.webhook_url or not instance.webhook_disabled_reason:
        return
    stored = ScannerProfile.objects.filter(pk=instance.pk).values("webhook_disabled_reason").first()
    # Only when this save is not itself what sets the reason.
    if stored and stored["webhook_disabled_reason"] == instance.webhook_disabled_reason:
        instance.webhook_disabled_reason = ""
