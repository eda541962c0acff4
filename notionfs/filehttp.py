"""The HTTP rules for file hosts: the client, URL checks, Range requests and answers, exact bodies.

The file-host client never carries an ``Authorization`` header (it is stripped from every
request), follows no redirect by itself (fileurl.py follows at most five, http/https only),
and logs show URLs as scheme://host/path (``redact_url``): a signed URL's query string is a
credential. A ranged request asks for identity encoding, so byte offsets are offsets into the
file; an answer's ``Content-Range`` and ``Content-Length`` are read strictly, and a body is
read to exactly the bytes asked for, never past them.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx

from .config import Settings
from .errors import ResponseMismatch, UnsafeUrlError
from .filetransport import DEFAULT_CHUNK_BYTES, FileHostTransport

__all__ = [
    "NO_AUTH",
    "CutShort",
    "check_encoding",
    "check_scheme",
    "content_length",
    "content_range",
    "exact_body",
    "file_host_client",
    "keep_dot_segments",
    "range_headers",
    "redact_url",
    "unsatisfied_total",
]

_SAFE_SCHEMES = ("http", "https")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


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


def file_host_client(settings: Settings, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> httpx.Client:
    """The client for file hosts: the lean transport (see filetransport.py), the settings'
    timeouts, no redirects followed by httpx (fileurl.py follows them itself, checked), and
    no credentials of any kind. ``chunk_bytes``: the pieces a body is received in; the
    kernel's read size, so that an aligned read is answered with a received piece as is."""
    return httpx.Client(
        transport=FileHostTransport(chunk_bytes=chunk_bytes),
        timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        follow_redirects=False,
    )


def check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SAFE_SCHEMES:
        raise UnsafeUrlError(f"refusing a {scheme or 'scheme-less'} URL: only http/https")


def keep_dot_segments(url: str) -> str:
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


NO_AUTH = _NoAuth()


class CutShort(Exception):
    """A body ended before the bytes it announced (internal: the range is resumed)."""


def content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def range_headers(first: int, last: int) -> dict[str, str]:
    # identity: byte offsets must be offsets into the file, not into a compressed body.
    return {"Range": f"bytes={first}-{last}", "Accept-Encoding": "identity"}


def check_encoding(response: httpx.Response) -> None:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ResponseMismatch(f"host sent {encoding}-encoded bytes though identity was asked")


def content_range(response: httpx.Response) -> tuple[int, int, int | None]:
    """(first, last, total or None) from a 206's Content-Range; ResponseMismatch if unusable."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None:
        raise ResponseMismatch("206 without a usable Content-Range")
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        raise ResponseMismatch(f"inconsistent Content-Range bytes {first}-{last}/{match[3]}")
    return first, last, total


def unsatisfied_total(response: httpx.Response) -> int | None:
    """The total of a 416's ``Content-Range: bytes */TOTAL`` (``bytes */0`` when absent);
    None when it says something else."""
    match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", "bytes */0"))
    return None if match is None else int(match[1])


def exact_body(response: httpx.Response, skip: int, length: int) -> Iterator[bytes]:
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
        raise CutShort(type(exc).__name__) from exc
    raise CutShort(f"{length - remaining} of {length} bytes arrived")
