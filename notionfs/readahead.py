"""Sequential read-ahead of one open handle on the shared block cache, dropping behind it."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from .blockcache import BlockCache, RangeFetcher
from .config import Settings
from .errors import NotionFSError

__all__ = ["FileReader", "ReadaheadPolicy"]

logger = logging.getLogger(__name__)

# Each window is this many times what its run has read (mountpoint-s3 grows its requests
# eightfold too): a reader that stops leaves at most that much unread, and a stream fills
# the link after its first few blocks instead of after a doubling per round trip.
GROWTH = 8
# A run from a file's first byte is called sequential after this share of the initial size:
# a program reading a file from its start past its head reads on (cp, cat, players), and
# the head itself is answered from what the size probe brought.
HEAD_SHARE = 4


def fill_level(rest: int, free: int, loads: list[int]) -> float:
    """The level every slot reaches when ``rest`` bytes are poured over ``free`` empty slots
    and busy ones holding ``loads`` bytes (those holding more than the level get none)."""
    total, slots, level = float(rest), free, rest / free
    for load in sorted(loads):
        if load >= level:
            break
        total, slots = total + load, slots + 1
        level = total / slots
    return level


class ReadaheadPolicy:
    """What one open handle should read ahead; pure bookkeeping, no I/O.

    Following mountpoint-s3's prefetcher: nothing is read ahead until a run of sequential
    reads has consumed ``initial_bytes`` (a quarter of it for a run from the file's first
    byte); random readers get right-sized requests only. Then a *window* is kept ahead of
    the reader: ``GROWTH`` times what the run has read (counting at least
    ``initial_bytes``), at most ``max_window_bytes``.

    The window is fetched in *parts*, each its own ranged request, handed out one at a time
    (``next_part``) as the window moves on and the caller has room. While the reader waits
    on the host (a read not answered from memory within the last half window), a part is
    a ``parts``-th of the window (whole ``align_bytes`` blocks, at least one, at most
    ``max_part_bytes``): ``parts`` requests in flight from the first window on, so a host
    that paces each connection (S3 does) still fills the link. A reader the read-ahead
    keeps ahead of, or a host where one request outruns the reader twice over
    (``part_done``), gets half-window parts: as fast, with fewer requests and less CPU.
    Once the window reaches the end of a file the reader waits for, the rest is poured
    over the request slots (``fill_level``): a slot that comes free takes the level the
    busy ones will be at, counting what their parts have still to bring, so the last parts
    end together rather than one long part finishing alone.

    A reader waiting on the host while the bytes after its read have landed (the parts
    ahead of the one it waits on came first) is about to read those too: the window is
    sized from where they end, so the request slots that just came free take parts sized
    for where the reader will be in a moment, not for where it waits. Without a reader
    waiting, the window grows only with what was read.

    Reads within a tolerance of the run (the kernel delivers its read-ahead from several
    threads, not always in order) continue it; any other read is a seek and starts a new
    run from the initial size. The tolerance is ``tolerance_bytes``, and while streaming it
    grows with the window (half of it) up to ``max_tolerance_bytes``: a kernel reading
    further ahead (a raised ``read_ahead_kb``) delivers its reads further out of order, and
    calling those seeks would restart the window and refetch what was dropped behind.
    """

    def __init__(
        self,
        initial_bytes: int,
        max_window_bytes: int,
        tolerance_bytes: int,
        max_tolerance_bytes: int = 8 << 20,
        *,
        parts: int = 1,
        align_bytes: int = 1,
        max_part_bytes: int | None = None,
    ) -> None:
        self._initial_bytes = initial_bytes
        self._max_window_bytes = max(initial_bytes, max_window_bytes)
        self._tolerance_bytes = tolerance_bytes
        self._max_tolerance_bytes = max(tolerance_bytes, max_tolerance_bytes)
        self._parts = max(1, parts)
        self._align = max(1, align_bytes)
        self._max_part_bytes = max(self._align, max_part_bytes or self._max_window_bytes)
        self._run_start: int | None = None
        self._run_end = 0
        self._ahead_until: int | None = None  # end of what was handed out ahead
        self._waited_until = 0  # the run's end at the last read not answered from memory
        self._fast_host = False  # the last part outran the reader on its own

    @property
    def streaming(self) -> bool:
        """True once the current run is sequential enough to be read ahead."""
        return self._ahead_until is not None

    def left_behind(self) -> int | None:
        """While streaming: the offset before which the run will not read again."""
        return self._run_end - self._tolerance() if self.streaming else None

    def on_read(self, offset: int, end: int, file_size: int, *, waited: bool = True) -> bool:
        """Record a read of ``[offset, end)``; True if it was a seek (a new run).

        ``waited``: the read was not answered from memory (the reader may wait on the host).
        """
        if self._run_start is not None and self._continues_run(offset):
            self._run_start = min(self._run_start, offset)
            self._run_end = max(self._run_end, end)
            seeked = False
        else:
            seeked = self._run_start is not None
            self._run_start, self._run_end = offset, end
            self._ahead_until = None
        if waited:
            self._waited_until = self._run_end
        if self._ahead_until is None and self._run_end - self._run_start >= (
            self._initial_bytes // HEAD_SHARE if self._run_start == 0 else self._initial_bytes
        ):
            # The reader fetches the rest of the block it is in: the window starts after it.
            self._ahead_until = min(file_size, self._align_up(self._run_end))
        return seeked

    def next_part(
        self,
        file_size: int,
        under_way: Callable[[], list[int]] | None = None,
        ready_until: int | None = None,
    ) -> tuple[int, int] | None:
        """The next part of the window to fetch, or None while the window holds no whole
        part more (the reader must move on first) or the run is not sequential.

        ``under_way()``: for each part in flight, the bytes it has still to bring (the
        request slots not in that list are free; this call is for one of them).
        ``ready_until``: a read is waiting on the host, and the bytes from it up to
        there are held (it will read them as soon as its own arrive).
        """
        if self._ahead_until is None or self._run_start is None:
            return None
        position = max(self._run_end, ready_until or 0)
        window = self._window(position)
        start = self._ahead_until
        target = min(file_size, position + window)
        # A reader that waited on the host within the last half window, on a host where one
        # request is slower than the reader, needs the window spread over parallel
        # requests; otherwise a request per half window keeps up, and costs less.
        spread = not self._fast_host and self._run_end - self._waited_until < window // 2
        share = self._parts if spread else min(2, self._parts)
        part = min(self._max_part_bytes, self._align_up(-(-window // share)))
        if target == file_size and spread:
            # The window reaches the end of a file the reader waits for: the rest is handed
            # out so that the request slots run out together, each free one filled up to the
            # level the busy ones will be at (what their parts have still to bring). Rounded
            # to the nearest block. (Where one request outruns the reader, how the last
            # parts end does not hold it up: they stay half windows, fewer requests.)
            loads = under_way() if under_way is not None else []
            level = fill_level(file_size - start, max(1, share - len(loads)), loads)
            part = min(part, max(1, round(level / self._align)) * self._align)
        if start >= target or (target - start < part and target < file_size):
            return None
        stop = min(file_size, start + part)
        self._ahead_until = stop
        return start, stop

    @property
    def position(self) -> int:
        """The end of the current run (what the reader has got to)."""
        return self._run_end

    @property
    def run_start(self) -> int:
        """Where the current run began."""
        return self._run_start or 0

    def part_done(self, part_bps: float, reader_bps: float) -> None:
        """A part came in at ``part_bps`` while the run is read at ``reader_bps`` on
        average: a request that outruns the reader twice over needs no others beside it.
        Judged once the run has read a first window: before, the reader's rate is that of
        its first round trips."""
        assert self._run_start is not None
        if self._run_end - self._run_start >= GROWTH * self._initial_bytes:
            self._fast_host = part_bps > 2 * reader_bps

    def _align_up(self, offset: int) -> int:
        return max(self._align, -(-offset // self._align) * self._align)

    def _tolerance(self) -> int:
        if self._ahead_until is None:
            return self._tolerance_bytes
        return min(max(self._tolerance_bytes, self._window() // 2), self._max_tolerance_bytes)

    def _window(self, position: int | None = None) -> int:
        """The window for a run that has got to ``position`` (where it is, by default)."""
        assert self._run_start is not None
        read = (self._run_end if position is None else position) - self._run_start
        return min(GROWTH * max(self._initial_bytes, read), self._max_window_bytes)

    def _continues_run(self, offset: int) -> bool:
        horizon = max(self._run_end, self._ahead_until or 0)
        tolerance = self._tolerance()
        return self._run_end - tolerance <= offset <= horizon + tolerance


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
        # The window stays within readahead_max and a quarter of the cache; its parts run
        # fetch_workers at a time, none larger than max_request_bytes.
        self._parallel = max(1, settings.fetch_workers)
        self._kernel_read_bytes = settings.kernel_read_bytes
        self._max_window = min(settings.readahead_max_bytes, cache.capacity_bytes // 4)
        self._policy = ReadaheadPolicy(
            settings.readahead_initial_bytes,
            self._max_window,
            tolerance_bytes=settings.readahead_initial_bytes,
            parts=self._parallel,
            align_bytes=cache.block_size_bytes,
            max_part_bytes=max(cache.block_size_bytes, settings.max_request_bytes),
        )
        # Reentrant: a part that ends (or is cancelled) on this thread tops up from its
        # done callback, under the lock already held here.
        self._lock = threading.RLock()
        self._cancelled = threading.Event()
        # The parts in flight: [start, end) of each.
        self._pending: dict[concurrent.futures.Future[None], tuple[int, int]] = {}
        self._filling = False
        self._closed = False
        # Reads waiting on the host, by thread: where each asked.
        self._waiting: dict[int, int] = {}
        self._own_fetches = 0  # reads asking the host themselves
        self._drop_from = 0  # first block of the current run not yet dropped behind it
        self._streamed_from: tuple[float, int] | None = None  # (when, where) the run streams

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``; short at end of file, b"" at or after it."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        # A read that must ask the host itself takes one of the handle's request slots
        # while it does: the read-ahead's parts and the reader's own fetch together stay
        # within fetch_workers.
        own = self._executor is not None and self._cache.unclaimed(self._key, offset, end)
        streaming = (
            self._read_ahead(offset, end, waited=True, own_fetch=own)
            if self._executor is not None
            else False
        )
        if streaming:
            with self._lock:
                self._waiting[threading.get_ident()] = offset
        # A sequential reader that overtakes its read-ahead fetches whole blocks, not 128 KiB.
        # Any other reader that must fetch a read of the kernel's largest size takes as much
        # again in the same request: the kernel cuts a program's larger read into pieces of
        # that size and asks for the next only once this one is answered, so a 256 KiB read
        # under libfuse 2 (128 KiB pieces) costs one round trip instead of two (and random
        # 128 KiB reads at most twice their bytes). A smaller read is the program's whole
        # read: nothing more is fetched.
        try:
            return self._cache.read(
                self._key, self._size, offset, end, self._fetch, whole_blocks=streaming,
                extra_bytes=0 if streaming or size < self._kernel_read_bytes else end - offset,
            )
        finally:
            if streaming or own:
                with self._lock:
                    self._waiting.pop(threading.get_ident(), None)
                    if own:
                        self._own_fetches -= 1
                        self._fill()

    def read_cached(self, offset: int, size: int) -> bytes | None:
        """Like read when the cache holds every byte asked for; None otherwise, and then
        the read is not noted: the caller goes on to ``read``, which notes it once."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        data = self._cache.read_cached(self._key, self._size, offset, end)
        if data is not None and self._executor is not None:
            self._read_ahead(offset, end, waited=False)
        return data

    def close(self) -> None:
        """Stop this handle's read-ahead; blocks already fetched stay cached."""
        with self._lock:
            self._closed = True
            self._cancel_pending()

    def _read_ahead(
        self, offset: int, end: int, *, waited: bool, own_fetch: bool = False
    ) -> bool:
        """Note the read, start any read-ahead it calls for; True if the run is sequential.

        ``waited``: the cache could not answer it (it may wait on the host). ``own_fetch``:
        it will ask the host itself (until it calls ``_fill`` again, one slot less).
        """
        with self._lock:
            if own_fetch:
                self._own_fetches += 1
            if self._closed:
                return False
            if self._policy.on_read(offset, end, self._size, waited=waited):
                self._cancel_pending()
                self._drop_from = offset // self._cache.block_size_bytes
                self._streamed_from = None
            if self._streamed_from is None and self._policy.streaming:
                self._streamed_from = (time.monotonic(), self._policy.run_start)
            self._fill()
            self._drop_behind()
            return self._policy.streaming

    def _fill(self) -> None:
        """Keep up to ``fetch_workers`` parts of the window in flight (lock held).

        Never more: parts queued behind this handle's own would only wait for a worker,
        and a part sized when a worker is free is sized for what is left by then.
        """
        if self._filling or self._closed:
            return  # the loop under way sees the room this call was for
        self._filling = True
        try:
            while True:
                self._pending = {f: span for f, span in self._pending.items() if not f.done()}
                if len(self._pending) + self._own_fetches >= self._parallel:
                    return
                part = self._policy.next_part(self._size, self._under_way, self._ready_until())
                if part is None or not self._submit(*part):
                    return
        finally:
            self._filling = False

    def _under_way(self) -> list[int]:
        """For each part in flight: about the bytes it has still to bring (lock held).

        A body arrives in pieces as large as the kernel's reads (up to a block), so what
        the cache can tell is block by block; the block being received counts half.
        """
        block = self._cache.block_size_bytes
        loads = []
        for future, (start, end) in self._pending.items():
            if not future.done():
                due = self._cache.bytes_due(self._key, start // block, -(-end // block))
                loads.append(max(0, due - block // 2))
        return loads

    def _ready_until(self) -> int | None:
        """With a read waiting on the host: where the bytes held from it end (lock held)."""
        if not self._waiting:
            return None
        offset = min(self._waiting.values())
        return self._cache.held_until(self._key, offset, self._size, offset + self._max_window)

    def _part_done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._fill()

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

    def _submit(self, start: int, end: int) -> bool:
        assert self._executor is not None
        try:
            future = self._executor.submit(self._prefetch, start, end, self._cancelled)
        except RuntimeError:  # the pool is shut down: the mount is going away
            return False
        self._pending[future] = (start, end)
        future.add_done_callback(self._part_done)
        return True

    def _cancel_pending(self) -> None:
        """Drop queued read-ahead and stop the running one at its next chunk."""
        self._cancelled.set()
        self._cancelled = threading.Event()
        pending, self._pending = self._pending, {}
        for future in pending:
            future.cancel()

    def _prefetch(self, start: int, end: int, cancelled: threading.Event) -> None:
        # The reader may have got past the start while this waited in the queue: what it
        # left behind is not fetched again (it is dropped from the cache already).
        behind = self._policy.left_behind() or 0
        start = max(start, behind - behind % self._cache.block_size_bytes)
        if cancelled.is_set() or start >= end:
            return
        began = time.monotonic()
        try:
            self._cache.prefetch(self._key, self._size, start, end, self._fetch, cancelled)
        except NotionFSError as exc:
            # The reader that needs these bytes fetches them itself and sees the error.
            logger.debug("read-ahead of %s [%d, %d) failed: %s", self._key, start, end, exc)
            return
        except Exception:
            logger.exception("read-ahead of %s [%d, %d) failed", self._key, start, end)
            return
        now = time.monotonic()
        with self._lock:
            if cancelled.is_set() or self._streamed_from is None:
                return
            at, position = self._streamed_from
            self._policy.part_done(
                (end - start) / max(now - began, 1e-6),
                (self._policy.position - position) / max(now - at, 1e-6),
            )
