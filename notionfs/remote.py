"""Reads of one file object over HTTP Range: size probe, validation, resume, through the cache.

Notion-hosted files are S3-style presigned GET URLs: they expire, change on every API fetch,
and answer HEAD with 403. So the size comes from a ranged GET of the file's first
``probe_head_bytes`` (``Content-Range: bytes 0-N/TOTAL``), whose bytes are kept in the cache;
``416`` with ``bytes */0`` is an empty file. External URLs get a HEAD first.

Every answer is checked before a byte of it is used: a 206 must carry the ``Content-Range``
asked for and the known total; a 200 to a ranged request means the host ignores Range, and
the body is skipped up to the offset (at most ``unranged_limit_bytes``); a body cut short is
resumed from where it stopped; bytes past what was asked are never read. The URL itself, its
refreshes (before expiry, or once on a 403) and the retries are fileurl.py's.

The size probe is a single flight (flight.py): one probe serves every reader that needs it,
each waiting at most ``op_deadline_s`` from the probe's start, and no lock is held while the
host is asked.

A host that gives no size at all (a 200 with neither ``Content-Range`` nor
``Content-Length``, e.g. chunked) has its body streamed once to count it, up to
``unranged_limit_bytes``; the bytes go to the cache. A larger body is refused with
``FileHostError`` rather than given a wrong size.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterator

import httpx

from .blockcache import BlockCache
from .config import Settings
from .errors import FileHostError, NetworkError, RangeNotSatisfiable, ResponseMismatch
from .filehttp import (
    CutShort,
    check_encoding,
    content_length,
    content_range,
    exact_body,
    file_host_client,
    range_headers,
    unsatisfied_total,
)
from .fileurl import FileUrl, Location, Resolver
from .flight import SingleFlight
from .readahead import FileReader
from .retry import RetryPolicy

# file_host_client: the client every RemoteFile is given, made where the mount is set up.
__all__ = ["FileReader", "RemoteFile", "file_host_client"]

logger = logging.getLogger(__name__)

# A cut body that brought at least this much was progress: resuming it does not count
# against the retries.
_RESUME_PROGRESS_BYTES = 64 * 1024


class RemoteFile:
    """One file object: its size and its bytes, through the shared block cache."""

    def __init__(
        self,
        key: str,
        resolve: Resolver,
        http: httpx.Client,
        cache: BlockCache,
        settings: Settings,
        *,
        executor: concurrent.futures.Executor,
        known_size: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.key = key  # cache identity; never the signed URL
        self._cache = cache
        self._settings = settings
        self._executor = executor  # read-ahead of every open handle runs here
        self._size = known_size
        self._probes: SingleFlight[None, int] = SingleFlight(clock=time.monotonic)
        self._url = FileUrl(
            key, resolve, http, settings, retry or RetryPolicy.from_settings(settings)
        )

    @property
    def known_size(self) -> int | None:
        """The size if already known, without asking the host."""
        return self._size

    def size(self) -> int:
        """The exact size in bytes; the first call probes (once, however many threads ask).

        Probes start together when a directory is listed, so a caller joining a probe under
        way waits until ``op_deadline_s`` after the probe began, not after its own call:
        `ls -l` over a stalled host fails once, not once per file. A failed probe is tried
        again by the next caller.
        """
        if self._size is not None:
            return self._size
        return self._probes.run(
            None,
            self._probe_once,
            timeout_s=self._settings.op_deadline_s,
            from_start=True,
            what=f"{self.key}: size probe",
        )

    def _probe_once(self) -> int:
        if self._size is None:  # a probe that landed just before this one was started
            self._size = self._probe()
        return self._size

    def reader(self) -> FileReader:
        """Per-open-handle state, with sequential read-ahead on the shared pool."""
        return FileReader(
            self._cache, self.key, self.size(), self._fetch, self._settings, self._executor
        )

    @property
    def probing(self) -> bool:
        """A size probe is under way."""
        return self._probes.in_flight(None)

    def offer(self, location: Location) -> None:
        """A URL for this file from a fresh listing, kept when it outlives the one held."""
        self._url.offer(location)

    # ---- ranged reads (the cache's fetcher) --------------------------------------------

    def _fetch(self, start: int, end: int) -> Iterator[bytes]:
        """Exactly the bytes [start, end), resuming a body cut short from where it stopped.

        A host that keeps cutting but delivers ``_RESUME_PROGRESS_BYTES`` or more each time
        is followed to the end; ``max_retries`` cuts in a row with less than that fail.
        """
        pos, stalls = start, 0
        while pos < end:
            attempt_start = pos
            try:
                for chunk in self._stream_once(pos, end):
                    pos += len(chunk)
                    yield chunk
            except CutShort as cut:
                stalls = 0 if pos - attempt_start >= _RESUME_PROGRESS_BYTES else stalls + 1
                if stalls > self._settings.max_retries:
                    raise ResponseMismatch(f"{self.key}: body cut short again ({cut})") from None
                logger.info("%s: body cut at byte %d (%s); resuming", self.key, pos, cut)

    def _stream_once(self, pos: int, end: int) -> Iterator[bytes]:
        response = self._url.open("GET", range_headers(pos, end - 1))
        try:
            skip = self._check_range_answer(response, pos, end)
            yield from exact_body(response, skip, end - pos)
        finally:
            response.close()

    def _check_range_answer(self, response: httpx.Response, pos: int, end: int) -> int:
        """Validate the answer to ``bytes=pos-(end-1)``; the bytes to skip before ours."""
        check_encoding(response)
        status = response.status_code
        if status == 206:
            first, last, total = content_range(response)
            if (first, last) != (pos, end - 1):
                raise ResponseMismatch(f"asked bytes {pos}-{end - 1}, got {first}-{last}")
            if total is not None and self._size is not None and total != self._size:
                raise ResponseMismatch(f"{self.key}: object is {total} bytes, was {self._size}")
            return 0
        if status == 200:
            length = content_length(response)
            if length is not None and self._size is not None and length != self._size:
                raise ResponseMismatch(f"{self.key}: object is {length} bytes, was {self._size}")
            if pos > self._settings.unranged_limit_bytes:
                raise FileHostError(f"{self.key}: host ignores Range; offset {pos} is too far")
            logger.debug("%s: host ignores Range; skipping %d bytes", self.key, pos)
            return pos
        if status == 416:
            raise RangeNotSatisfiable(f"{self.key}: bytes {pos}-{end - 1} past the end", 416)
        raise FileHostError(f"{self.key}: file host answered {status}", status)

    # ---- size probe --------------------------------------------------------------------

    def _probe(self) -> int:
        if self._url.current().external:
            size = self._head_size()
            if size is not None:
                return size
        cuts = 0
        while True:
            try:
                return self._probe_with_get()
            except CutShort as cut:
                if cuts >= self._settings.max_retries:
                    raise ResponseMismatch(f"{self.key}: size probe cut short ({cut})") from None
                cuts += 1
                logger.info("%s: size probe cut short (%s); probing again", self.key, cut)

    def _head_size(self) -> int | None:
        """Content-Length from a HEAD, or None when the host does not say."""
        try:
            response = self._url.send(
                "HEAD", self._url.current().url, {"Accept-Encoding": "identity"}
            )
        except NetworkError as exc:
            logger.debug("%s: HEAD failed (%s); probing with GET", self.key, exc)
            return None
        try:
            if response.status_code != 200:
                return None
            check_encoding(response)
            return content_length(response)
        except ResponseMismatch:
            return None
        finally:
            response.close()

    def _probe_with_get(self) -> int:
        """Size from a ranged GET of the head, keeping the head's bytes in the cache."""
        head_bytes = max(1, self._settings.probe_head_bytes)
        response = self._url.open("GET", range_headers(0, head_bytes - 1))
        try:
            check_encoding(response)
            status = response.status_code
            if status == 206:
                first, last, total = content_range(response)
                if first != 0 or last >= head_bytes:
                    raise ResponseMismatch(f"asked bytes 0-{head_bytes - 1}, got {first}-{last}")
                if total is None and last + 1 == head_bytes:
                    response.close()
                    return self._count_size()
                self._keep_head(response, last + 1)
                return last + 1 if total is None else total
            if status == 416:
                return self._empty_size(response)
            if status == 200:
                length = content_length(response)
                if length is None:
                    return self._count_body(response)
                kept = self._keep_head(response, min(head_bytes, length))
                if kept < length <= head_bytes:
                    # The whole body was asked for and fell short of its Content-Length: a
                    # cut (probe again) or a lie (no size to trust).
                    raise CutShort(f"body ended at {kept} of {length} announced bytes")
                return length
            raise FileHostError(f"{self.key}: file host answered {status}", status)
        finally:
            response.close()

    def _empty_size(self, response: httpx.Response) -> int:
        """416 to ``bytes=0-...``: the object is empty (Content-Range ``bytes */0``)."""
        if unsatisfied_total(response) != 0:
            raise ResponseMismatch(f"{self.key}: 416 for byte 0 of a non-empty object")
        return 0

    def _keep_head(self, response: httpx.Response, length: int) -> int:
        """Cache the head's bytes; a head cut short keeps what arrived. Returns the count."""
        pieces: list[bytes] = []
        try:
            for chunk in exact_body(response, 0, length):
                pieces.append(chunk)
        except CutShort as cut:
            logger.debug("%s: probe body cut short (%s)", self.key, cut)
        if pieces:
            self._cache.store(self.key, 0, b"".join(pieces))
        return sum(len(piece) for piece in pieces)

    def _count_size(self) -> int:
        response = self._url.open("GET", {"Accept-Encoding": "identity"})
        try:
            check_encoding(response)
            if response.status_code != 200:
                raise FileHostError(f"{self.key}: file host answered {response.status_code}")
            length = content_length(response)
            return length if length is not None else self._count_body(response)
        finally:
            response.close()

    def _count_body(self, response: httpx.Response) -> int:
        """Size of a body nobody announced: stream it (bounded), caching it block by block."""
        limit_bytes = self._settings.unranged_limit_bytes
        block_bytes = self._cache.block_size_bytes
        buffer = bytearray()
        stored = 0
        try:
            for chunk in response.iter_raw():
                buffer += chunk
                if stored + len(buffer) > limit_bytes:
                    raise FileHostError(
                        f"{self.key}: host gives no size and the body passes {limit_bytes} bytes"
                    )
                if len(buffer) >= block_bytes:
                    whole = len(buffer) - len(buffer) % block_bytes
                    self._cache.store(self.key, stored, bytes(buffer[:whole]))
                    del buffer[:whole]
                    stored += whole
        except httpx.TransportError as exc:
            raise NetworkError(f"{self.key}: body of unknown size cut short") from exc
        if buffer:
            self._cache.store(self.key, stored, bytes(buffer))
        logger.debug("%s: host gave no size; counted %d bytes", self.key, stored + len(buffer))
        return stored + len(buffer)
