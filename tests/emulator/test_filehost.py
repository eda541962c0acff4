"""Tests of the emulator's signed-URL file host: S3 presigned GET semantics, faults, counters."""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notionfs.emulator.filehost import FileHost, FileRequest
from notionfs.emulator.model import FileSpec

MiB = 1 << 20
PAYLOAD = bytes(range(256)) * 4  # 1 KiB, every offset distinguishable
SIZES = (0, 1, 2, 7, 100, 1024)
T0 = 1_800_000_000.0  # a whole second, so X-Amz-Date equals it exactly

URL_RE = (
    r"http://127\.0\.0\.1:\d+/[0-9a-f-]{36}/(?P<file>[0-9a-f-]{36})/(?P<name>[^/?]+)"
    r"\?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"
    r"&X-Amz-Credential=ASIA[0-9A-Z]{16}%2F\d{8}%2Fus-west-2%2Fs3%2Faws4_request"
    r"&X-Amz-Date=\d{8}T\d{6}Z&X-Amz-Expires=\d+&X-Amz-Signature=[0-9a-f]{64}"
    r"&X-Amz-SignedHeaders=host&x-id=GetObject"
)


def _spec(
    name: str, data: bytes, number: int, content_type: str = "application/octet-stream"
) -> FileSpec:
    return FileSpec(
        name, data=data, content_type=content_type, id=f"00000000-0000-4000-8000-{number:012d}"
    )


SPEC = _spec("photo one.png", PAYLOAD, 1, content_type="image/png")
BY_SIZE = {size: _spec(f"size-{size}.bin", PAYLOAD[:size], 100 + size) for size in SIZES}


@pytest.fixture(scope="module")
def shared_host() -> Iterator[FileHost]:
    with FileHost(secret=b"test-secret") as host:
        for spec in [SPEC, *BY_SIZE.values()]:
            host.register(spec)
        yield host


@pytest.fixture
def host(shared_host: FileHost) -> Iterator[FileHost]:
    shared_host.reset()
    yield shared_host
    shared_host.clock = time.time
    shared_host.reset()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def _url(host: FileHost, spec: FileSpec = SPEC, expiry_s: float = 3600) -> str:
    return host.signed_url(spec, expiry_s)[0]


