"""Thread-safe token-bucket rate limiter with an injectable clock and sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .priority import in_background

__all__ = ["TokenBucket"]

# Waits below this are float rounding in the slot arithmetic, not real waits.
_EPSILON_S = 1e-9


class TokenBucket:
    """Average ``rate_per_s`` requests per second, bursts of up to ``burst``.

    Implemented as GCRA (the "virtual scheduling" form of a token bucket): each caller
    reserves the next slot under the lock and sleeps outside it, so threads never sleep
    while holding the lock and are served in arrival order.

    After a server 429, ``pause`` stops traffic for the Retry-After delay and halves the
    rate (down to 1/``max_slowdown`` of the configured one); the rate then climbs back
    linearly over ``recovery_s``. Halving rather than just pausing keeps a client whose
    configured rate is above the server's real limit from tripping it again and again.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        recovery_s: float = 60.0,
        max_slowdown: float = 8.0,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or recovery_s <= 0 or max_slowdown < 1:
            raise ValueError("need rate_per_s > 0, burst >= 1, recovery_s > 0, max_slowdown >= 1")
        self._max_rate_per_s = rate_per_s
        self._min_rate_per_s = rate_per_s / max_slowdown
        self._burst = burst
        self._recovery_s = recovery_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._waiting = 0  # foreground callers sleeping for their slot
        # Theoretical arrival time of the next request; "now" means a full bucket.
        self._tat = clock()
        # Rate right after the last slowdown, and when recovery from it began.
        self._reduced_rate_per_s = rate_per_s
        self._recovery_from = self._tat

    def rate_per_s(self) -> float:
        """The rate allowed now (the configured one unless recovering from a 429)."""
        with self._lock:
            return self._rate_at(self._clock())

    def _rate_at(self, now: float) -> float:
        progress = min(1.0, max(0.0, now - self._recovery_from) / self._recovery_s)
        reduced = self._reduced_rate_per_s
        return reduced + (self._max_rate_per_s - reduced) * progress

    def _wait_at(self, now: float, interval_s: float) -> float:
        tolerance_s = (self._burst - 1) * interval_s
        wait_s = max(self._tat, now) - tolerance_s - now
        return wait_s if wait_s > _EPSILON_S else 0.0

    def acquire(self, max_wait_s: float | None = None) -> float | None:
        """Take one token, sleeping until it is available; return the seconds waited.

        With ``max_wait_s``, give up instead (returning None, taking nothing) when the
        wait would be longer. A call made in the background (``priority.background``)
        goes through ``_acquire_background``.
        """
        if in_background():
            return self._acquire_background(max_wait_s)
        with self._lock:
            now = self._clock()
            interval_s = 1.0 / self._rate_at(now)
            wait_s = self._wait_at(now, interval_s)
            if max_wait_s is not None and wait_s > max_wait_s:
                return None
            self._tat = max(self._tat, now) + interval_s
            if wait_s > 0:
                self._waiting += 1
        if wait_s > 0:
            try:
                self._sleep(wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
        return wait_s

    def _acquire_background(self, max_wait_s: float | None) -> float | None:
        """A background token: only when no foreground call waits and at least half the
        burst stays in the bucket for the calls a program will wait on.

        It never reserves a slot ahead (so never queues in front of a waiting call): a
        foreground call arriving right after waits at most one interval behind it, and
        finds half a burst ready.
        """
        started = self._clock()
        while True:
            if not in_background():  # promoted: a program now waits on this work
                remaining = None if max_wait_s is None else max_wait_s - (self._clock() - started)
                return self.acquire(remaining)
            with self._lock:
                now = self._clock()
                interval_s = 1.0 / self._rate_at(now)
                spare_s = max(0, self._burst - 1 - self._burst // 2) * interval_s
                if self._waiting == 0 and self._tat <= now + spare_s + _EPSILON_S:
                    self._tat = max(self._tat, now) + interval_s
                    return now - started
                wait_s = max(self._tat - spare_s - now, interval_s / 4)
            if max_wait_s is not None and now - started + wait_s > max_wait_s:
                return None
            self._sleep(wait_s)

    def pause(self, delay_s: float) -> None:
        """After a 429: let nothing through for ``delay_s``, empty the bucket, halve the rate.

        Emptying it means the requests queued behind the pause resume at the (reduced)
        average rate, not in a burst that would trip the server's limit again.
        """
        with self._lock:
            now = self._clock()
            resume_at = now + max(0.0, delay_s)
            self._reduced_rate_per_s = max(self._min_rate_per_s, self._rate_at(now) / 2)
            self._recovery_from = resume_at
            tolerance_s = (self._burst - 1) / self._reduced_rate_per_s
            self._tat = max(self._tat, resume_at + tolerance_s)

    def wait_estimate_s(self) -> float:
        """Seconds the next ``acquire`` would wait (for messages and tests)."""
        with self._lock:
            now = self._clock()
            return self._wait_at(now, 1.0 / self._rate_at(now))
