"""RemoteFile against an in-process file host with Range semantics and switchable faults."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from notionfs import fileurl as fileurl_module
from notionfs import remote as remote_module
from notionfs.blockcache import BlockCache
from notionfs.config import Settings
from notionfs.errors import (
    DeadlineExceeded,
    FileHostError,
    NetworkError,
    RangeNotSatisfiable,
    ResponseMismatch,
    UnsafeUrlError,
    UrlExpiredError,
)
from notionfs.filehttp import redact_url
from notionfs.fileurl import Location
from notionfs.remote import RemoteFile
from notionfs.retry import RetryPolicy

KiB = 1024
MiB = 1024 * KiB
SIGNED = "https://files.test"
EXTERNAL = "http://ext.test"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def pattern(size: int) -> bytes:
    unit = bytes((i * 7 + 3) % 251 for i in range(251 * 4))
    return (unit * (size // len(unit) + 1))[:size]


class Body(httpx.SyncByteStream):
    """A response body that counts what it hands out and can break off early."""

    def __init__(self, host: FakeHost, data: bytes, cut_at: int | None, raise_on_cut: bool) -> None:
        self.host, self.data, self.cut_at, self.raise_on_cut = host, data, cut_at, raise_on_cut

    def __iter__(self) -> Iterator[bytes]:
        limit = len(self.data) if self.cut_at is None else self.cut_at
        for pos in range(0, limit, 64 * KiB):
            chunk = self.data[pos : min(pos + 64 * KiB, limit)]
            with self.host.lock:
                self.host.bytes_sent += len(chunk)
            yield chunk
        if self.cut_at is not None and self.raise_on_cut:
            raise httpx.RemoteProtocolError("peer closed connection mid-body")


class FakeHost:
    """Files behind presigned-style URLs (files.test) and plain ones (ext.test).

    Signed URLs carry X-Amz-Signature; only signatures in ``valid`` are accepted (403
    otherwise, and always for HEAD, as S3 does). Faults are switched by attributes.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.valid: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.authorization_seen = False
        # faults
        self.ignore_range = False
        self.no_length = False
        self.statuses: list[int] = []  # forced statuses for the next requests
        self.forced_headers: dict[str, str] = {}  # sent with the forced statuses
        self.transport_errors = 0  # the next N requests fail to connect
        self.cuts: list[tuple[int, bool]] = []  # next bodies: (cut after N bytes, raise?)
        self.range_shift = 0  # answer a range shifted by this many bytes
        self.extra_bytes = 0  # send this many bytes past the asked range
        self.total_override: int | None = None
        self.redirects: dict[str, str] = {}
        self.head_status = 200
        self.on_forbidden: Callable[[], None] | None = None
        # The mount's shared pool, where open handles run their read-ahead.
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="readahead")

    def sign(self, path: str) -> str:
        signature = f"SECRET{next(self.counter)}"
        self.valid.add(signature)
        return f"{SIGNED}/{path}?X-Amz-Expires=3600&X-Amz-Signature={signature}"

    def client(self) -> httpx.Client:
        # A careless client with credentials: none of them may reach the host.
        return httpx.Client(
            transport=httpx.MockTransport(self.handle),
            headers={"Authorization": "Bearer secret_notion_token"},
            auth=("user", "password"),
        )

    def data_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            if "authorization" in request.headers:
                self.authorization_seen = True
            if self.transport_errors:
                self.transport_errors -= 1
                raise httpx.ConnectError("connection refused", request=request)
            forced = self.statuses.pop(0) if self.statuses else None
        path = request.url.path.lstrip("/")
        if path in self.redirects:
            return httpx.Response(302, headers={"Location": self.redirects[path]})
        if forced is not None:
            return httpx.Response(forced, content=b"<Error/>", headers=self.forced_headers)
        if request.url.host == "files.test":
            signature = request.url.params.get("X-Amz-Signature")
            if signature not in self.valid or request.method == "HEAD":
                if self.on_forbidden is not None:
                    self.on_forbidden()
                return httpx.Response(403, content=b"<Code>AccessDenied</Code>")
        data = self.files.get(path)
        if data is None:
            return httpx.Response(404)
        if request.method == "HEAD":
            if self.head_status != 200:
                return httpx.Response(self.head_status)
            return httpx.Response(200, headers={"Content-Length": str(len(data))})
        return self.ranged(request, data)

    def ranged(self, request: httpx.Request, data: bytes) -> httpx.Response:
        total = len(data) if self.total_override is None else self.total_override
        match = _RANGE.match(request.headers.get("Range", ""))
        if match is None or self.ignore_range:
            headers = {} if self.no_length else {"Content-Length": str(len(data))}
            return httpx.Response(200, headers=headers, stream=self.body(data))
        first_s, last_s = match.groups()
        if first_s == "":
            first, last = max(0, len(data) - int(last_s)), len(data) - 1
        else:
            first = int(first_s)
            last = min(int(last_s) if last_s else len(data) - 1, len(data) - 1)
        if first >= len(data):
            return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
        first, last = first + self.range_shift, last + self.range_shift
        piece = data[first : last + 1 + self.extra_bytes]
        headers = {
            "Content-Range": f"bytes {first}-{last}/{total}",
            "Content-Length": str(last + 1 - first),
        }
        return httpx.Response(206, headers=headers, stream=self.body(piece))

    def body(self, data: bytes) -> Body:
        with self.lock:
            cut = self.cuts.pop(0) if self.cuts else None
        return Body(self, data, cut[0] if cut else None, cut[1] if cut else False)


