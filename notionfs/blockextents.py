"""Extents: the cached bytes of one block, kept as the pieces they arrived in.

An extent is one contiguous run of bytes inside a block: usually the whole block; a probed
head, a right-sized random read or the file's last block give shorter ones. An extent keeps
the pieces as they arrived instead of joining them: a read copies its bytes once, and no
block-sized buffer is allocated (fresh large allocations cost page faults on every block).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import platform
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Extent",
    "Pieces",
    "assemble",
    "block_span",
    "covers",
    "make_extent",
    "merge",
    "missing",
    "tune_allocator",
]

logger = logging.getLogger(__name__)

# Pieces smaller than this are joined while a block streams in: slow links deliver tiny ones.
_SMALL_PIECE_BYTES = 16 * 1024
# glibc's mallopt parameters (malloc.h) and the values the cache wants (see tune_allocator).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_MMAP_THRESHOLD_BYTES = 4 << 20
_TRIM_THRESHOLD_BYTES = 64 << 20
_ARENA_MAX = 2
_allocator_tuned = False


def tune_allocator() -> None:
    """Let glibc reuse the memory of freed pieces instead of mapping fresh pages for each.

    By default glibc maps every allocation of 128 KiB or more afresh (and unmaps it when
    freed) and hands a freed heap top back to the kernel at once, so a stream of received
    pieces costs a page fault per 4 KiB: about 40,000 per 256 MiB read, with the kernel
    zeroing each page. Served from the heap and kept there, freed pieces are reused. The
    cache bounds what is live; this only stops memory churning. And at most two arenas:
    glibc gives each thread that allocates its own (up to 8 per core), and a piece freed
    by a reader in one arena is no use to a fetch worker allocating in another, so eight
    parts received at once grew the heap by half the cache again (peak RSS 168 MiB where
    117 was measured; 125 with two arenas, and less CPU: fewer fresh pages). Process-wide
    and harmless elsewhere; done once, on glibc only.
    """
    global _allocator_tuned
    if _allocator_tuned or platform.libc_ver()[0] != "glibc":
        return
    _allocator_tuned = True
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
        libc.mallopt(_M_ARENA_MAX, _ARENA_MAX)
    except (OSError, AttributeError) as exc:  # not the C library we thought
        logger.debug("allocator left as it is: %s", exc)


@dataclass(frozen=True, slots=True)
class Extent:
    """Bytes ``[lo, hi)`` of one block (offsets inside the block), as a list of pieces."""

    lo: int
    parts: tuple[bytes, ...]
    ends: tuple[int, ...]  # running totals of the parts' lengths

    @property
    def size_bytes(self) -> int:
        return self.ends[-1]

    @property
    def hi(self) -> int:
        return self.lo + self.ends[-1]

    def views(self, lo: int, hi: int) -> Iterator[bytes | memoryview]:
        """Bytes ``[lo, hi)`` (inside this extent) without copying: whole parts or views."""
        pos, stop = lo - self.lo, hi - self.lo
        index = bisect_right(self.ends, pos)
        start = self.ends[index - 1] if index else 0
        while pos < stop:
            part, end = self.parts[index], self.ends[index]
            a, b = pos - start, min(stop, end) - start
            yield part if a == 0 and b == len(part) else memoryview(part)[a:b]
            pos, start, index = end, end, index + 1

    def pieces(self, lo: int, hi: int) -> list[bytes]:
        """Like views, as bytes: a part cut short is copied, so it does not pin the whole."""
        return [v if isinstance(v, bytes) else bytes(v) for v in self.views(lo, hi)]


def make_extent(lo: int, parts: list[bytes]) -> Extent:
    return Extent(lo, tuple(parts), tuple(itertools.accumulate(len(p) for p in parts)))


class Pieces:
    """One block's bytes as they stream in; tiny pieces are joined, large ones kept as is."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self._small: list[bytes] = []
        self._small_bytes = 0

    def add(self, piece: bytes) -> None:
        if len(piece) >= _SMALL_PIECE_BYTES:
            self._flush()
            self.parts.append(piece)
            return
        self._small.append(piece)
        self._small_bytes += len(piece)
        if self._small_bytes >= _SMALL_PIECE_BYTES:
            self._flush()

    def take(self) -> list[bytes]:
        self._flush()
        parts, self.parts = self.parts, []
        return parts

    def _flush(self) -> None:
        if self._small:
            self.parts.append(b"".join(self._small))
            self._small, self._small_bytes = [], 0


def covers(extent: Extent | None, lo: int, hi: int) -> bool:
    return extent is not None and extent.lo <= lo and hi <= extent.hi


def missing(extent: Extent | None, lo: int, hi: int) -> tuple[int, int]:
    """The bytes to fetch so that ``extent`` merged with them covers ``[lo, hi)``."""
    if extent is None:
        return lo, hi
    have_lo, have_hi = extent.lo, extent.hi
    if have_lo <= lo <= have_hi:
        return have_hi, hi  # extend the cached bytes forward (a probed head, a sequential read)
    if lo < have_lo <= hi <= have_hi:
        return lo, have_lo  # extend them backward
    return lo, hi


def merge(base: Extent | None, lo: int, parts: list[bytes]) -> Extent:
    """``parts`` (from ``lo``) joined with ``base`` when they touch; otherwise alone."""
    new = make_extent(lo, parts)
    if base is None or new.hi < base.lo or lo > base.hi:
        return new  # disjoint: one extent per block, keep the newest
    merged = base.pieces(base.lo, lo) if base.lo < lo else []
    merged += parts
    if base.hi > new.hi:
        merged += base.pieces(new.hi, base.hi)
    return make_extent(min(lo, base.lo), merged)


def block_span(index: int, start: int, end: int, block_size_bytes: int) -> tuple[int, int]:
    """The part of block ``index`` inside ``[start, end)``, relative to the block."""
    block_start = index * block_size_bytes
    return (
        max(start, block_start) - block_start,
        min(end, block_start + block_size_bytes) - block_start,
    )


def assemble(
    got: dict[int, Extent], first: int, last: int, offset: int, end: int, block_size_bytes: int
) -> bytes:
    """Bytes ``[offset, end)`` from the extents of blocks ``first`` .. ``last``, copied once
    (not at all when they are exactly one cached piece)."""
    views: list[bytes | memoryview] = []
    for index in range(first, last + 1):
        lo, hi = block_span(index, offset, end, block_size_bytes)
        views.extend(got[index].views(lo, hi))
    if len(views) == 1 and isinstance(views[0], bytes):
        return views[0]
    return b"".join(views)