def _xml(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/xml"
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    fields = {child.tag: child.text or "" for child in root}
    assert fields["RequestId"] == response.headers["x-amz-request-id"]
    return fields


def _with_query(url: str, **changes: str | None) -> str:
    """The URL with query parameters replaced (None removes one), order kept."""
    base, _, query = url.partition("?")
    pairs = [pair.split("=", 1) for pair in query.split("&")]
    out = [f"{k}={changes.get(k, v)}" for k, v in pairs if changes.get(k, v) is not None]
    out += [f"{k}={v}" for k, v in changes.items() if v is not None and k not in dict(pairs)]
    return f"{base}?{'&'.join(out)}"


# ---- URLs ----------------------------------------------------------------------------------


def test_signed_url_has_s3_presigned_shape_and_is_fresh_each_call(host: FileHost) -> None:
    before = datetime.now(UTC)
    url_a, expiry_a = host.signed_url(SPEC, 3600)
    url_b, _ = host.signed_url(SPEC, 3600)
    match = re.fullmatch(URL_RE, url_a)
    assert match is not None, url_a
    assert match["file"] == SPEC.id
    assert match["name"] == "photo%20one.png"
    assert url_a != url_b
    assert url_a.split("?")[0] == url_b.split("?")[0]  # same object key
    assert parse_qs(urlsplit(url_a).query)["X-Amz-Expires"] == ["3600"]
    assert expiry_a.tzinfo is not None
    assert 3598 <= (expiry_a - before).total_seconds() <= 3601


def test_signed_url_rounds_expiry_up_to_whole_seconds(host: FileHost) -> None:
    host.clock = lambda: T0 + 0.25
    url, expiry = host.signed_url(SPEC, 1.5)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["2"]
    assert query["X-Amz-Date"] == [datetime.fromtimestamp(T0, UTC).strftime("%Y%m%dT%H%M%SZ")]
    assert expiry == datetime.fromtimestamp(T0 + 2, UTC)
    with pytest.raises(ValueError):
        host.signed_url(SPEC, 8 * 24 * 3600)


def test_external_url_is_stable_and_unsigned(host: FileHost, client: httpx.Client) -> None:
    url = host.external_url(SPEC)
    assert url == host.external_url(SPEC)
    assert url == f"{host.base_url}/external/{SPEC.id}/photo%20one.png"
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == PAYLOAD


def test_only_loopback_and_started_hosts() -> None:
    with pytest.raises(ValueError):
        FileHost(host="0.0.0.0")
    idle = FileHost()
    with pytest.raises(RuntimeError):
        idle.signed_url(SPEC, 60)
    idle.stop()  # stopping a host never started is harmless


# ---- bodies and headers --------------------------------------------------------------------


def test_get_serves_body_with_s3_headers(host: FileHost, client: httpx.Client) -> None:
    response = client.get(_url(host))
    assert response.status_code == 200
    assert response.content == PAYLOAD
    headers = response.headers
    assert headers["content-length"] == str(len(PAYLOAD))
    assert headers["content-type"] == "image/png"
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"] == f'"{hashlib.md5(f"{SPEC.id}:0".encode()).hexdigest()}"'
    assert parsedate_to_datetime(headers["last-modified"]).tzinfo is not None
    assert len(headers["x-amz-request-id"]) == 16
    again = client.get(_url(host))
    assert again.headers["etag"] == headers["etag"]
    assert again.headers["last-modified"] == headers["last-modified"]
    assert again.headers["x-amz-request-id"] != headers["x-amz-request-id"]


def test_file_on_disk_is_served_with_ranges(
    host: FileHost, client: httpx.Client, tmp_path: Path
) -> None:
    content = bytes(range(251)) * 40_000  # about 10 MB, several send slices of sendfile
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    spec = FileSpec("big.bin", path=path, id="00000000-0000-4000-8000-000000000900")
    host.register(spec)
    url = _url(host, spec)
    assert client.get(url).content == content
    ranged = client.get(url, headers={"Range": "bytes=1000000-1999999"})
    assert ranged.status_code == 206
    assert ranged.content == content[1_000_000:2_000_000]
    assert ranged.headers["content-range"] == f"bytes 1000000-1999999/{len(content)}"


def test_register_is_idempotent_and_versions_change_the_etag(
    host: FileHost, client: httpx.Client
) -> None:
    spec = _spec("doc.txt", b"first", 500, content_type="text/plain")
    host.register(spec)
    url = _url(host, spec)
    first = client.get(url)
    host.register(spec)
    assert client.get(url).headers["etag"] == first.headers["etag"]
    spec.data = b"second, longer"
    spec.version = 1
    host.register(spec)
    second = client.get(url)  # same key, new content, as an overwritten S3 object
    assert second.content == b"second, longer"
    assert second.headers["etag"] != first.headers["etag"]
    host.unregister(spec.id)
    assert _xml(client.get(url))["Code"] == "NoSuchKey"


# ---- Range ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "content_range", "window"),
    [
        ("bytes=0-0", 206, "bytes 0-0/1024", (0, 1)),
        ("bytes=10-19", 206, "bytes 10-19/1024", (10, 20)),
        ("bytes=1000-5000", 206, "bytes 1000-1023/1024", (1000, 1024)),
        ("bytes=1023-", 206, "bytes 1023-1023/1024", (1023, 1024)),
        ("bytes=-24", 206, "bytes 1000-1023/1024", (1000, 1024)),
        ("bytes=-5000", 206, "bytes 0-1023/1024", (0, 1024)),
        ("bytes=1024-", 416, "bytes */1024", None),
        ("bytes=2000-3000", 416, "bytes */1024", None),
        ("bytes=-0", 416, "bytes */1024", None),
        ("bytes=0-1,5-6", 200, None, (0, 1024)),
        ("bytes=5-2", 200, None, (0, 1024)),
        ("bytes=abc", 200, None, (0, 1024)),
        ("items=0-5", 200, None, (0, 1024)),
        ("bytes=-", 200, None, (0, 1024)),
    ],
)
def test_range_requests(
    host: FileHost,
    client: httpx.Client,
    header: str,
    status: int,
    content_range: str | None,
    window: tuple[int, int] | None,
) -> None:
    response = client.get(_url(host, BY_SIZE[1024]), headers={"Range": header})
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    if window is None:
        fields = _xml(response)
        assert fields["Code"] == "InvalidRange"
        assert fields["ActualObjectSize"] == "1024"
    else:
        assert response.content == PAYLOAD[window[0] : window[1]]
        assert response.headers["content-length"] == str(window[1] - window[0])