class Resolver:
    """What the tree supplies: the listing's location, or a fresh one when forced."""

    now = staticmethod(time.time)

    def __init__(
        self, host: FakeHost, path: str, *, expires_in_s: float = 3600, external: bool = False
    ) -> None:
        self.host, self.path, self.expires_in_s, self.external = host, path, expires_in_s, external
        self.forced = 0
        self.lock = threading.Lock()
        self.location = self.make()

    def make(self) -> Location:
        if self.external:
            return Location(f"{EXTERNAL}/{self.path}", None, external=True)
        return Location(self.host.sign(self.path), self.now() + self.expires_in_s)

    def __call__(self, force: bool) -> Location:
        with self.lock:
            if force:
                self.forced += 1
                self.expires_in_s = 3600  # Notion hands out hour-long URLs
                self.location = self.make()
            return self.location


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        backoff_base_s=0.0,
        backoff_cap_s=0.0,
        max_retries=3,
        cache_size_bytes=256 * MiB,
        block_size_bytes=1 * MiB,
    )
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    yield fake
    fake.pool.shutdown(wait=True, cancel_futures=True)
    assert not fake.authorization_seen, "an Authorization header reached the file host"


def make_remote(
    host: FakeHost,
    path: str,
    data: bytes | None = None,
    *,
    resolver: Resolver | None = None,
    cache: BlockCache | None = None,
    executor: concurrent.futures.Executor | None = None,
    known_size: int | None = None,
    retry: RetryPolicy | None = None,
    **settings: Any,
) -> tuple[RemoteFile, Resolver]:
    if data is not None:
        host.files[path] = data
    resolver = resolver or Resolver(host, path)
    conf = make_settings(**settings)
    cache = cache or BlockCache(conf.cache_size_bytes, conf.block_size_bytes)
    remote = RemoteFile(
        f"key:{path}",
        resolver,
        host.client(),
        cache,
        conf,
        executor=executor or host.pool,
        known_size=known_size,
        retry=retry,
    )
    return remote, resolver


def read(remote: RemoteFile, offset: int, size: int) -> bytes:
    """One read as FUSE makes it: a handle opened, read once, released.

    Reads under ``readahead_initial_bytes`` (1 MiB here; a quarter of it from the file's
    first byte) start no read-ahead, so the requests a test counts are the read's own.
    """
    reader = remote.reader()
    try:
        return reader.read(offset, size)
    finally:
        reader.close()


# ---- size probe ---------------------------------------------------------------------------


def test_probe_reads_the_head_once_and_keeps_it(host: FakeHost) -> None:
    data = pattern(5 * MiB + 17)
    remote, _ = make_remote(host, "a.bin", data)
    assert remote.known_size is None
    assert remote.size() == len(data)
    assert remote.known_size == len(data)
    assert [r.headers["Range"] for r in host.requests] == [f"bytes=0-{128 * KiB - 1}"]
    assert read(remote, 0, 4096) == data[:4096]
    assert read(remote, 64 * KiB, 64 * KiB) == data[64 * KiB : 128 * KiB]
    assert len(host.requests) == 1  # the head came with the probe
    assert remote.size() == len(data)
    assert len(host.requests) == 1


def test_probe_of_a_file_smaller_than_the_head(host: FakeHost) -> None:
    data = pattern(1000)
    remote, _ = make_remote(host, "small.txt", data)
    assert remote.size() == 1000
    assert read(remote, 0, 4096) == data
    assert len(host.requests) == 1


