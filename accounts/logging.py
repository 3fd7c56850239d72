"""Logging filters: secrets removed from every record (RELIABILITY S5), the request id added to it (W9)."""

from __future__ import annotations

import logging
import re

from django_guid import get_guid

_PATTERNS = [
    re.compile(r"(?i)(accessKey|secretKey)=[^;\s'\"]+"),
    re.compile(r"(?i)(x-apikeys['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|token)\s+)[^\s'\"]+"),
    re.compile(r"(whsec_)[A-Za-z0-9+/=]+"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + ("=" if m.group(1)[-1:].isalpha() else "") + "[redacted]", text
        )
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (django-guid) on the record as `request_id`; "-" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_guid() or "-"
        return True
