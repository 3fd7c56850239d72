"""Signals the projects app sends, for apps above it to subscribe to (it never imports them)."""

from __future__ import annotations

from django.dispatch import Signal

# A run ended (succeeded or failed): sent with `run=`, inside the transaction that records its end, so a receiver's
# writes (the webhooks outbox) commit with the run's outcome or not at all.
run_finished = Signal()