def test_empty_object_answers_416_and_is_size_zero(host: FakeHost) -> None:
    remote, _ = make_remote(host, "empty", b"")
    assert remote.size() == 0
    assert read(remote, 0, 4096) == b""
    assert len(host.requests) == 1


def test_size_is_probed_once_across_threads(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, _ = make_remote(host, "a.bin", data)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda _: remote.size(), range(8)))
    assert sizes == [len(data)] * 8
    assert len(host.requests) == 1


def test_known_size_skips_the_probe(host: FakeHost) -> None:
    data = pattern(3 * MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    assert remote.size() == len(data)
    assert host.requests == []
    assert read(remote, MiB, 10) == data[MiB : MiB + 10]


def test_joining_a_stalled_probe_gives_up_at_the_deadline(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, op_deadline_s=0.05)
    arrived, release = threading.Event(), threading.Event()
    original = host.ranged

    def stalled(request: httpx.Request, body: bytes) -> httpx.Response:
        arrived.set()
        release.wait(5)
        return original(request, body)

    host.ranged = stalled  # type: ignore[method-assign]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(remote.size)
        assert arrived.wait(5)
        with pytest.raises(DeadlineExceeded):
            remote.size()  # joins the probe in flight, does not start another
        release.set()
        assert first.result(5) == len(data)
    assert remote.size() == len(data)
    assert len(host.requests) == 1


def test_joining_a_probe_counts_the_deadline_from_the_probes_start(
    host: FakeHost, clock: FakeClock
) -> None:
    """Probes start together when a folder is listed: a late joiner of a probe that has
    already used up the deadline fails at once instead of waiting a deadline of its own."""
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, op_deadline_s=30.0)
    arrived, release = threading.Event(), threading.Event()
    original = host.ranged

    def stalled(request: httpx.Request, body: bytes) -> httpx.Response:
        arrived.set()
        release.wait(5)
        return original(request, body)

    host.ranged = stalled  # type: ignore[method-assign]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(remote.size)
        assert arrived.wait(5)
        assert remote.probing
        clock.now += 31.0  # the probe has been under way longer than the deadline
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="size probe"):
            remote.size()
        assert time.monotonic() - started < 2
        release.set()
        assert first.result(5) == len(data)
    assert not remote.probing
    assert len(host.requests) == 1


def test_failed_probe_is_retried_by_the_next_caller(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, max_retries=0)
    host.statuses = [503]
    with pytest.raises(FileHostError):
        remote.size()
    assert remote.size() == len(data)


# ---- reads and EOF ------------------------------------------------------------------------


def test_reads_crossing_eof_are_short_and_past_eof_empty(host: FakeHost) -> None:
    data = pattern(MiB + 500)
    remote, _ = make_remote(host, "a.bin", data)
    assert read(remote, MiB, 4096) == data[MiB:]
    assert read(remote, len(data), 10) == b""
    assert read(remote, len(data) + 100, 10) == b""
    reader = remote.reader()
    assert reader.read(len(data) - 10, 100) == data[-10:]
    assert reader.read(len(data), 100) == b""


def test_tail_first_read_of_a_large_file_fetches_little(host: FakeHost) -> None:
    data = pattern(64 * MiB)
    remote, _ = make_remote(host, "doc.pdf", data)
    reader = remote.reader()
    assert reader.read(len(data) - 64 * KiB, 64 * KiB) == data[-64 * KiB :]
    assert reader.read(0, 1024) == data[:1024]
    assert host.bytes_sent < 256 * KiB  # probe head + the tail


def test_random_256k_reads_cost_at_most_twice(host: FakeHost) -> None:
    data = pattern(64 * MiB)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        remote, _ = make_remote(host, "big.bin", data, executor=pool)
        reader = remote.reader()
        rng = random.Random(11)
        read_bytes = 0
        for _ in range(60):
            offset = rng.randrange(0, len(data) - 256 * KiB)
            for part in (offset, offset + 128 * KiB):
                assert reader.read(part, 128 * KiB) == data[part : part + 128 * KiB]
            read_bytes += 256 * KiB
        reader.close()
    assert host.bytes_sent <= 2 * read_bytes