@pytest.mark.parametrize("header", ["bytes=0-0", "bytes=0-", "bytes=-1", "bytes=5-9"])
def test_any_range_on_an_empty_object_is_unsatisfiable(
    host: FileHost, client: httpx.Client, header: str
) -> None:
    url = _url(host, BY_SIZE[0])
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"
    whole = client.get(url)
    assert (whole.status_code, whole.content, whole.headers["content-length"]) == (200, b"", "0")


def _model(size: int, first: int | None, last: int | None) -> tuple[int, bytes]:
    """What S3 answers for bytes=<first>-<last> on PAYLOAD[:size], by slicing."""
    data = PAYLOAD[:size]
    if first is None and last is None:
        return 200, data
    if first is None:
        assert last is not None
        return (416, b"") if last == 0 or size == 0 else (206, data[-last:])
    if last is not None and last < first:
        return 200, data
    if first >= size:
        return 416, b""
    return 206, data[first : (size if last is None else last + 1)]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.sampled_from(SIZES),
    first=st.none() | st.integers(0, 1100),
    last=st.none() | st.integers(0, 1100),
)
def test_ranges_match_a_slicing_model(
    host: FileHost, client: httpx.Client, size: int, first: int | None, last: int | None
) -> None:
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    response = client.get(_url(host, BY_SIZE[size]), headers={"Range": header})
    status, body = _model(size, first, last)
    assert response.status_code == status, header
    if status != 416:
        assert response.content == body
    if status == 206:
        start = size - len(body) if first is None else first
        expected = f"bytes {start}-{start + len(body) - 1}/{size}"
        assert response.headers["content-range"] == expected


# ---- signatures, expiry, keys --------------------------------------------------------------


def _tamper_path(url: str, old: str, new: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.replace(old, new)}?{query}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda u: _with_query(u, **{"X-Amz-Expires": "7200"}),
        lambda u: _with_query(u, **{"X-Amz-Date": "20300101T000000Z"}),
        lambda u: _with_query(u, **{"X-Amz-Signature": "0" * 64}),
        lambda u: _with_query(u, **{"X-Amz-Signature": None}),
        lambda u: _with_query(u, **{"X-Amz-Credential": "ASIA" + "A" * 16 + "%2F20260101"}),
        lambda u: _with_query(u, extra="1"),
        lambda u: _tamper_path(u, "photo%20one.png", "other.png"),
        lambda u: _tamper_path(u, SPEC.id, BY_SIZE[1].id),
    ],
    ids=["expires", "date", "signature", "no-signature", "credential", "extra", "name", "key"],
)
def test_tampered_urls_do_not_match_the_signature(
    host: FileHost, client: httpx.Client, tamper: object
) -> None:
    url = tamper(_url(host))  # type: ignore[operator]
    response = client.get(url)
    assert response.status_code == 403
    fields = _xml(response)
    assert fields["Code"] == "SignatureDoesNotMatch"
    assert fields["Message"] == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )
    assert fields["HostId"]


def test_a_client_requoting_the_path_keeps_the_signature_valid(
    host: FileHost, client: httpx.Client
) -> None:
    url = _tamper_path(_url(host), "photo%20one.png", "%70hoto%20one%2Epng")
    assert client.get(url).content == PAYLOAD


def test_url_from_another_secret_is_rejected(host: FileHost, client: httpx.Client) -> None:
    with FileHost(secret=b"someone else") as other:
        foreign = other.signed_url(SPEC, 3600)[0]
    url = foreign.replace(other.base_url, host.base_url)
    assert _xml(client.get(url))["Code"] == "SignatureDoesNotMatch"


def test_unsigned_request_is_access_denied(host: FileHost, client: httpx.Client) -> None:
    response = client.get(_url(host).split("?")[0])
    assert response.status_code == 403
    assert _xml(response)["Code"] == "AccessDenied"
    assert _xml(response)["Message"] == "Access Denied"


