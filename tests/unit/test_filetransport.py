"""FileHostTransport over real loopback sockets: the emulator's file host and a scripted server."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from notionfs.blockcache import BlockCache
from notionfs.config import Settings
from notionfs.emulator.filehost import FileHost
from notionfs.emulator.model import FileSpec
from notionfs.filetransport import FileHostTransport
from notionfs.fileurl import Location
from notionfs.fusebind import fuse_options, kernel_read_bytes
from notionfs.remote import RemoteFile, file_host_client

KiB = 1024
DATA = bytes((i * 7 + i // 251) % 256 for i in range(600 * KiB))
SPEC = FileSpec(name="data.bin", data=DATA, id="0f0f0f0f-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def filehost() -> Iterator[FileHost]:
    host = FileHost()
    host.register(SPEC)
    with host:
        yield host


@pytest.fixture
def host(filehost: FileHost) -> Iterator[FileHost]:
    filehost.reset()
    yield filehost
    filehost.reset()


def client(transport: FileHostTransport, read_timeout_s: float = 10.0) -> httpx.Client:
    return httpx.Client(transport=transport, timeout=httpx.Timeout(read_timeout_s, connect=5.0))


def get(http: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, list[bytes]]:
    with http.stream("GET", url, headers=headers) as response:
        return response, list(response.iter_raw())


def test_ranged_get_returns_exact_bytes_in_chunk_sized_pieces(host: FileHost) -> None:
    http = client(FileHostTransport(chunk_bytes=64 * KiB))
    url = host.signed_url(SPEC, 3600)[0]
    response, pieces = get(http, url, Range=f"bytes={10 * KiB}-{400 * KiB - 1}")
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {10 * KiB}-{400 * KiB - 1}/{len(DATA)}"
    assert b"".join(pieces) == DATA[10 * KiB : 400 * KiB]
    # Pieces arrive whole, not in whatever sizes the socket delivered.
    assert [len(p) for p in pieces[:-1]] == [64 * KiB] * (len(pieces) - 1)


def test_whole_body_and_head(host: FileHost) -> None:
    http = client(FileHostTransport())
    url = host.external_url(SPEC)
    response, pieces = get(http, url)
    assert response.status_code == 200 and b"".join(pieces) == DATA
    head = http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(DATA)) and head.content == b""


def test_a_body_cut_short_is_a_remote_protocol_error(host: FileHost) -> None:
    host.faults.cut_after_bytes = 100 * KiB
    http = client(FileHostTransport())
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", host.signed_url(SPEC, 3600)[0]) as response,
    ):
        for piece in response.iter_raw():
            received.append(piece)
    assert b"".join(received) == DATA[: len(b"".join(received))]
    assert len(b"".join(received)) <= 100 * KiB


def test_a_stalled_body_times_out(host: FileHost) -> None:
    host.faults.stall_after_bytes = 0  # stalls until reset
    http = client(FileHostTransport(), read_timeout_s=0.3)
    with (
        pytest.raises(httpx.ReadTimeout),
        http.stream("GET", host.signed_url(SPEC, 3600)[0]) as response,
    ):
        for _ in response.iter_raw():
            pass


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once it is closed
    with pytest.raises(httpx.ConnectError):
        client(FileHostTransport()).get(f"http://127.0.0.1:{port}/x")


def test_only_get_and_head() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        client(FileHostTransport()).post("http://127.0.0.1:9/x", content=b"x")


# ---- connection reuse, against a server that counts connections ------------------------


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.requests.append(dict(self.headers.items()))
        self.server.answer(self)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], Scripted]]:
    servers: list[Scripted] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> Scripted:
        server = Scripted(answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def fixed(body: bytes, *extra: tuple[str, str]) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    return answer


def test_read_bodies_keep_their_connection(scripted: Any) -> None:
    server = scripted(fixed(b"x" * 5000))
    http = client(FileHostTransport())
    for _ in range(3):
        assert http.get(server.url + "/a").content == b"x" * 5000
    assert http.head(server.url + "/a").status_code == 200
    assert server.connections == 1


def test_a_body_closed_early_closes_its_connection(scripted: Any) -> None:
    server = scripted(fixed(b"y" * 300 * KiB))
    http = client(FileHostTransport(chunk_bytes=16 * KiB))
    with http.stream("GET", server.url + "/a") as response:
        next(response.iter_raw())
    assert http.get(server.url + "/a").content == b"y" * 300 * KiB
    assert server.connections == 2  # the unread rest of a body is never taken for an answer


def test_connection_close_is_honoured(scripted: Any) -> None:
    server = scripted(fixed(b"z", ("Connection", "close")))
    http = client(FileHostTransport())
    http.get(server.url + "/a")
    http.get(server.url + "/a")
    assert server.connections == 2


def test_a_kept_connection_the_host_dropped_is_replaced(scripted: Any) -> None:
    def answer_then_hang_up(handler: BaseHTTPRequestHandler) -> None:
        fixed(b"ok")(handler)
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)  # the host drops the idle connection
        handler.close_connection = True

    server = scripted(answer_then_hang_up)
    http = client(FileHostTransport())
    assert [http.get(server.url + "/a").content for _ in range(3)] == [b"ok"] * 3
    assert server.connections == 3


def test_chunked_bodies_are_decoded(scripted: Any) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for part in (b"hello ", b"chunked ", b"world"):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.wfile.write(b"0\r\n\r\n")

    server = scripted(chunked)
    http = client(FileHostTransport())
    assert http.get(server.url + "/a").content == b"hello chunked world"
    assert http.get(server.url + "/a").content == b"hello chunked world"
    assert server.connections == 1


def test_headers_go_out_as_httpx_built_them(scripted: Any) -> None:
    server = scripted(fixed(b"."))
    http = client(FileHostTransport())
    http.get(server.url + "/p%20q?X-Amz-Signature=abc", headers={"Range": "bytes=0-0"})
    sent = [name.lower() for name in server.requests[0]]
    assert sorted(sent) == sorted(set(sent)), "a header went out twice"
    headers = {k.lower(): v for k, v in server.requests[0].items()}
    assert headers["range"] == "bytes=0-0"
    assert headers["host"] == server.url.removeprefix("http://")


# ---- through RemoteFile ------------------------------------------------------------------


def _remote(
    host: FileHost,
    http: httpx.Client,
    cache: BlockCache,
    settings: Settings,
    pool: ThreadPoolExecutor,
    known_size: int | None = None,
) -> RemoteFile:
    """The test file behind a fresh signed URL of the host, read through ``http``."""
    return RemoteFile(
        "data",
        lambda force: Location(host.signed_url(SPEC, 3600)[0], None),
        http,
        cache,
        settings,
        executor=pool,
        known_size=known_size,
    )


def test_remote_file_reads_through_the_lean_client(host: FileHost) -> None:
    settings = Settings(block_size_bytes=64 * KiB, probe_head_bytes=16 * KiB, backoff_base_s=0.01)
    cache = BlockCache(1024 * KiB, settings.block_size_bytes)
    with file_host_client(settings) as http, ThreadPoolExecutor(2) as pool:
        assert isinstance(http._transport, FileHostTransport)
        remote = _remote(host, http, cache, settings, pool)
        assert remote.size() == len(DATA)
        reader = remote.reader()
        assert reader.read(123_456, 200 * KiB) == DATA[123_456 : 123_456 + 200 * KiB]
        host.faults.cut_after_bytes = 40 * KiB  # every body cut: resumed until complete
        assert reader.read(300 * KiB, 150 * KiB) == DATA[300 * KiB : 450 * KiB]
        reader.close()


def test_kernel_sized_pieces_answer_an_aligned_read_without_a_copy(host: FileHost) -> None:
    """Under libfuse 3 the kernel reads 1 MiB at a time, and bodies arrive in pieces of that
    size: an aligned read gets the received piece itself, not a join of smaller ones."""
    settings = Settings(block_size_bytes=256 * KiB, probe_head_bytes=16 * KiB)
    assert kernel_read_bytes(settings, 2) == 128 * KiB
    assert kernel_read_bytes(settings, 3) == 1024 * KiB
    assert fuse_options(settings, "notion:x", {}, libfuse_major=3)["max_read"] == 1024 * KiB
    assert kernel_read_bytes(Settings(read_ahead_kb=0), 3) == 128 * KiB
    cache = BlockCache(1024 * KiB, settings.block_size_bytes)
    with file_host_client(settings, chunk_bytes=256 * KiB) as http, ThreadPoolExecutor(1) as pool:
        transport = http._transport
        assert isinstance(transport, FileHostTransport) and transport.chunk_bytes == 256 * KiB
        remote = _remote(host, http, cache, settings, pool, known_size=len(DATA))
        cache.prefetch("data", len(DATA), 256 * KiB, 512 * KiB, remote._fetch)
        first = cache.read_cached("data", len(DATA), 256 * KiB, 512 * KiB)
        assert first == DATA[256 * KiB : 512 * KiB]
        assert cache.read_cached("data", len(DATA), 256 * KiB, 512 * KiB) is first


# ---- TLS, as real file hosts speak it ------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a cert")
def test_https_with_verified_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = Scripted(fixed(b"secret bytes"))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    server.socket = served.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}/f"
        trusting = ssl.create_default_context(cafile=str(cert))
        http = client(FileHostTransport(ssl_context=trusting))
        assert http.get(url).content == b"secret bytes"
        assert http.get(url).content == b"secret bytes"
        assert server.connections == 1
        with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused
            client(FileHostTransport()).get(url)
    finally:
        server.shutdown()
        server.server_close()