def test_sequential_reader_streams_the_file_in_few_requests(host: FakeHost) -> None:
    data = pattern(48 * MiB + 5)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        remote, _ = make_remote(host, "video.mp4", data, executor=pool)
        reader = remote.reader()
        out = b"".join(reader.read(o, 128 * KiB) for o in range(0, len(data), 128 * KiB))
        reader.close()
    assert out == data
    ranges = [_RANGE.match(r.headers["Range"]).groups() for r in host.requests]  # type: ignore[union-attr]
    spans = [(int(first), int(last) + 1) for first, last in ranges]
    # Past the first MiB the run is sequential: no request is smaller than a block.
    assert all(end - start >= MiB or end == len(data) for start, end in spans if start >= MiB)
    # 48 MiB in fewer requests than one per MiB: one-block parts while the window is small
    # and again for the last few MiB (each slot that comes free takes its even share of the
    # rest, so the last parts end together), larger parts between. How large depends on how
    # far the reader has got when each is cut (2-3 MiB on a loaded machine, 4-8 MiB on a
    # quiet one): more than a block, at least.
    assert len(spans) <= 36
    assert max(end - start for start, end in spans) >= 2 * MiB
    assert host.bytes_sent <= len(data) + 2 * MiB


# ---- URL refresh --------------------------------------------------------------------------


