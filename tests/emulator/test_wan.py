"""WAN conditions: API latency overlapping across calls, time to first byte, per-connection rate."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from notionfs.emulator import cli
from notionfs.emulator.filehost import FileHost
from notionfs.emulator.model import FileSpec
from notionfs.emulator.wan import (
    NO_WAN,
    NOTION_WAN,
    Pacer,
    WanConditions,
    format_bandwidth,
    parse_bandwidth,
)
from tests.emulator.conftest import World, plain_http_client, start_world
from tests.emulator.writing import paragraph

MiB = 1 << 20
BODY = bytes(range(256)) * (2 * MiB // 256)  # 2 MiB
SPEC = FileSpec("two-mib.bin", data=BODY, id="00000000-0000-4000-8000-0000000000f1")


def _parallel(actions: list[Callable[[], object]]) -> tuple[float, list[float]]:
    """Run the actions at once, each on its own thread: (wall seconds, each one's seconds)."""
    each = [0.0] * len(actions)
    errors: list[BaseException] = []
    start = threading.Barrier(len(actions) + 1)

    def run(i: int) -> None:
        start.wait()
        began = time.perf_counter()
        try:
            actions[i]()
        except BaseException as exc:  # reported on the main thread
            errors.append(exc)
        each[i] = time.perf_counter() - began

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(30)
    wall = time.perf_counter() - began
    assert not errors, errors
    return wall, each


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


# ---- API latency ---------------------------------------------------------------------------


@pytest.fixture
def slow_world() -> Iterator[World]:
    world = start_world(wan=WanConditions(api_latency_s=0.2))
    try:
        yield world
    finally:
        world.close()
        world.emulator.stop()


def test_latency_overlaps_across_concurrent_calls(slow_world: World) -> None:
    """Four calls at once, two of them writes (which take the workspace's write lock), each
    on its own connection: together they take one latency, not four."""
    clients = [slow_world.client() for _ in range(4)]
    for client in clients:  # connect first: only the calls are timed
        assert client.get("/v1/users/me").status_code == 200
    page = slow_world.refs.home.id
    statuses: list[int] = []

    def read(client: httpx.Client) -> None:
        statuses.append(client.get(f"/v1/blocks/{page}/children").status_code)

    def write(client: httpx.Client) -> None:
        body = {"children": [paragraph("added over a slow link")]}
        statuses.append(client.patch(f"/v1/blocks/{page}/children", json=body).status_code)

    wall, each = _parallel(
        [lambda: read(clients[0]), lambda: read(clients[1]),
         lambda: write(clients[2]), lambda: write(clients[3])]
    )
    assert statuses == [200] * 4
    assert min(each) >= 0.2  # every answer waited out the latency
    assert wall < 0.6  # serialised, they would take at least 0.8 s


def test_latency_delays_every_answer_even_a_429(slow_world: World) -> None:
    client = slow_world.client()
    slow_world.emulator.faults.force_429 = 1
    refused = 0.0

    def call() -> None:
        nonlocal refused
        response = client.get("/v1/users/me")
        assert response.status_code == 429
        refused = 1.0

    assert _timed(call) >= 0.2 and refused


def test_latency_applies_in_process_too(slow_world: World) -> None:
    transport = slow_world.emulator.api_transport()
    headers = {"Authorization": f"Bearer {slow_world.emulator.token}",
               "Notion-Version": "2025-09-03"}
    with httpx.Client(transport=transport, base_url="http://notion.test") as client:
        assert _timed(lambda: client.get("/v1/users/me", headers=headers)) >= 0.2


def test_latency_is_settable_at_runtime_and_reset_restores_construction(
    slow_world: World,
) -> None:
    emulator = slow_world.emulator
    client = slow_world.client()
    client.get("/v1/users/me")  # connected
    emulator.wan = NO_WAN
    assert emulator.faults.latency_s == 0.0
    fast = min(_timed(lambda: client.get("/v1/users/me")) for _ in range(3))
    assert fast < 0.1  # 0 means off
    emulator.reset()
    assert emulator.wan == WanConditions(api_latency_s=0.2)
    assert _timed(lambda: client.get("/v1/users/me")) >= 0.2


# ---- the file host: time to first byte -----------------------------------------------------


def _first_byte_s(url: str, headers: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """(seconds to the response's headers, seconds to its first body byte, the body)."""
    with plain_http_client() as client:
        began = time.perf_counter()
        with client.stream("GET", url, headers=headers or {}) as response:
            headers_s = time.perf_counter() - began
            first_s = 0.0
            body = b""
            for chunk in response.iter_raw():
                if not body:
                    first_s = time.perf_counter() - began
                body += chunk
    return headers_s, first_s, body


def test_ttfb_delays_the_first_byte_of_every_response() -> None:
    with FileHost(ttfb_s=0.25) as host:
        host.register(SPEC)
        url = host.signed_url(SPEC, 60)[0]
        headers_s, first_s, body = _first_byte_s(url, {"Range": "bytes=10-19"})
        assert body == BODY[10:20]
        assert headers_s >= 0.25 and first_s >= 0.25
        expired = host.signed_url(SPEC, 60)[0].replace("X-Amz-Signature=", "X-Amz-Signature=0")
        assert _first_byte_s(expired)[0] >= 0.25  # errors wait as well
        host.link.ttfb_s = 0.0  # off, while serving
        assert min(_first_byte_s(url, {"Range": "bytes=0-0"})[1] for _ in range(3)) < 0.1


def test_emulator_passes_its_wan_to_the_file_host() -> None:
    world = start_world(wan=WanConditions(ttfb_s=0.2, conn_bandwidth_bps=4 * MiB))
    try:
        link = world.emulator.filehost.link
        assert (link.ttfb_s, link.conn_bandwidth_bps) == (0.2, 4 * MiB)
        world.emulator.wan = WanConditions(api_latency_s=0.1)
        assert (link.ttfb_s, link.conn_bandwidth_bps) == (0.0, 0.0)
        world.emulator.reset()
        assert world.emulator.wan == WanConditions(0.0, 0.2, 4 * MiB)
    finally:
        world.close()
        world.emulator.stop()


# ---- the file host: bandwidth per connection -----------------------------------------------


@pytest.fixture
def capped_host() -> Iterator[FileHost]:
    with FileHost(conn_bandwidth_bps=4 * MiB) as host:
        host.register(SPEC)
        yield host


def _download(url: str, client: httpx.Client | None = None) -> bytes:
    if client is not None:
        return client.get(url).content
    with plain_http_client() as own:
        return own.get(url).content


def test_bandwidth_cap_holds_per_connection(capped_host: FileHost) -> None:
    url = capped_host.signed_url(SPEC, 60)[0]
    body = b""

    def fetch() -> None:
        nonlocal body
        body = _download(url)

    assert _timed(fetch) >= 0.45  # 2 MiB at 4 MiB/s: 0.5 s
    assert body == BODY


def test_two_connections_get_twice_the_bytes(capped_host: FileHost) -> None:
    url = capped_host.signed_url(SPEC, 60)[0]
    bodies: list[bytes] = []
    wall, each = _parallel([lambda: bodies.append(_download(url))] * 2)
    assert bodies == [BODY, BODY]
    assert min(each) >= 0.45  # each connection still capped
    assert wall < 0.9  # one cap shared by both would need 1 s
    assert capped_host.counters.snapshot().peak_in_flight == 2


def test_idle_time_is_not_saved_up_for_a_burst(capped_host: FileHost) -> None:
    url = capped_host.signed_url(SPEC, 60)[0]
    with plain_http_client() as client:
        assert _download(url, client) == BODY
        time.sleep(0.5)  # the same keep-alive connection sits idle
        assert _timed(lambda: _download(url, client)) >= 0.45
    assert capped_host.counters.snapshot().requests == 2


def test_zero_bandwidth_means_no_cap(capped_host: FileHost) -> None:
    url = capped_host.signed_url(SPEC, 60)[0]
    capped_host.link.conn_bandwidth_bps = 0
    assert min(_timed(lambda: _download(url)) for _ in range(3)) < 0.3
    capped_host.link.conn_bandwidth_bps = 4 * MiB
    assert _timed(lambda: _download(url)) >= 0.45
    capped_host.reset()
    assert capped_host.link.conn_bandwidth_bps == 4 * MiB  # the constructor's, kept


def test_peak_in_flight_restarts_from_what_is_in_flight(capped_host: FileHost) -> None:
    url = capped_host.signed_url(SPEC, 60)[0]
    _parallel([lambda: _download(url)] * 3)
    counters = capped_host.counters
    # A paced response ends once the link has carried its last slice, a moment after the
    # client holds every byte.
    assert counters.wait_for(lambda c: c.in_flight == 0, timeout_s=5)
    assert counters.peak_in_flight == 3
    counters.reset_peak()
    assert counters.peak_in_flight == 0
    _download(url)
    assert counters.snapshot().peak_in_flight == 1


# ---- the pacer itself, on a fake clock ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def test_pacer_spaces_slices_at_the_rate_and_never_banks_idle_time() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    for _ in range(4):
        pacer.sent(1000, 10_000.0)  # 0.1 s each at 10 kB/s
    assert clock.slept == pytest.approx([0.1] * 4)
    clock.now_s += 5.0  # idle
    pacer.sent(1000, 10_000.0)
    assert clock.slept[-1] == pytest.approx(0.1)
    pacer.sent(1000, 0.0)  # off: no wait
    assert len(clock.slept) == 5


def test_slices_shrink_with_the_rate() -> None:
    assert Pacer.slice_bytes(0.0, 8 * MiB) == 8 * MiB
    assert Pacer.slice_bytes(20e6, 8 * MiB) == 200_000  # 10 ms at 20 MB/s
    assert Pacer.slice_bytes(1e12, 8 * MiB) == MiB
    assert Pacer.slice_bytes(100.0, 8 * MiB) == 10  # 0.1 s at 100 B/s: stop stays prompt


# ---- the command line -----------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line_sets_each_condition() -> None:
    args = parse("--api-latency-ms", "150", "--ttfb-ms", "30", "--conn-bandwidth", "20M")
    assert cli.wan_conditions(args) == WanConditions(0.15, 0.03, 20e6)
    assert cli.wan_conditions(parse()) == NO_WAN
    assert cli.wan_conditions(parse("--wan")) == NOTION_WAN
    assert cli.wan_conditions(parse("--wan", "--conn-bandwidth", "0")) == WanConditions(
        0.15, 0.03, 0.0
    )


@pytest.mark.parametrize("bad", [["--conn-bandwidth", "fast"], ["--ttfb-ms", "-1"]])
def test_command_line_refuses_nonsense(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*bad)


def test_bandwidth_units() -> None:
    assert parse_bandwidth("20M") == 20e6
    assert parse_bandwidth("20MB/s") == 20e6
    assert parse_bandwidth("8Mi") == 8 * MiB
    assert parse_bandwidth("800k") == 800e3
    assert parse_bandwidth("0") == 0.0
    assert format_bandwidth(20e6) == "20 MB/s" and format_bandwidth(0) == "off"
    with pytest.raises(ValueError):
        WanConditions(api_latency_s=-1)
