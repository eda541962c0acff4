"""Signed-URL file host of the Notion emulator: S3 presigned GET semantics on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import random
import re
import secrets
import socket
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from notionfs.emulator.httpserver import TrackingServer
from notionfs.emulator.model import FileSpec
from notionfs.emulator.wan import LinkConditions, Pacer, delay

__all__ = ["FileHost", "FileHostFaults", "FileHostCounters", "FileRequest"]

logger = logging.getLogger(__name__)

_ALGORITHM = "AWS4-HMAC-SHA256"
_REGION = "us-west-2"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# SigV4 presigned URLs live at most seven days.
_MAX_EXPIRES_S = 7 * 24 * 3600
_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_SPACE_NAMESPACE = uuid.UUID("0b7f3c52-1d4e-4f0a-9a61-3e2c8d5b9f47")
_EXTERNAL_PREFIX = "external"
# Bodies go out in large slices: few syscalls, and fault offsets stay exact.
_CHUNK_BYTES = 8 << 20
# How much wrong_content_length over-announces.
_EXTRA_LENGTH_BYTES = 1024
# Oldest log entries are dropped past this many, so a long-running host stays bounded.
_LOG_LIMIT = 100_000
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_BASE36 = string.digits + string.ascii_uppercase
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)
# S3 codes and messages for statuses a fault may inject.
_FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "An error occurred when parsing the HTTP request."),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_SIGNATURE_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


# ---- counters ------------------------------------------------------------------------------


@dataclass
class FileRequest:
    """One request as the host saw it. ``headers`` keys are lower-case; ``path`` has no query."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    range: str | None
    status: int = 0
    bytes_sent: int = 0


