"""Reads of one file object over HTTP Range: size probe, URL refresh, validation, resume, retry.

Notion-hosted files are S3-style presigned GET URLs: they expire, change on every API fetch,
and answer HEAD with 403. So the size comes from a ranged GET of the file's first
``probe_head_bytes`` (``Content-Range: bytes 0-N/TOTAL``), whose bytes are kept in the cache;
``416`` with ``bytes */0`` is an empty file. External URLs get a HEAD first.

Every answer is checked before a byte of it is used: a 206 must carry the ``Content-Range``
asked for and the known total; a 200 to a ranged request means the host ignores Range, and
the body is skipped up to the offset (at most ``unranged_limit_bytes``); a body cut short is
resumed from where it stopped; bytes past what was asked are never read. 403 on a signed URL
refreshes it once (one refresh however many readers saw the 403); 429, 5xx and transport
errors are retried as the shared policy says (retry.py: reads, so every transient failure).

URL refreshes and the size probe are single flights (flight.py): one call to Notion (or one
probe) serves every reader that needs it, each waiting at most ``op_deadline_s``, and no lock
is held while Notion or the host is asked. ``_location_lock`` guards only the current
location and when it was obtained; it is the innermost lock, never held across a call.

A host that gives no size at all (a 200 with neither ``Content-Range`` nor
``Content-Length``, e.g. chunked) has its body streamed once to count it, up to
``unranged_limit_bytes``; the bytes go to the cache. A larger body is refused with
``FileHostError`` rather than given a wrong size.

The file-host client never carries an ``Authorization`` header (it is stripped from every
request), follows no redirect by itself (we follow at most five, http/https only), and logs
show URLs as scheme://host/path: a signed URL's query string is a credential.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from .blockcache import BlockCache
from .config import Settings
from .errors import (
    FileHostError,
    NetworkError,
    NotionFSError,
    RangeNotSatisfiable,
    ResponseMismatch,
    UnsafeUrlError,
    UrlExpiredError,
)
from .filetransport import FileHostTransport
from .flight import SingleFlight
from .readahead import FileReader
from .retry import RetryPolicy

__all__ = [
    "MAX_REDIRECTS",
    "FileReader",
    "Location",
    "RemoteFile",
    "Resolver",
    "file_host_client",
    "redact_url",
]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# A cut body that brought at least this much was progress: resuming it does not count
# against the retries.
_RESUME_PROGRESS_BYTES = 64 * 1024
_SAFE_SCHEMES = ("http", "https")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Location:
    """Where a file's bytes are now. ``expires_at`` is epoch seconds; None never expires."""

    url: str
    expires_at: float | None
    external: bool = False


Resolver = Callable[[bool], Location]
"""``resolve(force_refresh)``: the current Location; True asks the Notion API again."""


def redact_url(url: str) -> str:
    """``url`` as scheme://host[:port]/path, without credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def file_host_client(settings: Settings) -> httpx.Client:
    """The client for file hosts: the lean transport (see filetransport.py), the settings'
    timeouts, no redirects followed by httpx (RemoteFile follows them itself, checked), and
    no credentials of any kind."""
    return httpx.Client(
        transport=FileHostTransport(),
        timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        follow_redirects=False,
    )


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SAFE_SCHEMES:
        raise UnsafeUrlError(f"refusing a {scheme or 'scheme-less'} URL: only http/https")


def _keep_dot_segments(url: str) -> str:
    """A signed URL with a "." or ".." path segment (a file named "."), sent as signed.

    httpx removes dot segments (RFC 3986 normalisation), which changes the signed path and
    the host answers 403; percent-encoded, they name the same key and stay as they are.
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if "." not in segments and ".." not in segments:
        return url
    path = "/".join("%2E" * len(s) if s in (".", "..") else s for s in segments)
    return urlunsplit(parts._replace(path=path))


