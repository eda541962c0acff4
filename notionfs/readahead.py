"""Sequential read-ahead of one open handle on the shared block cache, dropping behind it."""

from __future__ import annotations

import concurrent.futures
import logging
import threading

from .blockcache import BlockCache, RangeFetcher
from .config import Settings
from .errors import NotionFSError

__all__ = ["FileReader", "ReadaheadPolicy"]

logger = logging.getLogger(__name__)


class ReadaheadPolicy:
    """What one open handle should read ahead; pure bookkeeping, no I/O.

    Following mountpoint-s3's prefetcher: nothing is read ahead until a run of sequential
    reads has consumed ``initial_bytes`` (random readers get right-sized requests only);
    then chunks of ``initial_bytes``, doubling up to ``max_chunk_bytes``, are requested
    whenever the reader enters the newest chunk, so at most two chunks are ahead of it.
    Reads within a tolerance of the run (the kernel delivers its read-ahead from several
    threads, not always in order) continue it; any other read is a seek and starts a new
    run from the initial size. The tolerance is ``tolerance_bytes``, and while streaming it
    grows with the chunk size up to ``max_tolerance_bytes``: a kernel reading further ahead
    (a raised ``read_ahead_kb``) delivers its reads further out of order, and calling those
    seeks would restart the window and refetch what was dropped behind, again and again.
    """

    def __init__(
        self,
        initial_bytes: int,
        max_chunk_bytes: int,
        tolerance_bytes: int,
        max_tolerance_bytes: int = 8 << 20,
    ) -> None:
        self._initial_bytes = initial_bytes
        self._max_chunk_bytes = max(initial_bytes, max_chunk_bytes)
        self._tolerance_bytes = tolerance_bytes
        self._max_tolerance_bytes = max(tolerance_bytes, max_tolerance_bytes)
        self._run_start: int | None = None
        self._run_end = 0
        self._chunk_bytes = initial_bytes
        self._ahead_until: int | None = None  # end of what was requested ahead
        self._newest_chunk_start = 0

    @property
    def streaming(self) -> bool:
        """True once the current run is sequential enough to be read ahead."""
        return self._ahead_until is not None

    def left_behind(self) -> int | None:
        """While streaming: the offset before which the run will not read again."""
        return self._run_end - self._tolerance() if self.streaming else None

    def _tolerance(self) -> int:
        if not self.streaming:
            return self._tolerance_bytes
        return min(max(self._tolerance_bytes, self._chunk_bytes), self._max_tolerance_bytes)

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
        tolerance = self._tolerance()
        return self._run_end - tolerance <= offset <= horizon + tolerance

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
        self._drop_from = 0  # first block of the current run not yet dropped behind it

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
        # Any other reader that must fetch takes as much again in the same request: FUSE cuts
        # a program's read into 128 KiB pieces and asks for the next only once this one is
        # answered, so a 256 KiB read costs one round trip instead of two (and random 128 KiB
        # reads at most twice their bytes).
        return self._cache.read(
            self._key, self._size, offset, end, self._fetch, whole_blocks=streaming,
            extra_bytes=0 if streaming else end - offset,
        )

    def read_cached(self, offset: int, size: int) -> bytes | None:
        """Like read when the cache holds every byte asked for; None otherwise, and then
        the read is not noted: the caller goes on to ``read``, which notes it once."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        data = self._cache.read_cached(self._key, self._size, offset, end)
        if data is not None and self._executor is not None:
            self._read_ahead(offset, end)
        return data

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
                self._drop_from = offset // self._cache.block_size_bytes
            self._pending = [f for f in self._pending if not f.done()]
            for start, stop in chunks:
                for piece in range(start, stop, self._max_request_bytes):
                    self._submit(piece, min(piece + self._max_request_bytes, stop))
            self._drop_behind()
            return self._policy.streaming

    def _drop_behind(self) -> None:
        """Free blocks a streaming run has passed: their memory serves the next blocks.

        The kernel's page cache keeps what was read; keeping it here too would only grow
        the heap (fresh pages are costly) and evict blocks other readers still need. The
        file's first block stays: its header is what file managers come back for.
        """
        behind = self._policy.left_behind()
        if behind is None:
            return
        upto = behind // self._cache.block_size_bytes
        if upto > self._drop_from:
            self._cache.discard(self._key, max(self._drop_from, 1), upto)
            self._drop_from = upto

    def _submit(self, start: int, end: int) -> None:
        assert self._executor is not None
        try:
            future = self._executor.submit(self._prefetch, start, end, self._cancelled)
        except RuntimeError:  # the pool is shut down: the mount is going away
            return
        self._pending.append(future)

    def _cancel_pending(self) -> None:
        """Drop queued read-ahead and stop the running one at its next chunk."""
        self._cancelled.set()
        self._cancelled = threading.Event()
        for future in self._pending:
            future.cancel()
        self._pending = []

    def _prefetch(self, start: int, end: int, cancelled: threading.Event) -> None:
        # The reader may have got past the start while this waited in the queue: what it
        # left behind is not fetched again (it is dropped from the cache already).
        behind = self._policy.left_behind() or 0
        start = max(start, behind - behind % self._cache.block_size_bytes)
        if cancelled.is_set() or start >= end:
            return
        try:
            self._cache.prefetch(self._key, self._size, start, end, self._fetch, cancelled)
        except NotionFSError as exc:
            # The reader that needs these bytes fetches them itself and sees the error.
            logger.debug("read-ahead of %s [%d, %d) failed: %s", self._key, start, end, exc)
        except Exception:
            logger.exception("read-ahead of %s [%d, %d) failed", self._key, start, end)