class FileHostCounters:
    """Thread-safe request accounting; a request is counted before its response goes out.

    ``bytes_sent`` counts body bytes; it is raised before each slice is written and lowered
    again by what a disconnecting client never got, so a client that has read a whole body
    always finds it counted. ``disconnects`` counts responses cut short by the client.
    ``faults`` counts the responses a fault switch changed: "stall", "cut", "ignore_range"
    (a Range header ignored), "wrong_content_length". ``in_flight`` is how many responses
    are being written now and ``peak_in_flight`` the most at once since the last reset (or
    ``reset_peak()``): how many ranged requests a reader keeps going in parallel.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.requests = 0
        self.bytes_sent = 0
        self.disconnects = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.by_status: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.log: list[FileRequest] = []

    def snapshot(self) -> FileHostCounters:
        """An independent copy, consistent at one instant."""
        copy = FileHostCounters()
        with self._cond:
            copy.requests = self.requests
            copy.bytes_sent = self.bytes_sent
            copy.disconnects = self.disconnects
            copy.in_flight = self.in_flight
            copy.peak_in_flight = self.peak_in_flight
            copy.by_status = Counter(self.by_status)
            copy.faults = Counter(self.faults)
            copy.log = [replace(entry, headers=dict(entry.headers)) for entry in self.log]
        return copy

    def wait_for(
        self, predicate: Callable[[FileHostCounters], bool], timeout_s: float = 10.0
    ) -> bool:
        """Block until ``predicate(counters)`` holds (checked on every update) or time runs out."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout_s)

    def _record(self, entry: FileRequest) -> None:
        with self._cond:
            self.requests += 1
            self.by_status[entry.status] += 1
            self.log.append(entry)
            if len(self.log) > _LOG_LIMIT:
                # A long-running demo must not grow without bound: keep the newest half.
                del self.log[: len(self.log) - _LOG_LIMIT // 2]
            self._cond.notify_all()

    def _add_bytes(self, entry: FileRequest, count: int) -> None:
        with self._cond:
            self.bytes_sent += count
            entry.bytes_sent += count
            self._cond.notify_all()

    def reset_peak(self) -> None:
        """Start counting ``peak_in_flight`` afresh from the responses in flight now."""
        with self._cond:
            self.peak_in_flight = self.in_flight

    def _response_started(self) -> None:
        with self._cond:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _response_ended(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def _count_fault(self, name: str) -> None:
        with self._cond:
            self.faults[name] += 1
            self._cond.notify_all()

    def _client_gone(self, entry: FileRequest, unsent_bytes: int) -> None:
        with self._cond:
            self.bytes_sent -= unsent_bytes
            entry.bytes_sent -= unsent_bytes
            self.disconnects += 1
            self._cond.notify_all()

    def _reset(self) -> None:
        with self._cond:
            self.requests = 0
            self.bytes_sent = 0
            self.disconnects = 0
            self.peak_in_flight = self.in_flight
            self.by_status.clear()
            self.faults.clear()
            self.log.clear()
            self._cond.notify_all()


# ---- faults --------------------------------------------------------------------------------


class _MintCounter:
    """Numbers minted URLs so expire_all_now() revokes exactly those minted before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0

    def take(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value

    def peek(self) -> int:
        with self._lock:
            return self._next


@dataclass
class FileHostFaults:
    """Switches that make the host misbehave; all off by default, settable while serving.

    ``stall_s`` alone delays the whole response (time to first byte). With
    ``stall_after_bytes`` the stall happens after that many body bytes instead, and lasts
    ``stall_s`` or, when ``stall_s`` is 0, until ``reset()`` or ``stop()``.
    ``error_status`` answers that fraction (``error_rate``, default all) of GETs with that
    status, drawn from a PRNG seeded with ``seed`` so a sequential test is reproducible.
    ``stall_rate`` and ``cut_rate`` likewise pick the fraction of responses that stall or
    are cut (default all).

    ``external_urls`` maps a file id to the URL its external file object carries instead of
    this host's (``file:///etc/passwd``, ``ftp://...``: what a Notion user may paste).
    ``redirects`` maps a file id to a ``Location``: every request for that file answers 302.
    """

    stall_s: float = 0.0
    stall_after_bytes: int | None = None
    stall_rate: float = 1.0
    cut_after_bytes: int | None = None
    cut_rate: float = 1.0
    ignore_range: bool = False
    error_status: int | None = None
    error_rate: float = 1.0
    wrong_content_length: bool = False
    external_urls: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    _mints: _MintCounter = field(default_factory=_MintCounter, init=False, repr=False)
    _revoked_below: int = field(default=0, init=False, repr=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def expire_all_now(self) -> None:
        """Every URL minted before this call answers 403 "Request has expired" from now on."""
        self._revoked_below = self._mints.peek()

    def _is_revoked(self, mint_number: int) -> bool:
        return mint_number < self._revoked_below

    def _draw(self, rate: float) -> bool:
        """True for ``rate`` of the calls; a rate of 1 or more draws nothing from the PRNG."""
        if rate >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < rate

    def _draw_error(self) -> int | None:
        status = self.error_status
        if status is None:
            return None
        return status if self._draw(self.error_rate) else None

    def _body_view(self) -> _BodyFaults:
        stalls = self.stall_s > 0 or self.stall_after_bytes is not None
        stalled = stalls and self._draw(self.stall_rate)
        cut = self.cut_after_bytes is not None and self._draw(self.cut_rate)
        return _BodyFaults(
            self.stall_s if stalled else 0.0,
            self.stall_after_bytes if stalled else None,
            self.cut_after_bytes if cut else None,
            self.wrong_content_length,
        )

    def _redirect_for(self, segments: list[str]) -> str | None:
        """The Location a request for this path is sent to, when a redirect is set."""
        if len(segments) != 4 or not self.redirects:
            return None
        return self.redirects.get(unquote(segments[2]))

    def _reset(self) -> None:
        for spec in fields(self):
            if spec.init:
                factory = spec.default_factory
                fresh = factory() if callable(factory) else spec.default
                setattr(self, spec.name, fresh)
        with self._lock:
            self._rng.seed(self.seed)
        self._revoked_below = 0


@dataclass(frozen=True)
class _BodyFaults:
    """The switches one response obeys, read once so a change mid-body cannot tear it."""

    stall_s: float
    stall_after_bytes: int | None
    cut_after_bytes: int | None
    wrong_content_length: bool


# ---- request decisions (no I/O) ------------------------------------------------------------


@dataclass
class _Body:
    """What a response carries: a window of an in-memory buffer or of a file on disk."""

    length_bytes: int
    offset: int = 0
    data: memoryview | None = None
    path: Path | None = None

    def window(self, start: int, end_inclusive: int) -> _Body:
        return replace(self, offset=self.offset + start, length_bytes=end_inclusive - start + 1)


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: _Body | None = None
    close: bool = False


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    request_id: str
    host_id: str


@dataclass
class _Stored:
    spec: FileSpec
    version: int
    etag: str
    last_modified: str


class _Unsatisfiable(Exception):
    """The Range header is valid but selects nothing (RFC 9110 section 14.1.1)."""


def _parse_range(header: str | None, size_bytes: int) -> tuple[int, int] | None:
    """One byte range as (first, last) inclusive; None means "send the whole body".

    S3 answers one range only; like RFC 9110 it ignores a header it cannot parse, including a
    multi-range one. Raises _Unsatisfiable for a range that starts past the end, a zero-length
    suffix, or any range on an empty object.
    """
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix_bytes = int(last_text)
        if suffix_bytes == 0 or size_bytes == 0:
            raise _Unsatisfiable
        return max(0, size_bytes - suffix_bytes), size_bytes - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid, so ignored
    if first >= size_bytes:
        raise _Unsatisfiable
    last = int(last_text) if last_text else size_bytes - 1
    return first, min(last, size_bytes - 1)


def _uri_encode(value: str) -> str:
    """SigV4 UriEncode: everything but unreserved characters is percent-encoded."""
    return quote(value, safe="-_.~")


def _canonical_path(raw_path: str) -> str:
    # Re-encode each segment so a client's harmless re-quoting never breaks the signature.
    return "/".join(_uri_encode(unquote(segment)) for segment in raw_path.split("/"))


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    signed = sorted(
        (_uri_encode(key), _uri_encode(value)) for key, value in pairs if key != "X-Amz-Signature"
    )
    return "&".join(f"{key}={value}" for key, value in signed)


def _mint_number(credential: str) -> int:
    # The access key is "ASIA" + six base-36 digits of the mint number + ten random characters.
    return int(credential[4:10], 36)


def _access_key(mint_number: int) -> str:
    digits = ""
    value = mint_number
    while value or not digits:
        value, digit = divmod(value, 36)
        digits = _BASE36[digit] + digits
    nonce = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(10))
    return "ASIA" + digits.rjust(6, "0") + nonce


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(_ISO_FORMAT)


def _etag_matches(header: str, etag: str) -> bool:
    candidates = (item.strip().removeprefix("W/") for item in header.split(","))
    return any(candidate in ("*", etag) for candidate in candidates)


def _error(
    request: _Request,
    status: int,
    code: str,
    message: str,
    details: Iterable[tuple[str, str]] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> _Response:
    """An S3-style XML error document."""
    elements = [("Code", code), ("Message", message), *details]
    elements += [("RequestId", request.request_id), ("HostId", request.host_id)]
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in elements)
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()
    return _Response(
        status,
        [("Content-Type", "application/xml"), *headers],
        _Body(len(document), data=memoryview(document)),
    )


def _fault_error(status: int) -> tuple[str, str]:
    """S3's code and message for an injected status; a made-up code for the others."""
    if status in _FAULT_ERRORS:
        return _FAULT_ERRORS[status]
    try:
        return HTTPStatus(status).phrase.replace(" ", ""), ""
    except ValueError:
        return "Error", ""


def _range_error(request: _Request, range_header: str, size_bytes: int) -> _Response:
    return _error(
        request,
        416,
        "InvalidRange",
        "The requested range is not satisfiable",
        [("RangeRequested", range_header), ("ActualObjectSize", str(size_bytes))],
        [("Content-Range", f"bytes */{size_bytes}")],
    )


def _body_of(spec: FileSpec) -> _Body:
    if spec.data is not None:
        return _Body(len(spec.data), data=memoryview(spec.data))
    if spec.path is None:
        raise FileNotFoundError(spec.id)
    return _Body(spec.path.stat().st_size, path=spec.path)


# ---- the host ------------------------------------------------------------------------------


class FileHost:
    """An S3-like origin serving registered FileSpecs under presigned or external URLs.

    ``clock`` (seconds since the epoch) decides when URLs are minted and when they expire;
    tests may replace it to travel in time. ``link`` holds the network's conditions (time to
    first byte, each connection's bandwidth; 0 = off), settable while serving; ``reset()``
    puts back the ones given here.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: bytes | None = None,
        ttfb_s: float = 0.0,
        conn_bandwidth_bps: float = 0.0,
    ) -> None:
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"the file host only listens on IPv4 loopback, not {host!r}")
        self._address = (host, port)
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        digest = hashlib.sha256(self._secret).hexdigest()
        self._space_id = str(uuid.uuid5(_SPACE_NAMESPACE, digest))
        self.base_url = ""
        self.faults = FileHostFaults()
        self.counters = FileHostCounters()
        self._link_defaults = (ttfb_s, conn_bandwidth_bps)
        self.link = LinkConditions(ttfb_s, conn_bandwidth_bps)
        self.clock: Callable[[], float] = time.time
        self._files: dict[str, _Stored] = {}
        self._files_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()

    # -- lifecycle --

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("file host already started")
        self._stopping.clear()
        server = _Server(self._address, self)
        self._server = server
        self.base_url = f"http://{self._address[0]}:{server.server_port}"
        # A short poll interval keeps stop() prompt.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="notionfs-filehost",
            daemon=True,
        )
        self._thread.start()
        logger.info("file host serving on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving; wakes stalled responses and drops open connections."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        self._wake.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join()
        self._server = self._thread = None
        logger.info("file host stopped")

    def __enter__(self) -> FileHost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Faults, counters and the link's conditions back to their defaults; ends any stall
        in progress."""
        self.faults._reset()
        self.counters._reset()
        self.link.ttfb_s, self.link.conn_bandwidth_bps = self._link_defaults
        woken, self._wake = self._wake, threading.Event()
        woken.set()

    # -- files --

    def register(self, spec: FileSpec) -> None:
        """Serve ``spec`` under its id; a new ``version`` gets a new ETag and Last-Modified."""
        if not spec.id:
            raise ValueError(f"FileSpec {spec.name!r} has no id")
        with self._files_lock:
            stored = self._files.get(spec.id)
            if stored is not None and stored.version == spec.version:
                stored.spec = spec
                return
            etag = hashlib.md5(f"{spec.id}:{spec.version}".encode()).hexdigest()
            self._files[spec.id] = _Stored(
                spec, spec.version, f'"{etag}"', formatdate(self.clock(), usegmt=True)
            )

    def unregister(self, file_id: str) -> None:
        """Stop serving a file: its URLs answer 404 NoSuchKey."""
        with self._files_lock:
            self._files.pop(file_id, None)

    def signed_url(self, spec: FileSpec, expiry_s: float) -> tuple[str, datetime]:
        """A fresh presigned GET URL for ``spec`` and the moment (UTC) it expires."""
        if not self.base_url:
            raise RuntimeError("signed_url() needs a started file host")
        if not spec.id:
            raise ValueError(f"FileSpec {spec.name!r} has no id")
        # X-Amz-Expires is whole seconds, at least one, at most a week.
        expires_s = max(1, math.ceil(expiry_s))
        if expires_s > _MAX_EXPIRES_S:
            raise ValueError(f"expiry_s {expiry_s} exceeds S3's limit of {_MAX_EXPIRES_S} s")
        issued = datetime.fromtimestamp(int(self.clock()), UTC)
        credential = "/".join(
            [
                _access_key(self.faults._mints.take()),
                issued.strftime("%Y%m%d"),
                _REGION,
                "s3",
                "aws4_request",
            ]
        )
        path = self._signed_path(spec)
        params = [
            ("X-Amz-Algorithm", _ALGORITHM),
            ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("X-Amz-Credential", credential),
            ("X-Amz-Date", issued.strftime(_AMZ_DATE_FORMAT)),
            ("X-Amz-Expires", str(expires_s)),
            ("X-Amz-SignedHeaders", "host"),
            ("x-id", "GetObject"),
        ]
        signature = self._signature(self._string_to_sign("GET", path, params))
        params.insert(5, ("X-Amz-Signature", signature))
        query = "&".join(f"{key}={_uri_encode(value)}" for key, value in params)
        return f"{self.base_url}{path}?{query}", issued + timedelta(seconds=expires_s)

    def external_url(self, spec: FileSpec) -> str:
        """A stable unsigned URL (HEAD allowed), as for ``{"type": "external"}`` files."""
        override = self.faults.external_urls.get(spec.id)
        if override is not None:
            return override
        if not self.base_url:
            raise RuntimeError("external_url() needs a started file host")
        return f"{self.base_url}/{_EXTERNAL_PREFIX}/{spec.id}/{_uri_encode(spec.name)}"

    def _signed_path(self, spec: FileSpec) -> str:
        return f"/{self._space_id}/{spec.id}/{_uri_encode(spec.name)}"

    # -- signatures --

    def _string_to_sign(self, method: str, raw_path: str, pairs: list[tuple[str, str]]) -> str:
        canonical_request = "\n".join(
            [method, _canonical_path(raw_path), _canonical_query(pairs), "UNSIGNED-PAYLOAD"]
        )
        params = dict(pairs)
        scope = params.get("X-Amz-Credential", "").partition("/")[2]
        return "\n".join(
            [
                _ALGORITHM,
                params.get("X-Amz-Date", ""),
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )

    def _signature(self, string_to_sign: str) -> str:
        return hmac.new(self._secret, string_to_sign.encode(), hashlib.sha256).hexdigest()

    # -- answering a request --

    def _respond(self, request: _Request) -> _Response:
        if request.method == "GET":
            status = self.faults._draw_error()
            if status is not None:
                return _error(request, status, *_fault_error(status))
        segments = request.path.split("/")
        location = self.faults._redirect_for(segments)
        if location is not None:
            return _Response(302, [("Location", location)], _Body(0, data=memoryview(b"")))
        if len(segments) > 1 and segments[1] == _EXTERNAL_PREFIX:
            return self._respond_external(request, segments)
        return self._respond_signed(request, segments)

    def _respond_external(self, request: _Request, segments: list[str]) -> _Response:
        if request.method not in ("GET", "HEAD"):
            return _error(
                request,
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                [("Method", request.method), ("ResourceType", "OBJECT")],
                [("Allow", "GET, HEAD")],
            )
        if len(segments) == 4 and not segments[3]:
            return self._external_index(segments)
        return self._object_response(request, self._lookup(segments, _EXTERNAL_PREFIX))

    def _external_index(self, segments: list[str]) -> _Response:
        """``/external/<id>/``: an HTML index naming the one file, as a static web server
        lists a directory (what rclone's ``:http:`` backend reads, for the benchmarks)."""
        with self._files_lock:
            stored = self._files.get(unquote(segments[2]))
        html = [("Content-Type", "text/html; charset=utf-8")]
        if stored is None:
            return _Response(404, html, _Body(0, data=memoryview(b"")))
        name = stored.spec.name
        link = f'<a href="{_uri_encode(name)}">{escape(name)}</a>'
        data = f"<html><body>{link}</body></html>".encode()
        return _Response(200, html, _Body(len(data), data=memoryview(data)))

    def _respond_signed(self, request: _Request, segments: list[str]) -> _Response:
        pairs = parse_qsl(request.query, keep_blank_values=True)
        params = dict(pairs)
        if not any(name in params for name in _AUTH_PARAMS):
            return _error(request, 403, "AccessDenied", "Access Denied")
        refusal = self._check_signature(request, pairs) or self._check_expiry(request, params)
        if refusal is not None:
            # Only GET is ever signed, so every other method ends here, as on S3.
            return refusal
        return self._object_response(request, self._lookup(segments, self._space_id))

    def _check_signature(self, request: _Request, pairs: list[tuple[str, str]]) -> _Response | None:
        string_to_sign = self._string_to_sign(request.method, request.path, pairs)
        provided = dict(pairs).get("X-Amz-Signature", "")
        if hmac.compare_digest(self._signature(string_to_sign), provided):
            return None
        credential = dict(pairs).get("X-Amz-Credential", "")
        details = [
            ("AWSAccessKeyId", credential.partition("/")[0]),
            ("StringToSign", string_to_sign),
            ("SignatureProvided", provided),
        ]
        return _error(request, 403, "SignatureDoesNotMatch", _SIGNATURE_MESSAGE, details)

    def _check_expiry(self, request: _Request, params: dict[str, str]) -> _Response | None:
        # The signature held, so these parameters are ones this host minted.
        issued = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE_FORMAT)
        expires_s = int(params["X-Amz-Expires"])
        expiry = issued.replace(tzinfo=UTC).timestamp() + expires_s
        now = self.clock()
        revoked = self.faults._is_revoked(_mint_number(params["X-Amz-Credential"]))
        # Whole seconds, as the times in S3's answer: a URL lives at least X-Amz-Expires.
        if int(now) <= expiry and not revoked:
            return None
        details = [
            ("X-Amz-Expires", str(expires_s)),
            ("Expires", _iso(expiry)),
            ("ServerTime", _iso(now)),
        ]
        return _error(request, 403, "AccessDenied", "Request has expired", details)

    def _lookup(self, segments: list[str], prefix: str) -> _Stored | None:
        if len(segments) != 4 or segments[0] or unquote(segments[1]) != prefix:
            return None
        with self._files_lock:
            stored = self._files.get(unquote(segments[2]))
        if stored is None or unquote(segments[3]) != stored.spec.name:
            return None
        return stored

    def _object_response(self, request: _Request, stored: _Stored | None) -> _Response:
        try:
            if stored is None:
                raise FileNotFoundError(request.path)
            body = _body_of(stored.spec)
        except OSError:
            key = unquote(request.path.lstrip("/"))
            return _error(
                request, 404, "NoSuchKey", "The specified key does not exist.", [("Key", key)]
            )
        meta = [
            ("Last-Modified", stored.last_modified),
            ("ETag", stored.etag),
            ("Accept-Ranges", "bytes"),
            ("Content-Type", stored.spec.content_type),
        ]
        refusal = self._check_preconditions(request, stored.etag, meta)
        if refusal is not None:
            return refusal
        range_header = request.headers.get("range")
        if self.faults.ignore_range and range_header is not None:
            self.counters._count_fault("ignore_range")
            range_header = None
        try:
            span = _parse_range(range_header, body.length_bytes)
        except _Unsatisfiable:
            return _range_error(request, range_header or "", body.length_bytes)
        if span is None:
            return _Response(200, meta, body)
        first, last = span
        content_range = ("Content-Range", f"bytes {first}-{last}/{body.length_bytes}")
        return _Response(206, [*meta, content_range], body.window(first, last))

    def _check_preconditions(
        self, request: _Request, etag: str, meta: list[tuple[str, str]]
    ) -> _Response | None:
        if_match = request.headers.get("if-match")
        if if_match is not None and not _etag_matches(if_match, etag):
            return _error(
                request,
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                [("Condition", "If-Match")],
            )
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            return _Response(304, meta[:3])
        return None

    # -- stalls --

    def _stall(self, duration_s: float | None) -> bool:
        """Wait out a stall (None: until reset or stop); False when the host is stopping."""
        self._wake.wait(duration_s)
        return not self._stopping.is_set()


# ---- HTTP plumbing -------------------------------------------------------------------------


class _ClientGone(Exception):
    """The response cannot be completed: the client left, the file shrank, or the host stops."""


class _Server(TrackingServer):
    label = "file host"
    # Parallel size probes open many connections at once; the default backlog of 5 drops SYNs.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], host: FileHost) -> None:
        self.host = host
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; Nagle would hold the second one back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One handler per TCP connection: the bandwidth cap holds per connection.
        self._pacer = Pacer()

    def version_string(self) -> str:
        return "AmazonS3"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by _handle, without their query string."""

    def log_message(self, fmt: str, *args: Any) -> None:
        # The request line may carry a signed query string: never let it reach a log.
        logger.debug("file host: %s", re.sub(r"\?\S*", "?...", fmt % args))

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _handle(self) -> None:
        host = self.server.host
        target = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = _Request(
            self.command,
            target.path,
            target.query,
            headers,
            secrets.token_hex(8).upper(),
            base64.b64encode(secrets.token_bytes(48)).decode(),
        )
        response = host._respond(request)
        # A request body is never read, so the connection cannot carry another request.
        response.close = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
        entry = FileRequest(
            request.method, request.path, request.query, headers, headers.get("range")
        )
        entry.status = response.status
        host.counters._record(entry)
        logger.debug("%s %s -> %d", request.method, request.path, response.status)
        host.counters._response_started()
        try:
            self._write(request, response, entry)
        except _ClientGone:
            self.close_connection = True
        finally:
            host.counters._response_ended()

    def _write(self, request: _Request, response: _Response, entry: FileRequest) -> None:
        host = self.server.host
        # Time to first byte: before the status line, so headers and body both wait for it.
        if not delay(host.link.ttfb_s, host._stopping):
            raise _ClientGone
        faults = host.faults._body_view()
        if faults.stall_s > 0 and faults.stall_after_bytes is None:
            host.counters._count_fault("stall")
            if not host._stall(faults.stall_s):
                raise _ClientGone
        body = response.body
        send_body = body is not None and request.method != "HEAD"
        announced = None if body is None else body.length_bytes
        if send_body and announced is not None and faults.wrong_content_length:
            host.counters._count_fault("wrong_content_length")
            announced += _EXTRA_LENGTH_BYTES
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("x-amz-request-id", request.request_id)
        self.send_header("x-amz-id-2", request.host_id)
        if announced is not None:
            self.send_header("Content-Length", str(announced))
        if response.close:
            self.send_header("Connection", "close")
        self.end_headers()
        if body is None or not send_body:
            return
        complete = self._send_body(body, entry, faults)
        if not complete or announced != body.length_bytes:
            raise _ClientGone

    def _send_body(self, body: _Body, entry: FileRequest, faults: _BodyFaults) -> bool:
        """Write the body honouring the stall and cut faults; True if all of it went out."""
        host = self.server.host
        limit = body.length_bytes
        if faults.cut_after_bytes is not None:
            limit = min(limit, max(0, faults.cut_after_bytes))
            if limit < body.length_bytes:
                host.counters._count_fault("cut")
        position = 0
        stall_at = faults.stall_after_bytes
        with _sender(body, self.connection) as send:
            if stall_at is not None and stall_at < limit:
                host.counters._count_fault("stall")
                self._send_span(send, body.offset, body.offset + stall_at, entry)
                if not host._stall(faults.stall_s if faults.stall_s > 0 else None):
                    return False
                position = stall_at
            self._send_span(send, body.offset + position, body.offset + limit, entry)
        return limit == body.length_bytes

    def _send_span(
        self, send: Callable[[int, int], int], start: int, end: int, entry: FileRequest
    ) -> None:
        host = self.server.host
        counters = host.counters
        position = start
        while position < end:
            rate_bps = host.link.conn_bandwidth_bps  # read per slice: settable mid-body
            chunk = min(Pacer.slice_bytes(rate_bps, _CHUNK_BYTES), end - position)
            # Count before writing, so a client that has the bytes always finds them counted.
            counters._add_bytes(entry, chunk)
            done = 0
            try:
                while done < chunk:
                    sent = send(position + done, chunk - done)
                    if sent == 0:
                        raise _ClientGone  # the file on disk shrank under us
                    done += sent
            except (OSError, _ClientGone) as exc:
                counters._client_gone(entry, chunk - done)
                logger.debug("file host client gone mid-body: %r", exc)
                raise _ClientGone from exc
            position += chunk
            self._pacer.sent(chunk, rate_bps)


@contextmanager
def _sender(body: _Body, sock: socket.socket) -> Iterator[Callable[[int, int], int]]:
    """send(offset, count) -> bytes written, for a body's source: memory or sendfile."""
    if body.data is not None:
        view = body.data
        yield lambda offset, count: sock.send(view[offset : offset + count])
        return
    assert body.path is not None
    try:
        fd = os.open(body.path, os.O_RDONLY)
    except OSError as exc:  # removed since the headers were decided
        raise _ClientGone from exc
    try:
        out_fd = sock.fileno()
        yield lambda offset, count: os.sendfile(out_fd, fd, offset, count)
    finally:
        os.close(fd)