class FakeClock:
    """Stands in for the time module inside notionfs.remote and notionfs.fileurl: the test
    moves time on."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(remote_module, "time", fake)
    monkeypatch.setattr(fileurl_module, "time", fake)
    monkeypatch.setattr(Resolver, "now", staticmethod(fake.time))
    return fake


def test_url_is_refreshed_when_it_enters_the_margin(host: FakeHost, clock: FakeClock) -> None:
    data = pattern(4 * MiB)
    remote, resolver = make_remote(host, "a.bin", data, known_size=len(data))
    first_url = resolver.location.url
    assert read(remote, 0, 100) == data[:100]
    clock.now += 3600 - 61  # 61 s left: outside the 60 s margin
    assert read(remote, MiB, 100) == data[MiB : MiB + 100]
    assert resolver.forced == 0
    clock.now += 2  # 59 s left
    assert read(remote, 2 * MiB, 100) == data[2 * MiB : 2 * MiB + 100]
    assert resolver.forced == 1
    assert [str(r.url) == first_url for r in host.requests] == [True, True, False]


def test_short_lived_url_is_used_before_it_is_replaced(host: FakeHost, clock: FakeClock) -> None:
    data = pattern(4 * MiB)
    host.files["a.bin"] = data
    resolver = Resolver(host, "a.bin", expires_in_s=8)  # far less than the 60 s margin
    remote, _ = make_remote(host, "a.bin", resolver=resolver, known_size=len(data))
    assert read(remote, 0, 100) == data[:100]
    clock.now += 5  # 3 s left, more than a quarter of its 8 s
    assert read(remote, MiB, 100) == data[MiB : MiB + 100]
    assert resolver.forced == 0
    clock.now += 2  # 1 s left
    assert read(remote, 2 * MiB, 100) == data[2 * MiB : 2 * MiB + 100]
    assert resolver.forced == 1


def test_url_from_a_fresh_listing_spares_the_refresh(host: FakeHost, clock: FakeClock) -> None:
    data = pattern(4 * MiB)
    remote, resolver = make_remote(host, "a.bin", data, known_size=len(data))
    assert read(remote, 0, 100) == data[:100]
    clock.now += 3000  # the folder is listed anew: its URL lives an hour from now
    newer = Location(host.sign("a.bin"), clock.now + 3600)
    remote.offer(Location(host.sign("other.bin"), clock.now + 7200))  # another file: ignored
    remote.offer(newer)
    clock.now += 599  # the first URL is past its expiry; the offered one is not
    assert read(remote, MiB, 100) == data[MiB : MiB + 100]
    assert resolver.forced == 0
    assert str(host.requests[-1].url) == newer.url


def test_fresh_url_is_not_refreshed(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, resolver = make_remote(host, "a.bin", data)
    read(remote, 0, 2 * MiB)
    assert resolver.forced == 0


def test_403_refreshes_once_for_many_concurrent_readers(host: FakeHost) -> None:
    readers = 4
    data = pattern(readers * MiB)
    remote, resolver = make_remote(host, "a.bin", data, known_size=len(data))
    host.valid.clear()  # the URL the readers hold has expired
    arrived = threading.Barrier(readers)
    # Every reader reaches the host with the expired URL before any gets its 403.
    host.on_forbidden = lambda: arrived.wait(5) if resolver.forced == 0 else None
    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        parts = list(pool.map(lambda i: read(remote, i * MiB, MiB // 8), range(readers)))
    assert parts == [data[i * MiB : i * MiB + MiB // 8] for i in range(readers)]
    assert resolver.forced == 1
    assert len(host.requests) == 2 * readers


def test_still_403_after_refresh_is_url_expired(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, resolver = make_remote(host, "a.bin", data, known_size=len(data))
    host.statuses = [403, 403]
    with pytest.raises(UrlExpiredError):
        read(remote, 0, 10)
    assert resolver.forced == 1
    assert len(host.requests) == 2


class SlowResolver(Resolver):
    """A resolver whose calls to "Notion" (forced refreshes) hang until released."""

    def __init__(self, host: FakeHost, path: str, **kwargs: Any) -> None:
        super().__init__(host, path, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = 0

    def __call__(self, force: bool) -> Location:
        if not force:
            return super().__call__(False)
        self.entered.set()
        assert self.release.wait(10), "the test never released the refresh"
        location = super().__call__(True)
        with self.lock:
            self.finished += 1
        return location


def _wait_for(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_slow_refresh_does_not_block_a_reader_whose_url_still_works(
    host: FakeHost, clock: FakeClock
) -> None:
    data = pattern(4 * MiB)
    host.files["a.bin"] = data
    resolver = SlowResolver(host, "a.bin")
    remote, _ = make_remote(host, "a.bin", resolver=resolver, known_size=len(data))
    first_url = resolver.location.url
    assert read(remote, 0, 100) == data[:100]
    clock.now += 3600 - 30  # inside the refresh margin, 30 s before the URL expires
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        refreshing = pool.submit(read, remote, 2 * MiB, 100)  # starts the refresh, waits
        assert resolver.entered.wait(5)
        # Notion has not answered: another reader goes on with the URL that still works.
        assert read(remote, MiB, 100) == data[MiB : MiB + 100]
        assert [str(r.url) for r in host.requests] == [first_url, first_url]
        assert not refreshing.done()
        resolver.release.set()
        assert refreshing.result(5) == data[2 * MiB : 2 * MiB + 100]
    assert resolver.forced == 1
    assert str(host.requests[-1].url) == resolver.location.url != first_url
    assert read(remote, 3 * MiB, 100) == data[3 * MiB : 3 * MiB + 100]
    assert resolver.forced == 1  # the new URL is fresh: no refresh of its own


def test_readers_that_see_403_share_one_slow_refresh(host: FakeHost) -> None:
    readers = 6
    data = pattern(readers * MiB)
    host.files["a.bin"] = data
    resolver = SlowResolver(host, "a.bin")
    remote, _ = make_remote(host, "a.bin", resolver=resolver, known_size=len(data))
    host.valid.clear()  # the URL every reader holds has expired
    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        reads = [pool.submit(read, remote, i * MiB, 100) for i in range(readers)]
        # Every reader got its 403 while the one refresh is still asking Notion.
        _wait_for(lambda: len(host.requests) == readers)
        time.sleep(0.05)  # let them reach the refresh
        assert resolver.finished == 0
        resolver.release.set()
        parts = [future.result(5) for future in reads]
    assert parts == [data[i * MiB : i * MiB + 100] for i in range(readers)]
    assert resolver.forced == 1
    assert len(host.requests) == 2 * readers


def test_waiting_for_a_refresh_ends_at_the_deadline_and_the_refresh_goes_on(
    host: FakeHost,
) -> None:
    data = pattern(2 * MiB)
    host.files["a.bin"] = data
    resolver = SlowResolver(host, "a.bin")
    remote, _ = make_remote(
        host, "a.bin", resolver=resolver, known_size=len(data), op_deadline_s=0.2
    )
    host.valid.clear()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        owner = pool.submit(read, remote, 0, 100)  # its 403 starts the refresh
        assert resolver.entered.wait(5)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="URL refresh"):
            read(remote, MiB, 100)  # its 403 joins the refresh under way
        assert time.monotonic() - started < 2
        assert resolver.finished == 0 and not owner.done()
        resolver.release.set()
        assert owner.result(5) == data[:100]  # the refresh went on and served its owner
    assert resolver.forced == 1
    assert read(remote, MiB, 100) == data[MiB : MiB + 100]  # and the next reader
    assert resolver.forced == 1


def test_offer_does_not_wait_for_a_refresh_under_way(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    host.files["a.bin"] = data
    resolver = SlowResolver(host, "a.bin")
    remote, _ = make_remote(host, "a.bin", resolver=resolver, known_size=len(data))
    host.valid.clear()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        owner = pool.submit(read, remote, 0, 100)
        assert resolver.entered.wait(5)
        offered = Location(host.sign("a.bin"), time.time() + 7200)
        done = pool.submit(remote.offer, offered)
        # The pool has one thread, busy with the owner: offer runs here instead.
        remote.offer(offered)
        assert read(remote, MiB, 100) == data[MiB : MiB + 100]  # the offered URL, at once
        assert str(host.requests[-1].url) == offered.url
        resolver.release.set()
        assert owner.result(5) == data[:100]
        done.result(5)


def test_external_403_is_not_refreshed(host: FakeHost) -> None:
    data = pattern(MiB)
    host.files["x.bin"] = data
    resolver = Resolver(host, "x.bin", external=True)
    remote, _ = make_remote(host, "x.bin", resolver=resolver, known_size=len(data))
    host.statuses = [403]
    with pytest.raises(FileHostError) as info:
        read(remote, 0, 10)
    assert info.value.status == 403
    assert resolver.forced == 0


# ---- validation ---------------------------------------------------------------------------


def test_host_ignoring_range_probe_reads_only_the_head(host: FakeHost) -> None:
    data = pattern(8 * MiB)
    host.ignore_range = True
    remote, _ = make_remote(host, "a.bin", data)
    assert remote.size() == len(data)
    assert host.bytes_sent <= 128 * KiB + 64 * KiB  # the stream was closed early
    assert read(remote, 0, 1000) == data[:1000]
    offset = 3 * MiB + 12345
    assert read(remote, offset, 200 * KiB) == data[offset : offset + 200 * KiB]


def test_host_ignoring_range_beyond_the_limit_fails_clearly(host: FakeHost) -> None:
    data = pattern(4 * MiB)
    host.ignore_range = True
    remote, _ = make_remote(host, "a.bin", data, unranged_limit_bytes=1 * MiB)
    assert read(remote, MiB // 2, 10) == data[MiB // 2 : MiB // 2 + 10]
    with pytest.raises(FileHostError, match="ignores Range"):
        read(remote, 3 * MiB, 10)


def test_body_cut_mid_transfer_is_resumed(host: FakeHost) -> None:
    data = pattern(3 * MiB)  # the read reaches the end: no read-ahead after it
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.cuts = [(700 * KiB, True)]  # connection drops after 700 KiB
    assert read(remote, MiB, 2 * MiB) == data[MiB : 3 * MiB]
    ranges = [r.headers["Range"] for r in host.requests]
    assert ranges == [f"bytes={MiB}-{3 * MiB - 1}", f"bytes={MiB + 700 * KiB}-{3 * MiB - 1}"]
    assert host.bytes_sent == 2 * MiB  # nothing fetched twice


def test_body_ending_early_without_error_is_resumed(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.cuts = [(100, False), (5000, False)]
    assert read(remote, 0, 2 * MiB) == data
    assert len(host.requests) == 3


def test_a_host_cutting_every_body_is_followed_while_it_makes_progress(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), max_retries=2)
    host.cuts = [(100 * KiB, True)] * 20  # every answer breaks off after 100 KiB
    assert read(remote, 0, MiB) == data
    assert len(host.requests) == 11
    assert host.bytes_sent == MiB


def test_resumes_are_bounded(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), max_retries=2)
    host.cuts = [(10, True)] * 5
    with pytest.raises(ResponseMismatch):
        read(remote, 0, MiB)
    assert len(host.requests) == 3


def test_content_range_mismatch_is_rejected(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.range_shift = 1
    with pytest.raises(ResponseMismatch):
        read(remote, 0, 512 * KiB)
    host.range_shift = 0
    assert read(remote, 0, 512 * KiB) == data[: 512 * KiB]  # nothing wrong was cached


def test_changed_object_size_is_rejected(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.total_override = len(data) + 1
    with pytest.raises(ResponseMismatch, match="object is"):
        read(remote, 0, 10)


def test_bytes_past_the_asked_range_are_never_used(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.extra_bytes = 5000
    assert read(remote, 100, 1000) == data[100:1100]
    assert read(remote, 1100, 10) == data[1100:1110]


def test_416_for_a_range_inside_the_known_size_is_an_error(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=2 * MiB)  # the object shrank
    with pytest.raises(RangeNotSatisfiable):
        read(remote, MiB + 10, 10)


def test_server_errors_are_retried(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    host.statuses = [503, 500]
    assert read(remote, 0, 10) == data[:10]
    assert len(host.requests) == 3


def test_server_errors_give_up_after_the_retries(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), max_retries=2)
    host.statuses = [503] * 5
    with pytest.raises(FileHostError) as info:
        read(remote, 0, 10)
    assert info.value.status == 503
    assert len(host.requests) == 3


def test_connection_errors_are_retried_then_reported(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), max_retries=2)
    host.transport_errors = 2
    assert read(remote, 0, 10) == data[:10]
    host.transport_errors = 10
    with pytest.raises(NetworkError):
        read(remote, MiB // 2, 10)


class Waits:
    """The retry policy's clock and sleep: time moves only when it sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def policy(self, max_retries: int = 3, deadline_s: float = 30.0) -> RetryPolicy:
        top = random.Random(0)
        top.uniform = lambda a, b: b  # type: ignore[method-assign]  # no jitter: exact waits
        return RetryPolicy(
            max_retries=max_retries, backoff_base_s=0.5, backoff_cap_s=20.0,
            deadline_s=deadline_s, clock=lambda: self.now, sleep=self.sleep,
            wall_clock=time.time, rng=top,
        )


