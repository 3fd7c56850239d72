"""HTTP helpers every connector's door shares: bounded retries that honour `Retry-After`. No Django here."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from urllib3.exceptions import MaxRetryError, NameResolutionError, ReadTimeoutError, ResponseError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry


def parse_retry_after(
    value: str | None, *, minimum: float = 1.0, maximum: float = 300.0, now: float | None = None
) -> float | None:
    """Seconds to wait from a `Retry-After` value (seconds or HTTP-date), clamped; None when unusable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, minimum), maximum)


class BoundedRetry(Retry):
    """urllib3 `Retry` that clamps `Retry-After`, backs off on garbage, and stops at a time budget.

    When the next wait would pass `budget` seconds (counted from the first failure), it stops and the
    caller gets the last 429/5xx response. DNS, TLS and read-timeout failures are never retried here:
    they are fast, certain or already slow; the background task retries them later.
    """

    RETRY_AFTER_STATUS_CODES = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        *args: Any,
        budget: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.started = started
        self._sleep = sleep
        self._clock = clock
        self._planned: float | None = None

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("budget", self.budget)
        kw.setdefault("sleep", self._sleep)
        kw.setdefault("clock", self._clock)
        kw.setdefault("started", self.started if self.started is not None else self._clock())
        return super().new(**kw)

    def next_delay(self, response: Any = None) -> float:
        """The wait before the next attempt: Retry-After when usable, else exponential backoff + jitter."""
        if response is not None and self.respect_retry_after_header:
            header = response.headers.get("Retry-After")
            seconds = parse_retry_after(header, maximum=self.retry_after_max)
            if seconds is not None:
                return seconds
        failures = max(len(self.history), 1)
        base = min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1))
        return base + random.uniform(0, base / 4)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BoundedRetry:
        if error is not None:
            if isinstance(error, ReadTimeoutError) or (
                self._is_read_error(error) and (method or "").upper() != "GET"
            ):
                raise error.with_traceback(_stacktrace)
            if isinstance(error, (NameResolutionError, Urllib3SSLError)):
                raise MaxRetryError(_pool, url, error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        delay = retry.next_delay(response)
        if retry._clock() - retry.started + delay > retry.budget:
            reason = error or ResponseError(f"retry budget of {retry.budget:g} s spent")
            raise MaxRetryError(_pool, url, reason) from reason
        retry._planned = delay
        return retry

    def sleep(self, response: Any = None) -> None:
        delay = self._planned if self._planned is not None else self.next_delay(response)
        if delay > 0:
            self._sleep(delay)
