"""Flights and runs: the blocks a cache is fetching, and the ranged requests that fetch them.

Contiguous missing blocks are fetched with one ranged request (``RangeFetcher``), a *run*,
split into blocks as the bytes stream in: a reader waiting for the first block of a large
read-ahead does not wait for the last.

Each claimed block is a *flight*: other readers of that block join it (single flight), see
its error if it fails, and a failed block is never cached.

Why these flights are not flight.py's ``SingleFlight`` (the primitive every other single
flight uses): (1) claiming a block must be one step with looking it up in the LRU and
reserving its bytes, under the cache's one lock; a second table with its own lock would
split that step (two readers could both miss and fetch, or reservations overshoot the
capacity). (2) One ranged request settles many blocks, each as its bytes arrive; a
SingleFlight run has one key and one result at its end. (3) A run has no owner thread: when
its puller stops short (a reader that needed only the first blocks, a read-ahead cancelled
by a seek or a close), a waiter takes over the transfer, whereas a SingleFlight joiner
would wait for an owner that is gone. (4) A flight may settle with neither bytes nor error
(abandoned), and its readers plan again. And the read path is hot: a slotted object per
block, no per-block future and no second lock. Waiters here need no deadline of their own:
the FUSE adapter bounds the whole read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from .blockextents import Extent, Pieces
from .errors import ResponseMismatch

__all__ = ["Claim", "Flight", "RangeFetcher", "Run", "RunOwner", "group_runs", "pull_all"]

RangeFetcher = Callable[[int, int], Iterator[bytes]]
"""``fetch(start, end)`` yields the bytes of ``[start, end)`` in order, exactly that many."""


class RunOwner(Protocol):
    """The cache whose blocks a run fetches: the run reports to it as the bytes arrive.

    Its bookkeeping, private to it: only its runs call these (each takes the cache's lock).
    """

    block_size_bytes: int

    def _count_fetch(self) -> None: ...

    def _complete(self, key: str, claim: Claim, parts: list[bytes]) -> None: ...

    def _settle(
        self, key: str, claims: list[Claim], error: BaseException | None, received: int
    ) -> None: ...


class Flight:
    """One block being fetched by a run; settled once: extent, error, or neither (abandoned)."""

    __slots__ = ("run", "position", "extent", "error")

    def __init__(self) -> None:
        self.run: Run | None = None  # None once settled
        self.position = 0  # index of this block's claim in the run
        self.extent: Extent | None = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Until settled: wait for the run's puller, or pull when nobody does."""
        run = self.run
        if run is not None:
            run.pull(self.position)


@dataclass(slots=True)
class Claim:
    """A block a run fetches: bytes ``[lo, hi)`` of it, merged into ``base``."""

    index: int
    lo: int
    hi: int
    base: Extent | None
    flight: Flight
    prefetch: bool
    reserved_bytes: int  # what it adds to the cache at most: the new bytes and the base


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


class Run:
    """Adjacent claimed blocks fetched with one ranged request, split as the bytes arrive.

    One thread at a time receives (the *puller*: the reader that claimed the blocks, or a
    read-ahead worker). Others needing a block of the run wait for that block only, woken
    as each block completes; if the puller stops short of their block (it needed only the
    first ones, or was abandoned), a waiter becomes the puller: no block waits for nobody.
    """

    def __init__(
        self,
        cache: RunOwner,
        key: str,
        claims: list[Claim],
        fetch: RangeFetcher,
        cancelled: threading.Event | None,
    ) -> None:
        self._cache = cache
        self._key = key
        self.claims = claims
        self._fetch = fetch
        self._cancelled = cancelled
        block = cache.block_size_bytes
        self.start = claims[0].index * block + claims[0].lo
        self.end = claims[-1].index * block + claims[-1].hi
        self._cond = threading.Condition()
        self._busy = False  # a puller is receiving
        self._abandon = False
        self._chunks: Iterator[bytes] | None = None
        self._pieces = Pieces()
        self._have = 0  # bytes of the current claim received
        self._received = 0
        self.done = 0  # claims completed
        self.finished = False
        for position, claim in enumerate(claims):
            claim.flight.run, claim.flight.position = self, position

    def pull(self, position: int) -> None:
        """Until claim ``position`` is settled: wait for the puller, or be it.

        The puller's errors propagate to it; waiters find them on their flights.
        """
        with self._cond:
            while self._busy and not self._settled(position):
                self._cond.wait()
            if self._settled(position):
                return
            self._busy = True
        try:
            while not self._settled(position) and not _is_set(self._cancelled):
                self._step()
        finally:
            with self._cond:
                if (self._abandon or _is_set(self._cancelled)) and not self.finished:
                    self._finish(None)
                self._busy = False
                self._cond.notify_all()

    def abandon(self) -> None:
        """End the run, now or when its puller is done with the block it needs."""
        with self._cond:
            self._abandon = True
            if not self._busy and not self.finished:
                self._finish(None)
                self._cond.notify_all()

    def due(self, position: int) -> int:
        """Bytes of claim ``position`` not received yet (read without the lock: an estimate
        for scheduling, exact once the run is quiet)."""
        claims = self.claims
        if self.finished or position < self.done or position >= len(claims):
            return 0
        claim = claims[position]
        return claim.hi - claim.lo - (self._have if position == self.done else 0)

    def _settled(self, position: int) -> bool:
        return self.finished or self.done > position

    def _step(self) -> None:
        """Receive one chunk (as the puller)."""
        try:
            if self._chunks is None:
                self._cache._count_fetch()
                self._chunks = self._fetch(self.start, self.end)
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ResponseMismatch(
                    f"body ended after {self._received} of {self.end - self.start} bytes"
                )
            self._take(chunk)
        except BaseException as exc:
            if not self.finished:
                self._finish(exc)
            raise

    def _take(self, chunk: bytes) -> None:
        """Split a chunk into the run's blocks, completing each one as it fills."""
        chunk = chunk if type(chunk) is bytes else bytes(chunk)
        self._received += len(chunk)
        pos, claims = 0, self.claims
        while pos < len(chunk) and self.done < len(claims):
            claim = claims[self.done]
            want = claim.hi - claim.lo
            take = min(len(chunk) - pos, want - self._have)
            self._pieces.add(chunk if take == len(chunk) else chunk[pos : pos + take])
            pos, self._have = pos + take, self._have + take
            if self._have == want:
                self._cache._complete(self._key, claim, self._pieces.take())
                with self._cond:
                    self.done, self._have = self.done + 1, 0
                    self._cond.notify_all()
        if self.done == len(claims):
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        """Close the transfer and settle what it did not complete (by the puller, or idle)."""
        self.finished = True
        chunks, self._chunks = self._chunks, None
        try:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator closes its HTTP response
        finally:
            self._cache._settle(self._key, self.claims[self.done :], error, self._received)
            self.claims = []  # a finished run must not keep its blocks' bytes alive


def group_runs(claims: list[Claim], block_size_bytes: int) -> list[list[Claim]]:
    """Group claims that one ranged request can serve: adjacent blocks, no gap between."""
    runs: list[list[Claim]] = []
    for claim in claims:
        if runs:
            prev = runs[-1][-1]
            if prev.index + 1 == claim.index and prev.hi == block_size_bytes and claim.lo == 0:
                runs[-1].append(claim)
                continue
        runs.append([claim])
    return runs


def pull_all(runs: list[Run]) -> None:
    """Pull each run to its end; if one fails, the rest are abandoned, not left claimed."""
    for number, run in enumerate(runs):
        try:
            run.pull(len(run.claims) - 1)
        except BaseException:
            for later in runs[number + 1 :]:
                later.abandon()
            raise