class _NoAuth(httpx.Auth):
    """Strips any Authorization header: no credential may ever reach a file host."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Authorization", None)
        yield request


_NO_AUTH = _NoAuth()


class _CutShort(Exception):
    """A body ended before the bytes it announced (internal: the range is resumed)."""


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _range_headers(first: int, last: int) -> dict[str, str]:
    # identity: byte offsets must be offsets into the file, not into a compressed body.
    return {"Range": f"bytes={first}-{last}", "Accept-Encoding": "identity"}


def _check_encoding(response: httpx.Response) -> None:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ResponseMismatch(f"host sent {encoding}-encoded bytes though identity was asked")


def _content_range(response: httpx.Response) -> tuple[int, int, int | None]:
    """(first, last, total or None) from a 206's Content-Range; ResponseMismatch if unusable."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None:
        raise ResponseMismatch("206 without a usable Content-Range")
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        raise ResponseMismatch(f"inconsistent Content-Range bytes {first}-{last}/{match[3]}")
    return first, last, total


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
        self._resolve = resolve
        self._http = http
        self._cache = cache
        self._settings = settings
        self._executor = executor  # read-ahead of every open handle runs here
        self._retry = retry or RetryPolicy.from_settings(settings)
        self._size = known_size
        self._probes: SingleFlight[None, int] = SingleFlight(clock=time.monotonic)
        # Keyed by the URL being replaced ("" before the first): every reader that needs
        # that URL replaced, after its expiry or a 403, shares one call to Notion.
        self._refreshes: SingleFlight[str, Location] = SingleFlight(clock=time.monotonic)
        self._location_lock = threading.Lock()
        self._location: Location | None = None
        self._obtained_at = 0.0  # when the current location was handed to us

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

    # ---- location ----------------------------------------------------------------------

    @property
    def probing(self) -> bool:
        """A size probe is under way."""
        return self._probes.in_flight(None)

    def offer(self, location: Location) -> None:
        """A URL for this file from a fresh listing: adopt it when it outlives the one held,
        so an expiry costs no API call of its own."""
        with self._location_lock:
            held = self._location
            if (
                held is not None
                and location.expires_at is not None
                and held.expires_at is not None
                and location.expires_at > held.expires_at
                and urlsplit(location.url).path == urlsplit(held.url).path
            ):
                self._adopt(location)

    def _held(self) -> tuple[Location | None, float]:
        with self._location_lock:
            return self._location, self._obtained_at

    def _current(self) -> Location:
        """The location to use now, refreshed first when it expires within the margin.

        While a refresh is under way, a reader whose URL has not expired yet goes on with it
        instead of waiting for Notion; only the reader that started the refresh (and readers
        whose URL is past its expiry) wait for the new one.
        """
        location, obtained_at = self._held()
        if location is None:
            self._replace(None, force=False)
            location, obtained_at = self._held()
            assert location is not None
        if not self._expiring(location, obtained_at):
            return location
        if self._refreshes.in_flight(location.url) and not self._expired(location):
            return location
        logger.debug("%s: URL expires within the margin; refreshing", self.key)
        return self._replace(location, force=True)

    def _replace(self, old: Location | None, *, force: bool) -> Location:
        """The location that replaces ``old`` (None: the first one), asked for once
        however many readers need it; each waits at most ``op_deadline_s``."""

        def work() -> Location:
            held = self._held()[0]
            if held is not None and (old is None or held.url != old.url):
                return held  # replaced meanwhile (a refresh that just landed, or an offer)
            location = self._resolve(force)  # a Notion call: no lock held
            with self._location_lock:
                self._adopt(location)
            return location

        return self._refreshes.run(
            "" if old is None else old.url,
            work,
            timeout_s=self._settings.op_deadline_s,
            what=f"{self.key}: URL refresh",
        )

    def _adopt(self, location: Location) -> None:
        """Take ``location`` as current (``_location_lock`` held)."""
        self._location, self._obtained_at = location, time.time()

    def _expiring(self, location: Location, obtained_at: float) -> bool:
        """Within the refresh margin of its expiry. The margin is at most a quarter of the
        lifetime we saw, so a short-lived URL is used before it is replaced (refreshing
        before every request would spend the API's rate limit on nothing)."""
        if location.expires_at is None:
            return False
        lifetime_s = max(0.0, location.expires_at - obtained_at)
        margin_s = min(self._settings.url_refresh_margin_s, lifetime_s / 4)
        return location.expires_at - time.time() < margin_s

    @staticmethod
    def _expired(location: Location) -> bool:
        return location.expires_at is not None and location.expires_at <= time.time()

    def _refresh_after_403(self, used: Location) -> None:
        """One refresh per rejected URL: readers that saw the 403 on it share the new one."""
        held = self._held()[0]
        if held is not None and held.url != used.url:
            return  # already replaced
        logger.info("%s: 403 from %s; refreshing its URL", self.key, redact_url(used.url))
        self._replace(used, force=True)

    # ---- HTTP --------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        """One request (streamed), following at most MAX_REDIRECTS redirects to http(s) only."""
        for _ in range(MAX_REDIRECTS + 1):
            _check_scheme(url)
            request = self._http.build_request(method, url, headers=headers)
            request.headers.pop("Authorization", None)
            try:
                response = self._http.send(
                    request, stream=True, follow_redirects=False, auth=_NO_AUTH
                )
            except httpx.TransportError as exc:
                raise NetworkError(f"{method} {redact_url(url)}: {type(exc).__name__}") from exc
            if not response.is_redirect:
                return response
            response.close()
            url = str(response.url.join(response.headers["Location"]))
            logger.debug("%s: redirected to %s", self.key, redact_url(url))
        raise FileHostError(f"{self.key}: more than {MAX_REDIRECTS} redirects")

    def _open(self, method: str, headers: dict[str, str]) -> httpx.Response:
        """A response that is neither a 403 nor a retryable failure, after refreshes and
        the retries the policy allows (every request here is a read)."""
        refreshed = False
        attempt = 0
        started = self._retry.now()
        while True:
            location = self._current()
            url = location.url if location.external else _keep_dot_segments(location.url)
            try:
                response = self._send(method, url, headers)
            except NetworkError as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                delay_s = self._retry.delay_for_error(cause, attempt, read=True)
                attempt = self._back_off(exc, delay_s, attempt, started)
                continue
            status = response.status_code
            if status == 403:
                response.close()
                where = redact_url(location.url)
                if location.external:
                    raise FileHostError(f"{where} answered 403", status=403)
                if refreshed:
                    raise UrlExpiredError(f"{where} answered 403 after a URL refresh", 403)
                self._refresh_after_403(location)
                refreshed = True
                continue
            delay_s = self._retry.delay_for_status(status, response.headers, attempt, read=True)
            if delay_s is None:
                return response
            response.close()
            error = FileHostError(f"{redact_url(location.url)} answered {status}", status)
            attempt = self._back_off(error, delay_s, attempt, started)

    def _back_off(
        self, error: NotionFSError, delay_s: float | None, attempt: int, started: float
    ) -> int:
        """Wait ``delay_s`` before retry number ``attempt + 1``, or raise ``error`` when the
        policy allows no more."""
        if delay_s is None or not self._retry.allows(delay_s, attempt, started):
            raise error
        logger.info("%s: %s; retrying in %.2f s", self.key, error, delay_s)
        self._retry.sleep(delay_s)
        return attempt + 1

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
            except _CutShort as cut:
                stalls = 0 if pos - attempt_start >= _RESUME_PROGRESS_BYTES else stalls + 1
                if stalls > self._settings.max_retries:
                    raise ResponseMismatch(f"{self.key}: body cut short again ({cut})") from None
                logger.info("%s: body cut at byte %d (%s); resuming", self.key, pos, cut)

    def _stream_once(self, pos: int, end: int) -> Iterator[bytes]:
        response = self._open("GET", _range_headers(pos, end - 1))
        try:
            skip = self._check_range_answer(response, pos, end)
            yield from self._body(response, skip, end - pos)
        finally:
            response.close()

    def _check_range_answer(self, response: httpx.Response, pos: int, end: int) -> int:
        """Validate the answer to ``bytes=pos-(end-1)``; the bytes to skip before ours."""
        _check_encoding(response)
        status = response.status_code
        if status == 206:
            first, last, total = _content_range(response)
            if (first, last) != (pos, end - 1):
                raise ResponseMismatch(f"asked bytes {pos}-{end - 1}, got {first}-{last}")
            if total is not None and self._size is not None and total != self._size:
                raise ResponseMismatch(f"{self.key}: object is {total} bytes, was {self._size}")
            return 0
        if status == 200:
            length = _content_length(response)
            if length is not None and self._size is not None and length != self._size:
                raise ResponseMismatch(f"{self.key}: object is {length} bytes, was {self._size}")
            if pos > self._settings.unranged_limit_bytes:
                raise FileHostError(f"{self.key}: host ignores Range; offset {pos} is too far")
            logger.debug("%s: host ignores Range; skipping %d bytes", self.key, pos)
            return pos
        if status == 416:
            raise RangeNotSatisfiable(f"{self.key}: bytes {pos}-{end - 1} past the end", 416)
        raise FileHostError(f"{self.key}: file host answered {status}", status)

    @staticmethod
    def _body(response: httpx.Response, skip: int, length: int) -> Iterator[bytes]:
        """``length`` bytes after the first ``skip``; never a byte past them."""
        remaining = length
        try:
            for chunk in response.iter_raw():
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                if len(chunk) >= remaining:
                    yield chunk if len(chunk) == remaining else chunk[:remaining]
                    return
                remaining -= len(chunk)
                yield chunk
        except httpx.TransportError as exc:  # connection dropped mid-body, read timeout
            raise _CutShort(type(exc).__name__) from exc
        raise _CutShort(f"{length - remaining} of {length} bytes arrived")

    # ---- size probe --------------------------------------------------------------------

    def _probe(self) -> int:
        if self._current().external:
            size = self._head_size()
            if size is not None:
                return size
        cuts = 0
        while True:
            try:
                return self._probe_with_get()
            except _CutShort as cut:
                if cuts >= self._settings.max_retries:
                    raise ResponseMismatch(f"{self.key}: size probe cut short ({cut})") from None
                cuts += 1
                logger.info("%s: size probe cut short (%s); probing again", self.key, cut)

    def _head_size(self) -> int | None:
        """Content-Length from a HEAD, or None when the host does not say."""
        try:
            response = self._send("HEAD", self._current().url, {"Accept-Encoding": "identity"})
        except NetworkError as exc:
            logger.debug("%s: HEAD failed (%s); probing with GET", self.key, exc)
            return None
        try:
            if response.status_code != 200:
                return None
            _check_encoding(response)
            return _content_length(response)
        except ResponseMismatch:
            return None
        finally:
            response.close()

    def _probe_with_get(self) -> int:
        """Size from a ranged GET of the head, keeping the head's bytes in the cache."""
        head_bytes = max(1, self._settings.probe_head_bytes)
        response = self._open("GET", _range_headers(0, head_bytes - 1))
        try:
            _check_encoding(response)
            status = response.status_code
            if status == 206:
                first, last, total = _content_range(response)
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
                length = _content_length(response)
                if length is None:
                    return self._count_body(response)
                kept = self._keep_head(response, min(head_bytes, length))
                if kept < length <= head_bytes:
                    # The whole body was asked for and fell short of its Content-Length: a
                    # cut (probe again) or a lie (no size to trust).
                    raise _CutShort(f"body ended at {kept} of {length} announced bytes")
                return length
            raise FileHostError(f"{self.key}: file host answered {status}", status)
        finally:
            response.close()

    def _empty_size(self, response: httpx.Response) -> int:
        """416 to ``bytes=0-...``: the object is empty (Content-Range ``bytes */0``)."""
        match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", "bytes */0"))
        if match is None or int(match[1]) != 0:
            raise ResponseMismatch(f"{self.key}: 416 for byte 0 of a non-empty object")
        return 0

    def _keep_head(self, response: httpx.Response, length: int) -> int:
        """Cache the head's bytes; a head cut short keeps what arrived. Returns the count."""
        pieces: list[bytes] = []
        try:
            for chunk in self._body(response, 0, length):
                pieces.append(chunk)
        except _CutShort as cut:
            logger.debug("%s: probe body cut short (%s)", self.key, cut)
        if pieces:
            self._cache.store(self.key, 0, b"".join(pieces))
        return sum(len(piece) for piece in pieces)

    def _count_size(self) -> int:
        response = self._open("GET", {"Accept-Encoding": "identity"})
        try:
            _check_encoding(response)
            if response.status_code != 200:
                raise FileHostError(f"{self.key}: file host answered {response.status_code}")
            length = _content_length(response)
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
