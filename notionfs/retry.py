"""One retry policy for every HTTP call: what is retried, how long to wait, when to stop.

Following Notion's SDKs and RFC 9110:

- 429 (rate limited) and 529 (Notion's ``service_overload``) mean the request was refused
  before it did anything: always retried, reads and writes alike.
- 500, 502, 503 and 504, and transport failures (timeouts, dropped connections, broken
  answers), are retried for reads only: a write may have been applied before the answer was
  lost, and sending it again could apply it twice.
- A write is retried after a transport failure only when the request provably never left
  (no connection could be made or taken from the pool).
- The wait is the answer's ``Retry-After`` (delta-seconds or an HTTP-date, measured against
  the answer's own ``Date`` so clock skew between the hosts does not matter) when it gives
  one, otherwise capped exponential backoff with jitter: ``min(cap, base * 2**attempt)``
  times a random factor in [0.5, 1], so clients that failed together do not retry in step.
- A call stops after ``max_retries`` retries, or as soon as the next wait would end past its
  deadline (counted from its first attempt): a wait that cannot help is not waited.

The clock, the sleep, the wall clock (for HTTP-dates) and the random source are injected,
so tests run the policy without waiting and with known jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

import httpx

from .config import Settings

__all__ = [
    "READ_RETRY_STATUSES",
    "RETRY_STATUSES",
    "RetryPolicy",
    "retry_after_s",
    "retryable_error",
    "retryable_status",
]

RETRY_STATUSES = frozenset({429, 529})
"""Refused before anything was done: retried for every method."""
READ_RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""Transient server failures: retried for reads only (a write may have been applied)."""
# The request never left: no connection was made, or none could be taken from the pool.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have left and its answer was lost: safe to repeat only when it is a read.
_READ_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def retryable_status(status: int, *, read: bool) -> bool:
    """Whether an answer with ``status`` is worth sending the request again."""
    return status in RETRY_STATUSES or (read and status in READ_RETRY_STATUSES)


def retryable_error(exc: BaseException, *, read: bool) -> bool:
    """Whether a request that failed with ``exc`` (an httpx error) may be sent again."""
    if isinstance(exc, _NOT_SENT_ERRORS):
        return True
    return read and isinstance(exc, _READ_RETRY_ERRORS)


def retry_after_s(headers: Mapping[str, str], now_epoch_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header; None when absent or unusable.

    An HTTP-date is measured against the answer's ``Date`` header when it has one (the
    server's own clock), otherwise against ``now_epoch_s``.
    """
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return _seconds_until_date(raw, headers.get("date"), now_epoch_s)
    return seconds if seconds >= 0 else None


def _seconds_until_date(raw: str, date_header: str | None, now_epoch_s: float) -> float | None:
    try:
        target_s = parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None
    reference_s = now_epoch_s
    if date_header is not None:
        try:
            reference_s = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            pass
    return max(0.0, target_s - reference_s)


class RetryPolicy:
    """The rules above with their numbers. Stateless between calls: share one freely.

    A call keeps its own ``started`` (from ``now()``) and attempt count; the policy answers
    how long to wait before the next attempt (``delay_for_status`` / ``delay_for_error``,
    None when the failure is final) and whether that wait is still allowed (``allows``).
    """

    def __init__(
        self,
        *,
        max_retries: int,
        backoff_base_s: float,
        backoff_cap_s: float,
        deadline_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.deadline_s = deadline_s
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> RetryPolicy:
        """The policy of one mount: retries, backoff and ``op_deadline_s`` from settings."""
        return cls(
            max_retries=settings.max_retries,
            backoff_base_s=settings.backoff_base_s,
            backoff_cap_s=settings.backoff_cap_s,
            deadline_s=settings.op_deadline_s,
            clock=clock,
            sleep=sleep,
            wall_clock=wall_clock,
            rng=rng,
        )

    def now(self) -> float:
        """The policy's clock: a call's ``started`` comes from here."""
        return self._clock()

    def backoff_s(self, attempt: int) -> float:
        """Wait before retry number ``attempt + 1``: capped exponential, jittered."""
        ceiling_s = min(self.backoff_cap_s, self.backoff_base_s * (2.0**attempt))
        return ceiling_s * self._rng.uniform(0.5, 1.0)

    def retry_after_s(self, headers: Mapping[str, str]) -> float | None:
        """``Retry-After`` of an answer, in seconds (see the module function)."""
        return retry_after_s(headers, self._wall_clock())

    def delay_for_status(
        self, status: int, headers: Mapping[str, str], attempt: int, *, read: bool
    ) -> float | None:
        """Seconds before retrying an answer with ``status``; None when it is final."""
        if not retryable_status(status, read=read):
            return None
        after_s = self.retry_after_s(headers)
        return after_s if after_s is not None else self.backoff_s(attempt)

    def delay_for_error(self, exc: BaseException, attempt: int, *, read: bool) -> float | None:
        """Seconds before retrying after transport error ``exc``; None when it is final."""
        return self.backoff_s(attempt) if retryable_error(exc, read=read) else None

    def allows(self, delay_s: float, attempt: int, started: float) -> bool:
        """Retry number ``attempt + 1`` after ``delay_s``: retries remain, and the wait
        ends within the deadline of a call that began at ``started``."""
        if attempt >= self.max_retries:
            return False
        if self.deadline_s is None:
            return True
        return self._clock() - started + delay_s <= self.deadline_s

    def sleep(self, delay_s: float) -> None:
        self._sleep(delay_s)