def test_file_host_retries_wait_as_the_shared_policy_says(host: FakeHost) -> None:
    data = pattern(MiB)
    waits = Waits()
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), retry=waits.policy())
    host.statuses = [503, 502, 429]
    assert read(remote, 0, 10) == data[:10]
    assert waits.sleeps == [0.5, 1.0, 2.0]  # capped exponential backoff
    assert len(host.requests) == 4


def test_file_host_retry_after_is_honoured(host: FakeHost) -> None:
    data = pattern(MiB)
    waits = Waits()
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), retry=waits.policy())
    host.statuses, host.forced_headers = [503], {"Retry-After": "3"}
    assert read(remote, 0, 10) == data[:10]
    assert waits.sleeps == [3.0]


def test_file_host_retry_past_the_deadline_is_not_waited(host: FakeHost) -> None:
    data = pattern(MiB)
    waits = Waits()
    remote, _ = make_remote(
        host, "a.bin", data, known_size=len(data), retry=waits.policy(deadline_s=30.0)
    )
    host.statuses, host.forced_headers = [429], {"Retry-After": "120"}
    with pytest.raises(FileHostError) as info:
        read(remote, 0, 10)
    assert info.value.status == 429
    assert waits.sleeps == []
    assert len(host.requests) == 1


def test_file_host_status_that_no_retry_can_fix_fails_at_once(host: FakeHost) -> None:
    data = pattern(MiB)
    waits = Waits()
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), retry=waits.policy())
    host.statuses = [501]
    with pytest.raises(FileHostError) as info:
        read(remote, 0, 10)
    assert info.value.status == 501
    assert waits.sleeps == []
    assert len(host.requests) == 1


