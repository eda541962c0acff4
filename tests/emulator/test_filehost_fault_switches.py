"""File host fault switches for hostile-input tests: partial stalls and cuts, foreign external
URLs, redirects."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from notionfs.emulator.filehost import FileHost
from notionfs.emulator.model import FileSpec

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
SPEC = FileSpec("a.bin", data=PAYLOAD, id="00000000-0000-4000-8000-0000000000a1")
OTHER = FileSpec("b.bin", data=PAYLOAD, id="00000000-0000-4000-8000-0000000000b2")


@pytest.fixture
def host() -> Iterator[FileHost]:
    with FileHost(secret=b"test-secret") as host:
        host.register(SPEC)
        host.register(OTHER)
        yield host


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def _body_or_cut(client: httpx.Client, url: str) -> int:
    """Bytes received before the body ended (cut responses close the connection early)."""
    received = 0
    try:
        with client.stream("GET", url) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
    except httpx.RemoteProtocolError:
        pass
    return received


def test_cut_rate_cuts_only_that_fraction_reproducibly(
    host: FileHost, client: httpx.Client
) -> None:
    def run() -> list[int]:
        host.reset()
        host.faults.cut_after_bytes = 100
        host.faults.cut_rate = 0.3
        return [_body_or_cut(client, host.signed_url(SPEC, 60)[0]) for _ in range(40)]

    first = run()
    assert set(first) == {100, len(PAYLOAD)}
    assert 4 <= first.count(100) <= 20
    assert host.counters.faults["cut"] == first.count(100)
    assert run() == first  # same seed, same responses cut


def test_stall_rate_zero_never_stalls(host: FileHost, client: httpx.Client) -> None:
    host.faults.stall_s = 0  # with stall_after_bytes: would stall until reset
    host.faults.stall_after_bytes = 10
    host.faults.stall_rate = 0.0
    response = client.get(host.signed_url(SPEC, 60)[0])
    assert response.content == PAYLOAD


def test_external_url_override_is_what_the_api_hands_out(host: FileHost) -> None:
    host.faults.external_urls[SPEC.id] = "file:///etc/passwd"
    assert host.external_url(SPEC) == "file:///etc/passwd"
    assert host.external_url(OTHER).startswith(host.base_url)
    host.reset()
    assert host.external_url(SPEC).startswith(host.base_url)


def test_redirect_answers_302_with_location(host: FileHost, client: httpx.Client) -> None:
    target = host.external_url(OTHER)
    host.faults.redirects[SPEC.id] = target
    for url in (host.external_url(SPEC), host.signed_url(SPEC, 60)[0]):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["location"] == target
        assert response.content == b""
    followed = client.get(host.external_url(SPEC), follow_redirects=True)
    assert followed.content == PAYLOAD
    host.reset()
    assert client.get(host.external_url(SPEC)).status_code == 200


def test_faults_changing_a_response_are_counted(host: FileHost, client: httpx.Client) -> None:
    host.faults.ignore_range = True
    host.faults.stall_s = 0.01
    response = client.get(host.signed_url(SPEC, 60)[0], headers={"Range": "bytes=0-9"})
    assert response.status_code == 200 and response.content == PAYLOAD
    client.get(host.signed_url(SPEC, 60)[0])  # no Range: nothing ignored
    assert host.counters.faults == {"ignore_range": 1, "stall": 2}
    host.reset()
    host.faults.wrong_content_length = True
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(host.signed_url(SPEC, 60)[0])
    assert host.counters.faults == {"wrong_content_length": 1}
