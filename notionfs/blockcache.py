"""Byte-bounded, thread-safe, single-flight block cache, and the sequential read-ahead on it.

Files are cut into blocks of ``block_size_bytes``; the cache maps ``(file_key, block_index)``
to an *extent*: one contiguous run of bytes inside that block (usually the whole block; a
probed head, a right-sized random read or the file's last block give shorter ones). A read
asks for the bytes it needs; a block that only partly covers them is extended by fetching
just the missing part, so a probed head is never fetched twice and a random 256 KiB read
costs about 256 KiB, not a whole block.

Contiguous missing blocks are fetched with one ranged request (``RangeFetcher``) and split as
the bytes stream in, so a reader waiting for the first block of a large read-ahead does not
wait for the last. Each claimed block is a *flight*: other readers of that block wait for it
(single flight), see its error if it fails, and a failed block is never cached. Bytes being
fetched are reserved against the capacity, so cached + in-flight bytes never exceed it (a
demand read larger than half the capacity is the one exception: it is served anyway).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cachetools import LRUCache

from .config import Settings
from .errors import NotionFSError, ResponseMismatch

__all__ = ["BlockCache", "CacheStats", "FileReader", "RangeFetcher", "ReadaheadPolicy"]

logger = logging.getLogger(__name__)

RangeFetcher = Callable[[int, int], Iterator[bytes]]
"""``fetch(start, end)`` yields the bytes of ``[start, end)`` in order, exactly that many."""

# (offset of the first cached byte inside the block, the cached bytes)
_Extent = tuple[int, bytes]


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made. A hit or miss is one block looked up by a read."""

    hits: int
    misses: int
    fetches: int  # ranged requests made through the cache (one per run of blocks)
    bytes_fetched: int
    evictions: int  # blocks dropped to stay within capacity


class _LRU(LRUCache[tuple[str, int], _Extent]):
    """cachetools' LRU, bounded in bytes, counting evictions."""

    def __init__(self, capacity_bytes: int) -> None:
        super().__init__(capacity_bytes, getsizeof=_extent_size)
        self.evictions = 0

    def popitem(self) -> tuple[tuple[str, int], _Extent]:
        item = super().popitem()
        self.evictions += 1
        return item


def _extent_size(extent: _Extent) -> int:
    return len(extent[1])