def test_url_expires_after_its_lifetime(host: FileHost, client: httpx.Client) -> None:
    host.clock = lambda: T0
    url, expiry = host.signed_url(SPEC, 60)
    assert expiry == datetime.fromtimestamp(T0 + 60, UTC)
    host.clock = lambda: T0 + 60.9  # S3 compares whole seconds
    assert client.get(url).status_code == 200
    host.clock = lambda: T0 + 61.2
    response = client.get(url)
    assert response.status_code == 403
    fields = _xml(response)
    assert (fields["Code"], fields["Message"]) == ("AccessDenied", "Request has expired")
    assert fields["X-Amz-Expires"] == "60"
    assert fields["Expires"] == datetime.fromtimestamp(T0 + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fields["ServerTime"] == datetime.fromtimestamp(T0 + 61, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_one_second_url_expires_in_real_time(host: FileHost, client: httpx.Client) -> None:
    url, expiry = host.signed_url(SPEC, 1)
    assert client.get(url).status_code == 200
    # Expiry is a wall-clock event: wait until the host's whole-second clock is past it.
    while int(time.time()) <= expiry.timestamp():
        time.sleep(0.05)
    response = client.get(url)
    assert (response.status_code, _xml(response)["Message"]) == (403, "Request has expired")


def test_expire_all_now_revokes_exactly_the_urls_minted_before(
    host: FileHost, client: httpx.Client
) -> None:
    old = _url(host)
    host.faults.expire_all_now()
    new = _url(host)  # most likely within the same second as old
    assert _xml(client.get(old))["Message"] == "Request has expired"
    assert client.get(new).status_code == 200
    host.reset()
    assert client.get(old).status_code == 200


def test_unknown_objects_are_no_such_key(host: FileHost, client: httpx.Client) -> None:
    unregistered = _spec("ghost.bin", b"boo", 777)
    renamed = replace(SPEC, name="renamed.png")  # signed correctly, but no such key
    for url in (
        _url(host, unregistered),
        _url(host, renamed),
        host.external_url(unregistered),
        f"{host.base_url}/external/nothing",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert _xml(response)["Code"] == "NoSuchKey"


def test_file_removed_from_disk_is_no_such_key(
    host: FileHost, client: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "gone.bin"
    path.write_bytes(b"x")
    spec = FileSpec("gone.bin", path=path, id="00000000-0000-4000-8000-000000000901")
    host.register(spec)
    path.unlink()
    assert _xml(client.get(_url(host, spec)))["Code"] == "NoSuchKey"


# ---- methods -------------------------------------------------------------------------------


def test_head_on_signed_url_is_403_without_body(host: FileHost, client: httpx.Client) -> None:
    response = client.head(_url(host))
    assert response.status_code == 403
    assert response.content == b""
    assert client.get(_url(host)).status_code == 200  # the connection is still usable


def test_head_on_external_url_gives_metadata(host: FileHost, client: httpx.Client) -> None:
    url = host.external_url(SPEC)
    response = client.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(PAYLOAD))
    assert response.headers["content-type"] == "image/png"
    assert response.headers["etag"] == client.get(url).headers["etag"]
    ranged = client.head(url, headers={"Range": "bytes=0-9"})
    assert (ranged.status_code, ranged.headers["content-length"]) == (206, "10")


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_other_methods_are_refused(host: FileHost, client: httpx.Client, method: str) -> None:
    signed = client.request(method, _url(host), content=b"payload")
    assert signed.status_code == 403
    assert _xml(signed)["Code"] == "SignatureDoesNotMatch"
    external = client.request(method, host.external_url(SPEC), content=b"payload")
    assert external.status_code == 405
    assert _xml(external)["Code"] == "MethodNotAllowed"
    assert _xml(external)["Method"] == method


def test_conditional_requests(host: FileHost, client: httpx.Client) -> None:
    url = host.external_url(SPEC)
    etag = client.head(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Match": etag}).status_code == 200
    mismatch = client.get(url, headers={"If-Match": '"0000"'})
    assert mismatch.status_code == 412
    assert _xml(mismatch)["Code"] == "PreconditionFailed"


def test_connections_are_kept_alive(host: FileHost) -> None:
    split = urlsplit(_url(host))
    conn = http.client.HTTPConnection(split.hostname or "", split.port, timeout=10)
    try:
        conn.request("GET", f"{split.path}?{split.query}")
        first = conn.getresponse()
        assert first.read() == PAYLOAD
        sock = conn.sock
        conn.request("GET", f"{split.path}?{split.query}", headers={"Range": "bytes=0-3"})
        second = conn.getresponse()
        assert second.status == 206
        assert second.read() == PAYLOAD[:4]
        assert conn.sock is sock
    finally:
        conn.close()


# ---- faults --------------------------------------------------------------------------------


def _fetch_in_thread(url: str, results: dict[str, object]) -> threading.Thread:
    def fetch() -> None:
        with httpx.Client(timeout=30) as own:
            try:
                results["response"] = own.get(url)
            except httpx.HTTPError as exc:
                results["error"] = exc

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread


def test_stall_delays_one_request_without_blocking_others(
    host: FileHost, client: httpx.Client
) -> None:
    host.faults.stall_s = 60
    results: dict[str, object] = {}
    thread = _fetch_in_thread(_url(host), results)
    assert host.counters.wait_for(lambda c: c.requests == 1)
    host.faults.stall_s = 0
    assert client.get(_url(host)).content == PAYLOAD
    assert thread.is_alive()
    host.reset()  # ends the stall in progress
    thread.join(10)
    response = results["response"]
    assert isinstance(response, httpx.Response)
    assert response.content == PAYLOAD


def test_stall_after_bytes_pauses_mid_body(host: FileHost) -> None:
    host.faults.stall_after_bytes = 100  # and stall_s 0: until reset
    split = urlsplit(_url(host))
    with socket.create_connection((split.hostname or "", split.port or 0), timeout=10) as sock:
        request = f"GET {split.path}?{split.query} HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 100:
            received += sock.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        assert body == PAYLOAD[:100]
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # nothing more while stalled
        assert host.counters.log[0].bytes_sent == 100
        host.reset()
        sock.settimeout(10)
        while len(body) < len(PAYLOAD):
            body += sock.recv(65536)
        assert body == PAYLOAD


def test_cut_after_bytes_closes_mid_body(host: FileHost, client: httpx.Client) -> None:
    host.faults.cut_after_bytes = 300
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", _url(host)) as response:
            assert response.headers["content-length"] == str(len(PAYLOAD))
            for chunk in response.iter_raw():
                received += chunk
    assert received == PAYLOAD[:300]
    assert host.counters.bytes_sent == 300
    host.faults.cut_after_bytes = None
    assert client.get(_url(host)).content == PAYLOAD


def test_cut_applies_to_error_bodies_too(host: FileHost, client: httpx.Client) -> None:
    host.faults.cut_after_bytes = 10
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(_url(host).split("?")[0])


def test_ignore_range_answers_whole_body(host: FileHost, client: httpx.Client) -> None:
    host.faults.ignore_range = True
    response = client.get(_url(host), headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert "content-range" not in response.headers


def test_wrong_content_length_announces_more_than_it_sends(
    host: FileHost, client: httpx.Client
) -> None:
    host.faults.wrong_content_length = True
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", _url(host)) as response:
            assert int(response.headers["content-length"]) > len(PAYLOAD)
            for chunk in response.iter_raw():
                received += chunk
    assert received == PAYLOAD


def test_error_status_fault(host: FileHost, client: httpx.Client) -> None:
    host.faults.error_status = 503
    response = client.get(_url(host))
    assert response.status_code == 503
    assert _xml(response)["Code"] == "SlowDown"
    assert client.head(host.external_url(SPEC)).status_code == 200  # only GETs
    host.faults.error_status = 429
    assert client.get(_url(host)).status_code == 429


def test_error_rate_is_a_deterministic_fraction(host: FileHost, client: httpx.Client) -> None:
    url = host.external_url(SPEC)

    def statuses() -> list[int]:
        host.faults.error_status = 500
        host.faults.error_rate = 0.3
        return [client.get(url).status_code for _ in range(100)]

    first = statuses()
    host.reset()
    assert statuses() == first
    assert 10 <= first.count(500) <= 50
    assert set(first) == {200, 500}


# ---- counters ------------------------------------------------------------------------------


def test_counters_record_every_request(host: FileHost, client: httpx.Client) -> None:
    url = _url(host)
    client.get(url, headers={"Range": "bytes=0-99", "X-Probe": "yes"})
    client.get(url.split("?")[0])
    counters = host.counters.snapshot()
    assert counters.requests == 2
    assert counters.by_status == {206: 1, 403: 1}
    first = counters.log[0]
    assert isinstance(first, FileRequest)
    assert (first.method, first.status, first.bytes_sent, first.range) == (
        "GET",
        206,
        100,
        "bytes=0-99",
    )
    assert first.path == urlsplit(url).path
    assert first.query == urlsplit(url).query
    assert first.headers["x-probe"] == "yes"
    assert first.headers["range"] == "bytes=0-99"
    error_bytes = counters.log[1].bytes_sent
    assert error_bytes > 0
    assert counters.bytes_sent == 100 + error_bytes
    client.get(url)
    assert counters.requests == 2  # the snapshot is independent
    assert host.counters.requests == 3
    host.reset()
    assert (host.counters.requests, host.counters.bytes_sent, host.counters.log) == (0, 0, [])


def test_log_stays_bounded(
    host: FileHost, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import notionfs.emulator.filehost as filehost

    monkeypatch.setattr(filehost, "_LOG_LIMIT", 4)
    url = host.external_url(SPEC)
    for index in range(7):
        client.get(url, headers={"X-Index": str(index)})
    assert host.counters.requests == 7
    # Past the limit the oldest entries go, the newest always stay.
    assert [entry.headers["x-index"] for entry in host.counters.log] == ["3", "4", "5", "6"]


def test_client_disconnect_mid_body_is_counted_quietly(
    host: FileHost,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    spec = _spec("large.bin", b"\x5a" * (64 * MiB), 600)
    host.register(spec)
    caplog.set_level(logging.DEBUG, logger="notionfs.emulator.filehost")
    with client.stream("GET", _url(host, spec)) as response:
        next(response.iter_raw())
    # Leaving the block closes the unfinished connection.
    assert host.counters.wait_for(lambda c: c.disconnects == 1)
    assert host.counters.bytes_sent < 64 * MiB
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in capfd.readouterr().err
    assert client.get(_url(host)).status_code == 200


def test_logs_never_contain_signed_query_strings(
    host: FileHost, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notionfs.emulator.filehost")
    url = _url(host)
    client.get(url)
    client.get(_with_query(url, **{"X-Amz-Signature": "f" * 64}))
    client.head(url)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    assert caplog.records
    assert "X-Amz" not in caplog.text
    assert signature not in caplog.text


# ---- lifecycle and scale -------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_stop_is_prompt_with_stalled_and_idle_connections() -> None:
    host = FileHost()
    host.start()
    host.register(SPEC)
    idle = httpx.Client(timeout=30)
    assert idle.get(_url(host)).status_code == 200  # leaves a keep-alive connection open
    host.faults.stall_s = 600
    results: dict[str, object] = {}
    stalled = _fetch_in_thread(_url(host), results)
    assert host.counters.wait_for(lambda c: c.requests == 2)
    host.stop()
    stalled.join(10)
    assert not stalled.is_alive()
    assert isinstance(results.get("error"), httpx.HTTPError)
    with pytest.raises(httpx.ConnectError):
        httpx.get(host.base_url + "/", timeout=5)
    idle.close()


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _download_peak_rss_growth(url: str, expected_bytes: int) -> tuple[int, int]:
    baseline = _rss_bytes()
    peak = baseline
    total = 0
    with httpx.Client(timeout=60) as c, c.stream("GET", url) as response:
        assert response.status_code == 200
        for index, chunk in enumerate(response.iter_raw(MiB)):
            total += len(chunk)
            if index % 16 == 0:
                peak = max(peak, _rss_bytes())
    assert total == expected_bytes
    return peak - baseline, total


@pytest.mark.slow
def test_a_gibibyte_file_is_served_with_flat_memory(host: FileHost, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    with open(path, "wb") as sparse:
        sparse.truncate(1024 * MiB)
    spec = FileSpec("huge.bin", path=path, id="00000000-0000-4000-8000-000000000902")
    host.register(spec)
    growth, total = _download_peak_rss_growth(_url(host, spec), 1024 * MiB)
    assert growth < 64 * MiB
    assert host.counters.bytes_sent == total


def test_memory_bodies_are_sent_without_copies(host: FileHost) -> None:
    spec = _spec("in-memory.bin", b"ab" * (64 * MiB), 601)  # 128 MiB, already resident
    host.register(spec)
    growth, _ = _download_peak_rss_growth(_url(host, spec), 128 * MiB)
    assert growth < 48 * MiB
