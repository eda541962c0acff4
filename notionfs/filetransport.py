"""A lean HTTP/1.1 transport for file hosts: httpx's interface, the standard library's wire.

Streaming a file body through httpx's default transport (httpcore and h11) costs about five
times the CPU per byte of ``http.client``: each 64 KiB the socket gives is copied into h11's
buffer, sliced out, and copied again into ``bytes``, with several Python calls per piece. On
a FUSE mount the same process and the same GIL also serve the kernel's reads, so those
copies cap the whole mount. Here a body is read in ``chunk_bytes`` pieces, each received
straight into the ``bytes`` object handed on (one copy from the kernel, no joins), and the
pieces line up with the 128 KiB reads FUSE makes, so the cache can give them back as they are.

Only what remote.py needs: plain requests without bodies (GET, HEAD), keep-alive pooling per
origin, connect and read timeouts from httpx's ``Timeout``, TLS through httpx's own SSL
context, and failures raised as httpx's exceptions (a body cut short is a
``RemoteProtocolError``, as with httpx's default transport). Requests through a proxy never
get here: httpx routes them to its own proxy transports.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import ssl
import threading
from collections.abc import Iterator

import httpx

__all__ = ["FileHostTransport", "DEFAULT_CHUNK_BYTES"]

logger = logging.getLogger(__name__)

# The kernel's FUSE reads are 128 KiB: body pieces of that size are served without a copy.
DEFAULT_CHUNK_BYTES = 128 * 1024
_Origin = tuple[str, str, int]


def _is_stale(sock: socket.socket | None) -> bool:
    """An idle keep-alive socket the host closed (or wrote to unasked) cannot be reused."""
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class _Body(httpx.SyncByteStream):
    """A response body in fixed-size pieces; gives its connection back when read to the end."""

    def __init__(
        self,
        transport: FileHostTransport,
        origin: _Origin,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: http.client.HTTPConnection | None = connection
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        response, chunk_bytes = self._response, self._transport.chunk_bytes
        while True:
            remaining = response.length  # None when chunked or delimited by close
            size = chunk_bytes if remaining is None else min(chunk_bytes, remaining)
            if size == 0:
                return
            try:
                piece = response.read(size)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(
                    f"body read timed out: {exc}", request=self._request
                ) from exc
            except http.client.IncompleteRead as exc:
                raise httpx.RemoteProtocolError(
                    f"body cut short: {exc!r}", request=self._request
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise httpx.ReadError(f"body read failed: {exc!r}", request=self._request) from exc
            if not piece:
                if remaining:
                    raise httpx.RemoteProtocolError(
                        f"peer closed the connection {remaining} bytes before the body's end",
                        request=self._request,
                    )
                return
            yield piece

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        response = self._response
        # Reusable only when the whole body was read and the host keeps the connection.
        finished = response.isclosed() or response.length == 0
        response.close()
        if finished and not response.will_close:
            self._transport._give_back(self._origin, connection)
        else:
            connection.close()


class FileHostTransport(httpx.BaseTransport):
    """HTTP/1.1 over ``http.client`` with a keep-alive pool; thread-safe."""

    def __init__(
        self,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        max_idle_per_origin: int = 16,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")
        self.chunk_bytes = chunk_bytes
        self._max_idle = max_idle_per_origin
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ---- httpx.BaseTransport ---------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            raise httpx.UnsupportedProtocol(f"{request.method} is not for file hosts")
        origin = self._origin(request.url)
        timeouts = request.extensions.get("timeout", {})
        connection, reused = self._take(origin, timeouts.get("connect"), request)
        try:
            response = self._exchange(connection, request, timeouts.get("read"))
        except (OSError, http.client.HTTPException) as first:
            connection.close()
            if not reused:
                raise _translate(first, request) from first
            # A kept-alive connection the host dropped meanwhile: one fresh try (GET and
            # HEAD are safe to repeat), as a browser does.
            logger.debug("file host dropped a kept-alive connection (%r); reconnecting", first)
            connection, _ = self._take(origin, timeouts.get("connect"), request, fresh=True)
            try:
                response = self._exchange(connection, request, timeouts.get("read"))
            except (OSError, http.client.HTTPException) as second:
                connection.close()
                raise _translate(second, request) from second
        return httpx.Response(
            response.status,
            headers=[
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in response.getheaders()
            ],
            stream=_Body(self, origin, connection, response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": response.reason.encode("latin-1", "replace"),
            },
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            connection.close()

    # ---- connections -------------------------------------------------------------------

    @staticmethod
    def _origin(url: httpx.URL) -> _Origin:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        return scheme, url.host, url.port or (443 if scheme == "https" else 80)

    def _take(
        self,
        origin: _Origin,
        connect_s: float | None,
        request: httpx.Request,
        *,
        fresh: bool = False,
    ) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to ``origin`` that is still open, or a new connected one."""
        while not fresh:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            if not _is_stale(connection.sock):
                return connection, True
            connection.close()
        scheme, host, port = origin
        connection = (
            http.client.HTTPSConnection(host, port, timeout=connect_s, context=self._ssl())
            if scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=connect_s)
        )
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"connect timed out: {exc}", request=request) from exc
            raise httpx.ConnectError(f"connect failed: {exc!r}", request=request) from exc
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _give_back(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.close()

    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection, request: httpx.Request, read_s: float | None
    ) -> http.client.HTTPResponse:
        """Send the request line and headers as httpx built them; read the status and headers."""
        assert connection.sock is not None
        connection.sock.settimeout(read_s)
        target = request.url.raw_path.decode("ascii")
        connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.raw:
            connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
        connection.endheaders()
        return connection.getresponse()


def _translate(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """httpx's exception for a failure before any byte of the answer was used."""
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(f"no answer in time: {exc}", request=request)
    if isinstance(exc, http.client.HTTPException):
        return httpx.RemoteProtocolError(f"bad answer: {exc!r}", request=request)
    return httpx.ReadError(f"{exc!r}", request=request)
