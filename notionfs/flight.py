"""Single flight: one piece of work per key, many waiters, each with its own deadline.

A caller that finds no flight for its key becomes the owner and runs the work on its own
thread; callers that arrive while it runs join the flight and wait for its outcome (result or
exception), each bounded by its own timeout. A waiter that gives up does not cancel the work:
the owner finishes it and later callers benefit. The flight is forgotten once it lands, so
the next caller after a failure tries again.

No lock is held while the work runs: the table's lock guards only the lookup and the
hand-over, so a slow Notion call never blocks a caller that needs another key, nor a caller
that only asks whether a flight is under way.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .errors import DeadlineExceeded

__all__ = ["Flight", "SingleFlight"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Flight(Generic[T]):
    """The outcome of one run, awaited by any number of threads."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def done(self) -> bool:
        return self._future.done()

    def set_result(self, value: T) -> None:
        self._future.set_result(value)

    def set_exception(self, exc: BaseException) -> None:
        self._future.set_exception(exc)

    def wait(self, timeout_s: float | None, what: str = "the answer") -> T:
        """The result (or the owner's exception); DeadlineExceeded after ``timeout_s``."""
        try:
            return self._future.result(timeout=None if timeout_s is None else max(0.0, timeout_s))
        except concurrent.futures.TimeoutError:
            raise DeadlineExceeded(f"{what}: no answer within {timeout_s:g} s") from None


class SingleFlight(Generic[K, T]):
    """At most one run per key at a time; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._flights: dict[K, Flight[T]] = {}

    def in_flight(self, key: K) -> bool:
        with self._lock:
            return key in self._flights

    def started_at(self, key: K) -> float | None:
        with self._lock:
            flight = self._flights.get(key)
            return None if flight is None else flight.started_at

    def run(
        self,
        key: K,
        work: Callable[[], T],
        *,
        timeout_s: float | None = None,
        from_start: bool = False,
        what: str = "the answer",
    ) -> T:
        """``work()``'s result, run once for every caller asking for ``key`` meanwhile.

        The owner runs ``work`` itself (no timeout applies to it: bound the work's own I/O).
        A joiner waits at most ``timeout_s``, counted from its own call, or from the flight's
        start with ``from_start`` (callers that start together, such as the size probes of one
        listing, then fail together instead of one deadline after another).
        """
        with self._lock:
            flight = self._flights.get(key)
            owner = flight is None
            if flight is None:
                flight = self._flights[key] = Flight(self._clock())
        if not owner:
            if timeout_s is None or not from_start:
                return flight.wait(timeout_s, what)
            try:
                return flight.wait(timeout_s - (self._clock() - flight.started_at), what)
            except DeadlineExceeded:
                raise DeadlineExceeded(
                    f"{what}: no answer within {timeout_s:g} s of its start"
                ) from None
        try:
            value = work()
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