def test_file_host_connection_errors_back_off_too(host: FakeHost) -> None:
    data = pattern(MiB)
    waits = Waits()
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data), retry=waits.policy())
    host.transport_errors = 2
    assert read(remote, 0, 10) == data[:10]
    assert waits.sleeps == [0.5, 1.0]


def test_other_statuses_are_file_host_errors(host: FakeHost) -> None:
    remote, _ = make_remote(host, "missing.bin")
    with pytest.raises(FileHostError) as info:
        remote.size()
    assert info.value.status == 404


def test_unknown_size_is_counted_and_cached(host: FakeHost) -> None:
    data = pattern(3 * MiB + 99)
    host.ignore_range = host.no_length = True
    remote, _ = make_remote(host, "stream", data)
    assert remote.size() == len(data)
    requests = len(host.requests)
    reader = remote.reader()
    assert b"".join(reader.read(o, 128 * KiB) for o in range(0, len(data), 128 * KiB)) == data
    reader.close()
    assert len(host.requests) == requests


def test_unknown_size_beyond_the_limit_is_refused(host: FakeHost) -> None:
    host.ignore_range = host.no_length = True
    remote, _ = make_remote(host, "stream", pattern(3 * MiB), unranged_limit_bytes=2 * MiB)
    with pytest.raises(FileHostError, match="no size"):
        remote.size()


def test_compressed_answers_are_rejected(host: FakeHost) -> None:
    data = pattern(MiB)
    remote, _ = make_remote(host, "a.bin", data, known_size=len(data))
    original = host.ranged

    def gzipped(request: httpx.Request, body: bytes) -> httpx.Response:
        response = original(request, body)
        response.headers["Content-Encoding"] = "gzip"
        return response

    host.ranged = gzipped  # type: ignore[method-assign]
    with pytest.raises(ResponseMismatch, match="gzip"):
        read(remote, 0, 10)


# ---- external URLs ------------------------------------------------------------------------


def external_remote(host: FakeHost, path: str, data: bytes) -> tuple[RemoteFile, Resolver]:
    host.files[path] = data
    return make_remote(host, path, resolver=Resolver(host, path, external=True))


