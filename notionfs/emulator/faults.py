"""Fault switches, the rate limiter and request counters of the emulated Notion API."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ERROR_STATUSES",
    "ApiFaults",
    "ApiCounters",
    "ApiRequest",
    "TokenBucket",
    "WriteFaults",
    "WRITE_ROUTES",
    "retry_after_header",
]

# The transient statuses Notion answers with; 529 is "service_overload".
DEFAULT_ERROR_STATUSES: tuple[int, ...] = (500, 502, 503, 504, 529)

# The routes that change something in Notion (the targets of WriteFaults).
WRITE_ROUTES: tuple[str, ...] = (
    "POST /v1/file_uploads",
    "POST /v1/file_uploads/{id}/send",
    "POST /v1/file_uploads/{id}/complete",
    "POST /v1/pages",
    "PATCH /v1/pages/{id}",
    "POST /v1/pages/{id}/move",
    "PATCH /v1/blocks/{id}",
    "DELETE /v1/blocks/{id}",
    "PATCH /v1/blocks/{id}/children",
)


@dataclass
class WriteFaults:
    """Switches for the write routes only (reads are untouched); all off by default.

    Each switch is consumed as it fires, so a test arms exactly the failures it wants:
    ``fail_next(503)`` answers the next write with 503 without applying it;
    ``cut_next()`` applies the next write, then drops the connection unanswered (the
    client cannot tell whether it happened); ``fail_part(2)`` makes the next send of part
    2 of a multi_part upload fail (the part is not stored); ``remote_edit_next(id)``
    has "someone else" edit that page or block just before the next workspace write.
    ``route`` narrows a switch to one route label, e.g. "PATCH /v1/blocks/{id}/children".
    """

    _statuses: list[tuple[int, str | None]] = field(default_factory=list)
    _cuts: list[str | None] = field(default_factory=list)
    _parts: dict[int, list[int]] = field(default_factory=dict)
    _remote_edits: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def fail_next(self, *statuses: int, route: str | None = None) -> None:
        """Answer the next write requests with these statuses, one request each (429
        carries Retry-After from ``ApiFaults.retry_after_s``); nothing is applied."""
        _check_route(route)
        with self._lock:
            self._statuses.extend((status, route) for status in statuses)

    def cut_next(self, count: int = 1, *, route: str | None = None) -> None:
        """Apply the next ``count`` writes, then close each connection without answering."""
        _check_route(route)
        with self._lock:
            self._cuts.extend([route] * count)

    def fail_part(self, part_number: int, *, times: int = 1, status: int = 500) -> None:
        """The next ``times`` sends of ``part_number`` answer ``status``; the part is lost."""
        with self._lock:
            self._parts.setdefault(part_number, []).extend([status] * times)

    def remote_edit_next(self, object_id: str) -> None:
        """Just before the next page or block write is applied, edit ``object_id`` (a
        page, a block, a file block) as another person would: new content, a later
        last_edited_time."""
        with self._lock:
            self._remote_edits.append(object_id)

    @property
    def armed(self) -> bool:
        """Whether any switch is still waiting to fire."""
        with self._lock:
            parts = any(self._parts.values())
            return bool(self._statuses or self._cuts or parts or self._remote_edits)

    def take_status(self, route: str) -> int | None:
        with self._lock:
            for i, (status, wanted) in enumerate(self._statuses):
                if wanted in (None, route):
                    del self._statuses[i]
                    return status
            return None

    def take_cut(self, route: str) -> bool:
        with self._lock:
            for i, wanted in enumerate(self._cuts):
                if wanted in (None, route):
                    del self._cuts[i]
                    return True
            return False

    def take_part_failure(self, part_number: int) -> int | None:
        with self._lock:
            queued = self._parts.get(part_number)
            return queued.pop(0) if queued else None

    def take_remote_edits(self) -> list[str]:
        with self._lock:
            taken, self._remote_edits = self._remote_edits, []
            return taken

    def reset(self) -> None:
        with self._lock:
            self._statuses.clear()
            self._cuts.clear()
            self._parts.clear()
            self._remote_edits.clear()


def _check_route(route: str | None) -> None:
    if route is not None and route not in WRITE_ROUTES:
        raise ValueError(f"{route!r} is not a write route; one of {', '.join(WRITE_ROUTES)}")


@dataclass
class ApiFaults:
    """Mutable switches a test flips to make the API misbehave; all off by default.

    ``error_rate`` draws from a PRNG seeded with ``seed`` so a run is repeatable.
    ``force_429`` makes the next N authenticated requests answer 429. The rate limit
    (``rate_limit_rps`` = 0 means off) may be changed while the emulator runs.
    ``latency_s`` delays every answer, 429s and errors too (a WAN's round trip plus Notion's
    own time); the server waits it out on the request's own thread, holding no lock. These apply
    to every route; ``writes`` holds the switches for the write routes only.
    """

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = DEFAULT_ERROR_STATUSES
    force_429: int = 0
    retry_after_s: float = 1.0
    latency_s: float = 0.0
    rate_limit_rps: float = 0.0
    rate_limit_burst: int = 10
    seed: int = 0
    writes: WriteFaults = field(default_factory=WriteFaults)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _rng_seed: int | None = field(default=None, repr=False, compare=False)

    def take_forced_429(self) -> bool:
        """Consume one forced 429, if any are left."""
        with self._lock:
            if self.force_429 > 0:
                self.force_429 -= 1
                return True
            return False

    def draw_error_status(self) -> int | None:
        """The status of an injected failure for this request, or None (no failure)."""
        with self._lock:
            if self.error_rate <= 0 or not self.error_statuses:
                return None
            if self._rng_seed != self.seed:
                self._rng.seed(self.seed)
                self._rng_seed = self.seed
            if self._rng.random() >= self.error_rate:
                return None
            return self._rng.choice(self.error_statuses)

    def reset(
        self, *, rate_limit_rps: float = 0.0, rate_limit_burst: int = 10, latency_s: float = 0.0
    ) -> None:
        """Back to defaults (in place: tests may hold a reference to this object)."""
        with self._lock:
            self.error_rate = 0.0
            self.error_statuses = DEFAULT_ERROR_STATUSES
            self.force_429 = 0
            self.retry_after_s = 1.0
            self.latency_s = latency_s
            self.rate_limit_rps = rate_limit_rps
            self.rate_limit_burst = rate_limit_burst
            self.seed = 0
            self._rng_seed = None
        self.writes.reset()


def retry_after_header(wait_s: float) -> str:
    """Retry-After as Notion sends it: whole seconds, rounded up."""
    return str(max(0, math.ceil(wait_s)))


class TokenBucket:
    """Thread-safe token bucket; rate and burst are read on every call (settable live)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: float | None = None
        self._last_s = 0.0

    def try_acquire(self, rate_per_s: float, burst: int) -> float:
        """Take one token: 0.0 on success, else the seconds until one is available."""
        if rate_per_s <= 0:
            return 0.0
        capacity = float(max(1, burst))
        with self._lock:
            now_s = self._clock()
            if self._tokens is None:
                self._tokens = capacity
            else:
                elapsed_s = max(0.0, now_s - self._last_s)
                self._tokens = min(capacity, self._tokens + elapsed_s * rate_per_s)
            self._last_s = now_s
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / rate_per_s

    def reset(self) -> None:
        with self._lock:
            self._tokens = None


@dataclass(frozen=True)
class ApiRequest:
    """One answered API request, as the request log keeps it."""

    method: str
    path: str
    route: str  # template such as "GET /v1/blocks/{id}/children"
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON body, or None
    query: str = ""  # the raw query string
    # When it was answered (time.monotonic): tests check the pauses between requests.
    at_s: float = field(default_factory=time.monotonic)


class ApiCounters:
    """Thread-safe request counters and log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.log: list[ApiRequest] = []

    def record(self, request: ApiRequest) -> None:
        with self._lock:
            self.total += 1
            self.by_route[request.route] += 1
            self.by_status[request.status] += 1
            self.log.append(request)

    def calls(self, route: str) -> int:
        """How many requests hit ``route`` (e.g. "POST /v1/search"), whatever their status."""
        with self._lock:
            return self.by_route[route]

    def snapshot(self) -> ApiCounters:
        """A consistent copy that later requests do not change."""
        copy = ApiCounters()
        with self._lock:
            copy.total = self.total
            copy.by_route = Counter(self.by_route)
            copy.by_status = Counter(self.by_status)
            copy.log = list(self.log)
        return copy

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_route.clear()
            self.by_status.clear()
            self.log.clear()
