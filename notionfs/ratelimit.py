"""Thread-safe token-bucket rate limiter with an injectable clock and sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]

# Waits below this are float rounding in the slot arithmetic, not real waits.
_EPSILON_S = 1e-9


class TokenBucket:
    """Average ``rate_per_s`` requests per second, bursts of up to ``burst``.

    Implemented as GCRA (the "virtual scheduling" form of a token bucket): each caller
    reserves the next slot under the lock and sleeps outside it, so threads never sleep
    while holding the lock and are served in arrival order.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._interval_s = 1.0 / rate_per_s
        self._tolerance_s = (burst - 1) * self._interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # Theoretical arrival time of the next request; "now" means a full bucket.
        self._tat = clock()

    def acquire(self, max_wait_s: float | None = None) -> float | None:
        """Take one token, sleeping until it is available; return the seconds waited.

        With ``max_wait_s``, give up instead (returning None, taking nothing) when the
        wait would be longer.
        """
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait_s = tat - self._tolerance_s - now
            wait_s = wait_s if wait_s > _EPSILON_S else 0.0
            if max_wait_s is not None and wait_s > max_wait_s:
                return None
            self._tat = tat + self._interval_s
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s

    def pause(self, delay_s: float) -> None:
        """Let no request through for ``delay_s`` and empty the bucket (after a 429).

        Emptying it means the requests queued behind the pause resume at the average
        rate, not in a burst that would trip the server's limit again.
        """
        with self._lock:
            resume_at = self._clock() + max(0.0, delay_s)
            self._tat = max(self._tat, resume_at + self._tolerance_s)

    def wait_estimate_s(self) -> float:
        """Seconds the next ``acquire`` would wait (for logging and tests)."""
        with self._lock:
            now = self._clock()
            return max(0.0, max(self._tat, now) - self._tolerance_s - now)