class _Flight:
    """One block being fetched. Settled exactly once: extent, error, or neither (abandoned)."""

    __slots__ = ("done", "extent", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.extent: _Extent | None = None
        self.error: BaseException | None = None


@dataclass(slots=True)
class _Claim:
    """A block this thread fetches: bytes ``[lo, hi)`` of it, merged into ``base``."""

    index: int
    lo: int
    hi: int
    base: _Extent | None
    flight: _Flight
    prefetch: bool


def _covers(extent: _Extent | None, lo: int, hi: int) -> bool:
    return extent is not None and extent[0] <= lo and hi <= extent[0] + len(extent[1])


def _missing(extent: _Extent | None, lo: int, hi: int) -> tuple[int, int]:
    """The bytes to fetch so that ``extent`` merged with them covers ``[lo, hi)``."""
    if extent is None:
        return lo, hi
    have_lo, have_hi = extent[0], extent[0] + len(extent[1])
    if have_lo <= lo <= have_hi:
        return have_hi, hi  # extend the cached bytes forward (a probed head, a sequential read)
    if lo < have_lo <= hi <= have_hi:
        return lo, have_lo  # extend them backward
    return lo, hi


def _merge(base: _Extent | None, lo: int, data: bytes) -> _Extent:
    """``data`` (at ``lo``) joined with ``base`` when they touch; otherwise ``data`` alone."""
    if base is None:
        return lo, data
    base_lo, base_data = base
    base_hi, hi = base_lo + len(base_data), lo + len(data)
    if hi < base_lo or lo > base_hi:
        return lo, data  # disjoint: one extent per block, keep the newest
    parts: list[bytes | memoryview] = []
    if base_lo < lo:
        parts.append(memoryview(base_data)[: lo - base_lo])
    parts.append(data)
    if base_hi > hi:
        parts.append(memoryview(base_data)[hi - base_lo :])
    if len(parts) == 1:
        return lo, data
    return min(lo, base_lo), b"".join(parts)


class BlockCache:
    """Blocks of many files, bounded in bytes, shared by every reader of a mount."""

    def __init__(self, capacity_bytes: int, block_size_bytes: int) -> None:
        if block_size_bytes <= 0 or capacity_bytes < block_size_bytes:
            raise ValueError("the cache must hold at least one block")
        self.capacity_bytes = capacity_bytes
        self.block_size_bytes = block_size_bytes
        # Read-ahead may reserve at most this much, so demand reads always find room.
        self.prefetch_budget_bytes = capacity_bytes // 2
        self._lock = threading.Lock()
        self._lru = _LRU(capacity_bytes)
        self._flights: dict[tuple[str, int], _Flight] = {}
        self._reserved_bytes = 0
        self._prefetch_reserved_bytes = 0
        self._hits = 0
        self._misses = 0
        self._fetches = 0
        self._bytes_fetched = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # ---- observation -------------------------------------------------------------------

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                fetches=self._fetches,
                bytes_fetched=self._bytes_fetched,
                evictions=self._lru.evictions,
            )

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    @property
    def reserved_bytes(self) -> int:
        """Bytes claimed by fetches still streaming in."""
        with self._lock:
            return self._reserved_bytes

    # ---- reads -------------------------------------------------------------------------

    def read(
        self,
        key: str,
        file_size: int,
        offset: int,
        end: int,
        fetch: RangeFetcher,
        *,
        whole_blocks: bool = False,
    ) -> bytes:
        """Bytes ``[offset, min(end, file_size))`` of file ``key``, fetching what is missing.

        ``whole_blocks``: a block that must be fetched is fetched to its end (the caller reads
        sequentially and will want the rest); otherwise only the bytes asked for are fetched.
        """
        end = min(end, file_size)
        if offset >= end:
            return b""
        first, last = offset // self.block_size_bytes, (end - 1) // self.block_size_bytes
        fetch_end = min(file_size, (last + 1) * self.block_size_bytes) if whole_blocks else end
        got: dict[int, _Extent] = {}
        pending = list(range(first, last + 1))
        first_pass = True
        while pending:
            claims, waits = self._plan(
                key, pending, (offset, end, fetch_end), got, count=first_pass
            )
            first_pass = False
            self._fetch_claims(key, claims, fetch, None)
            for claim in claims:
                assert claim.flight.extent is not None
                got[claim.index] = claim.flight.extent
            for index, flight in waits:
                flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                lo, hi = self._need(index, offset, end)
                if _covers(flight.extent, lo, hi):
                    assert flight.extent is not None
                    got[index] = flight.extent
            # Blocks whose flight fetched other bytes, or was abandoned, go round again.
            pending = [index for index in pending if index not in got]
        return self._assemble(got, first, last, offset, end)

    def prefetch(
        self,
        key: str,
        file_size: int,
        start: int,
        end: int,
        fetch: RangeFetcher,
        cancelled: threading.Event | None = None,
    ) -> None:
        """Bring ``[start, end)`` into the cache; blocks cached or in flight are skipped.

        Best effort: claims stop at the read-ahead budget, and setting ``cancelled`` stops
        the transfer at its next chunk (blocks completed stay; readers fetch the rest).
        """
        end = min(end, file_size)
        if start >= end:
            return
        claims: list[_Claim] = []
        with self._lock:
            for index in range(
                start // self.block_size_bytes, (end - 1) // self.block_size_bytes + 1
            ):
                lo, hi = self._need(index, start, end)
                extent = self._lru.get((key, index))
                if _covers(extent, lo, hi) or (key, index) in self._flights:
                    continue
                lo, hi = _missing(extent, lo, hi)
                if self._prefetch_reserved_bytes + hi - lo > self.prefetch_budget_bytes:
                    logger.debug("read-ahead of %s trimmed at block %d: budget spent", key, index)
                    break
                claims.append(self._claim(key, index, lo, hi, extent, prefetch=True))
        self._fetch_claims(key, claims, fetch, cancelled)

    def store(self, key: str, offset: int, data: bytes) -> None:
        """Keep bytes fetched elsewhere (a size probe's head); blocks in flight are left alone."""
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            index, lo = divmod(offset + pos, self.block_size_bytes)
            take = min(len(data) - pos, self.block_size_bytes - lo)
            piece = bytes(view[pos : pos + take]) if take < len(data) else data
            pos += take
            with self._lock:
                if (key, index) in self._flights:
                    continue
                self._insert(key, index, _merge(self._lru.get((key, index)), lo, piece))

    # ---- shared read-ahead pool ----------------------------------------------------------

    def background_executor(self, max_workers: int) -> concurrent.futures.Executor:
        """A pool for read-ahead shared by every file of this cache (made on first use)."""
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max_workers, thread_name_prefix="notionfs-readahead"
                )
            return self._executor

    def close(self) -> None:
        """Stop the pool made by background_executor, if any; cached bytes stay usable."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # ---- internals ---------------------------------------------------------------------

    def _need(self, index: int, start: int, end: int) -> tuple[int, int]:
        """The part of block ``index`` inside ``[start, end)``, relative to the block."""
        block_start = index * self.block_size_bytes
        return (
            max(start, block_start) - block_start,
            min(end, block_start + self.block_size_bytes) - block_start,
        )

    def _plan(
        self,
        key: str,
        pending: list[int],
        span: tuple[int, int, int],
        got: dict[int, _Extent],
        *,
        count: bool,
    ) -> tuple[list[_Claim], list[tuple[int, _Flight]]]:
        """Under the lock: take cached blocks, join flights, claim the rest for this thread.

        ``span`` is (start, end, fetch_end): the bytes needed, and how far a fetch may go.
        """
        start, end, fetch_end = span
        claims: list[_Claim] = []
        waits: list[tuple[int, _Flight]] = []
        with self._lock:
            for index in pending:
                lo, hi = self._need(index, start, end)
                extent = self._lru.get((key, index))
                if _covers(extent, lo, hi):
                    assert extent is not None
                    got[index] = extent
                    self._hits += count
                    continue
                self._misses += count
                flight = self._flights.get((key, index))
                if flight is not None:
                    waits.append((index, flight))
                else:
                    lo, hi = _missing(extent, lo, self._need(index, start, fetch_end)[1])
                    claims.append(self._claim(key, index, lo, hi, extent, prefetch=False))
        return claims, waits

    def _claim(
        self, key: str, index: int, lo: int, hi: int, base: _Extent | None, *, prefetch: bool
    ) -> _Claim:
        """Register a flight and reserve its bytes (lock held)."""
        flight = _Flight()
        self._flights[(key, index)] = flight
        self._reserved_bytes += hi - lo
        if prefetch:
            self._prefetch_reserved_bytes += hi - lo
        self._make_room(0)
        return _Claim(index, lo, hi, base, flight, prefetch)

    def _release(self, claim: _Claim) -> None:
        self._reserved_bytes -= claim.hi - claim.lo
        if claim.prefetch:
            self._prefetch_reserved_bytes -= claim.hi - claim.lo

    def _make_room(self, size_bytes: int) -> None:
        """Evict least recently used blocks until ``size_bytes`` more fit (lock held)."""
        lru = self._lru
        while lru and lru.currsize + self._reserved_bytes + size_bytes > self.capacity_bytes:
            lru.popitem()

    def _insert(self, key: str, index: int, extent: _Extent) -> None:
        self._lru.pop((key, index), None)
        self._make_room(len(extent[1]))
        self._lru[(key, index)] = extent

    def _runs(self, claims: list[_Claim]) -> list[list[_Claim]]:
        """Group claims that one ranged request can serve: adjacent blocks, no gap between."""
        runs: list[list[_Claim]] = []
        for claim in claims:
            if runs:
                prev = runs[-1][-1]
                if (
                    prev.index + 1 == claim.index
                    and prev.hi == self.block_size_bytes
                    and claim.lo == 0
                ):
                    runs[-1].append(claim)
                    continue
            runs.append([claim])
        return runs

    def _fetch_claims(
        self,
        key: str,
        claims: list[_Claim],
        fetch: RangeFetcher,
        cancelled: threading.Event | None,
    ) -> None:
        """Fetch every claim; whatever happens, each flight is settled before returning."""
        runs = self._runs(claims)
        for number, run in enumerate(runs):
            try:
                self._fetch_run(key, run, fetch, cancelled)
            except BaseException:
                for later in runs[number + 1 :]:
                    self._settle(key, later, None, 0)  # not attempted: waiters fetch it
                raise

    def _fetch_run(
        self,
        key: str,
        run: list[_Claim],
        fetch: RangeFetcher,
        cancelled: threading.Event | None,
    ) -> None:
        """One request for a run of claims, completing each block as its last byte arrives."""
        block = self.block_size_bytes
        start, end = run[0].index * block + run[0].lo, run[-1].index * block + run[-1].hi
        with self._lock:
            self._fetches += 1
        done = received = 0
        error: BaseException | None = None
        try:
            chunks = fetch(start, end)
            try:
                pieces: list[memoryview] = []
                have, want = 0, run[0].hi - run[0].lo
                for chunk in chunks:
                    received += len(chunk)
                    view = memoryview(chunk)
                    while view and done < len(run):
                        take = min(len(view), want - have)
                        pieces.append(view[:take])
                        view, have = view[take:], have + take
                        if have == want:
                            self._complete(key, run[done], b"".join(pieces))
                            done, pieces, have = done + 1, [], 0
                            if done < len(run):
                                want = run[done].hi - run[done].lo
                    if done == len(run) or (cancelled is not None and cancelled.is_set()):
                        break
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()  # a generator closes its HTTP response
            if done < len(run) and not (cancelled is not None and cancelled.is_set()):
                raise ResponseMismatch(f"body ended after {received} of {end - start} bytes")
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._settle(key, run[done:], error, received)

    def _complete(self, key: str, claim: _Claim, data: bytes) -> None:
        extent = _merge(claim.base, claim.lo, data)
        with self._lock:
            self._release(claim)
            self._insert(key, claim.index, extent)
            del self._flights[(key, claim.index)]
            claim.flight.extent = extent
        claim.flight.done.set()

    def _settle(
        self, key: str, claims: list[_Claim], error: BaseException | None, received: int
    ) -> None:
        """End flights that got no bytes: with ``error``, or abandoned when it is None."""
        with self._lock:
            self._bytes_fetched += received
            for claim in claims:
                self._release(claim)
                del self._flights[(key, claim.index)]
                claim.flight.error = error
        for claim in claims:
            claim.flight.done.set()

    def _assemble(
        self, got: dict[int, _Extent], first: int, last: int, offset: int, end: int
    ) -> bytes:
        """The answer, copied once (not at all when it is exactly one cached extent)."""
        block = self.block_size_bytes
        if first == last:
            lo, data = got[first]
            a, b = offset - first * block - lo, end - first * block - lo
            return data if a == 0 and b == len(data) else data[a:b]
        parts: list[memoryview] = []
        for index in range(first, last + 1):
            lo, data = got[index]
            block_start = index * block
            a = max(offset, block_start) - block_start - lo
            b = min(end, block_start + block) - block_start - lo
            parts.append(memoryview(data)[a:b])
        return b"".join(parts)


class ReadaheadPolicy:
    """What one open handle should read ahead; pure bookkeeping, no I/O.

    Following mountpoint-s3's prefetcher: nothing is read ahead until a run of sequential
    reads has consumed ``initial_bytes`` (random readers get right-sized requests only);
    then chunks of ``initial_bytes``, doubling up to ``max_chunk_bytes``, are requested
    whenever the reader enters the newest chunk, so at most two chunks are ahead of it.
    Reads within ``tolerance_bytes`` of the run (the kernel delivers its read-ahead from
    several threads, not always in order) continue it; any other read is a seek and starts
    a new run from the initial size.
    """

    def __init__(self, initial_bytes: int, max_chunk_bytes: int, tolerance_bytes: int) -> None:
        self._initial_bytes = initial_bytes
        self._max_chunk_bytes = max(initial_bytes, max_chunk_bytes)
        self._tolerance_bytes = tolerance_bytes
        self._run_start: int | None = None
        self._run_end = 0
        self._chunk_bytes = initial_bytes
        self._ahead_until: int | None = None  # end of what was requested ahead
        self._newest_chunk_start = 0

    @property
    def streaming(self) -> bool:
        """True once the current run is sequential enough to be read ahead."""
        return self._ahead_until is not None

    def on_read(self, offset: int, end: int, file_size: int) -> tuple[bool, list[tuple[int, int]]]:
        """Record a read of ``[offset, end)``: (was it a seek?, ranges to fetch ahead now)."""
        if self._run_start is not None and self._continues_run(offset):
            self._run_start = min(self._run_start, offset)
            self._run_end = max(self._run_end, end)
            return False, self._next_chunks(file_size)
        seeked = self._run_start is not None
        self._run_start, self._run_end = offset, end
        self._chunk_bytes = self._initial_bytes
        self._ahead_until = None
        return seeked, self._next_chunks(file_size)

    def _continues_run(self, offset: int) -> bool:
        horizon = max(self._run_end, self._ahead_until or 0)
        return self._run_end - self._tolerance_bytes <= offset <= horizon + self._tolerance_bytes

    def _next_chunks(self, file_size: int) -> list[tuple[int, int]]:
        assert self._run_start is not None
        if self._ahead_until is None:
            if self._run_end - self._run_start < self._initial_bytes:
                return []  # too short to call sequential
            self._ahead_until = self._newest_chunk_start = self._run_end
            entered_newest = True
        else:
            self._ahead_until = max(self._ahead_until, self._run_end)
            entered_newest = self._run_end > self._newest_chunk_start
        chunks: list[tuple[int, int]] = []
        while entered_newest and self._ahead_until < file_size:
            start = self._ahead_until
            self._ahead_until = min(start + self._chunk_bytes, file_size)
            self._newest_chunk_start = start
            chunks.append((start, self._ahead_until))
            self._chunk_bytes = min(self._chunk_bytes * 2, self._max_chunk_bytes)
            entered_newest = self._run_end > start
        return chunks


class FileReader:
    """One open handle: reads through the cache and keeps a read-ahead going when sequential."""

    def __init__(
        self,
        cache: BlockCache,
        key: str,
        file_size: int,
        fetch: RangeFetcher,
        settings: Settings,
        executor: concurrent.futures.Executor | None,
    ) -> None:
        self._cache = cache
        self._key = key
        self._size = file_size
        self._fetch = fetch
        self._executor = executor
        self._max_request_bytes = max(cache.block_size_bytes, settings.max_request_bytes)
        # Two chunks are ahead at most: together within readahead_max and a quarter of the cache.
        max_chunk_bytes = min(settings.readahead_max_bytes // 2, cache.capacity_bytes // 8)
        self._policy = ReadaheadPolicy(
            settings.readahead_initial_bytes,
            max_chunk_bytes,
            tolerance_bytes=settings.readahead_initial_bytes,
        )
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._pending: list[concurrent.futures.Future[None]] = []
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``; short at end of file, b"" at or after it."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        streaming = self._read_ahead(offset, end) if self._executor is not None else False
        # A sequential reader that overtakes its read-ahead fetches whole blocks, not 128 KiB.
        return self._cache.read(
            self._key, self._size, offset, end, self._fetch, whole_blocks=streaming
        )

    def close(self) -> None:
        """Stop this handle's read-ahead; blocks already fetched stay cached."""
        with self._lock:
            self._closed = True
            self._cancel_pending()

    def _read_ahead(self, offset: int, end: int) -> bool:
        """Note the read, start any read-ahead it calls for; True if the run is sequential."""
        with self._lock:
            if self._closed:
                return False
            seeked, chunks = self._policy.on_read(offset, end, self._size)
            if seeked:
                self._cancel_pending()
            self._pending = [f for f in self._pending if not f.done()]
            for start, stop in chunks:
                for piece in range(start, stop, self._max_request_bytes):
                    self._submit(piece, min(piece + self._max_request_bytes, stop))
            return self._policy.streaming

    def _submit(self, start: int, end: int) -> None:
        assert self._executor is not None
        try:
            future = self._executor.submit(self._prefetch, start, end, self._cancelled)
        except RuntimeError:  # the pool is shut down: the mount is going away
            return
        self._pending.append(future)

    def _cancel_pending(self) -> None:
        """Drop queued read-ahead and stop the running one after its current block."""
        self._cancelled.set()
        self._cancelled = threading.Event()
        for future in self._pending:
            future.cancel()
        self._pending = []

    def _prefetch(self, start: int, end: int, cancelled: threading.Event) -> None:
        if cancelled.is_set():
            return
        try:
            self._cache.prefetch(self._key, self._size, start, end, self._fetch, cancelled)
        except NotionFSError as exc:
            # The reader that needs these bytes fetches them itself and sees the error.
            logger.debug("read-ahead of %s [%d, %d) failed: %s", self._key, start, end, exc)
        except Exception:
            logger.exception("read-ahead of %s [%d, %d) failed", self._key, start, end)
