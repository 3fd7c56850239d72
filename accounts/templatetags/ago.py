"""`{{ when|ago }}`: "just now", "5 minutes ago", "in 2 hours" — never "0 minutes ago"."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

register = template.Library()

JUST_NOW = 60  # seconds; below this, minutes would read "0 minutes"


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago `value` was, in words; moments within a minute either way are "just now"."""
    if not isinstance(value, datetime):
        return ""
    now = now or timezone.now()
    seconds = (now - value).total_seconds()
    if abs(seconds) < JUST_NOW:
        return "just now"
    if seconds < 0:
        return f"in {timeuntil(value, now)}"
    return f"{timesince(value, now)} ago"