def test_external_size_comes_from_head(host: FakeHost) -> None:
    data = pattern(MiB + 3)
    remote, _ = external_remote(host, "x.bin", data)
    assert remote.size() == len(data)
    assert [r.method for r in host.requests] == ["HEAD"]
    assert read(remote, MiB, 10) == data[MiB:]


def test_external_without_head_falls_back_to_a_ranged_get(host: FakeHost) -> None:
    data = pattern(MiB)
    host.head_status = 405
    remote, _ = external_remote(host, "x.bin", data)
    assert remote.size() == len(data)
    assert [r.method for r in host.requests] == ["HEAD", "GET"]
    assert read(remote, 0, 100) == data[:100]
    assert len(host.requests) == 2


def test_redirects_are_followed_up_to_five(host: FakeHost) -> None:
    data = pattern(MiB)
    host.files["final.bin"] = data
    for hop in range(5):
        host.redirects[f"hop{hop}"] = f"{EXTERNAL}/hop{hop + 1}" if hop < 4 else "/final.bin"
    remote, _ = external_remote(host, "hop0", b"")
    assert read(remote, 0, 100) == data[:100]


def test_more_than_five_redirects_are_refused(host: FakeHost) -> None:
    for hop in range(6):
        host.redirects[f"hop{hop}"] = f"{EXTERNAL}/hop{hop + 1}"
    remote, _ = external_remote(host, "hop0", b"")
    with pytest.raises(FileHostError, match="redirects"):
        remote.size()
    assert len(host.requests) <= 2 * 6


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://ext.test/x.bin", "gopher://x/"])
def test_redirect_to_another_scheme_is_refused(host: FakeHost, target: str) -> None:
    host.redirects["x.bin"] = target
    remote, _ = external_remote(host, "x.bin", b"data")
    with pytest.raises(UnsafeUrlError):
        remote.size()


def test_url_with_another_scheme_is_refused(host: FakeHost) -> None:
    resolver = Resolver(host, "x")
    resolver.location = Location("file:///etc/passwd", None, external=True)
    remote, _ = make_remote(host, "x", resolver=resolver)
    with pytest.raises(UnsafeUrlError):
        remote.size()
    assert host.requests == []


# ---- credentials and logs -----------------------------------------------------------------


def test_no_authorization_header_is_ever_sent(host: FakeHost) -> None:
    data = pattern(2 * MiB)
    remote, _ = make_remote(host, "a.bin", data)
    read(remote, 0, 2 * MiB)
    ext, _ = external_remote(host, "x.bin", data)
    read(ext, 0, 10)
    assert host.requests
    assert all("authorization" not in r.headers for r in host.requests)


def test_signed_query_strings_never_reach_logs_or_errors(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = pattern(4 * MiB)
    resolver = Resolver(host, "a.bin", expires_in_s=10)  # refresh before use
    remote, _ = make_remote(host, "a.bin", data, resolver=resolver, max_retries=1)
    errors: list[str] = []
    remote.size()
    host.statuses = [503]  # retried
    host.cuts = [(1000, True)]  # resumed
    read(remote, MiB, 256 * KiB)
    host.valid.clear()  # 403, refresh
    read(remote, 2 * MiB, 10)
    host.statuses = [403, 403]  # expired for good
    with pytest.raises(UrlExpiredError) as expired:
        read(remote, 3 * MiB, 10)
    errors.append(str(expired.value))
    host.transport_errors = 2  # both attempts fail
    with pytest.raises(NetworkError) as net:
        read(remote, 3 * MiB + 100, 10)
    errors.append(str(net.value))
    reader = remote.reader()
    for offset in range(0, 4 * MiB, 128 * KiB):
        reader.read(offset, 128 * KiB)
    reader.close()
    # httpx logs full URLs itself at INFO; the CLI keeps it at WARNING. Ours must be clean.
    ours = "\n".join(
        caplog.handler.format(r) for r in caplog.records if r.name.startswith("notionfs")
    )
    assert "refreshing" in ours and "resuming" in ours and "retrying" in ours
    assert "X-Amz" not in ours and "SECRET" not in ours
    assert not any("SECRET" in e or "X-Amz" in e for e in errors)


def test_redact_url_keeps_scheme_host_port_and_path_only() -> None:
    url = "https://user:pw@files.test:8443/ws/a%20b.png?X-Amz-Signature=abc&x=1#frag"
    assert redact_url(url) == "https://files.test:8443/ws/a%20b.png"
    assert redact_url("http://[::1]:9/x?y") == "http://[::1]:9/x"
    assert redact_url("http://[::1/x?sig") == "<unparseable URL>"
