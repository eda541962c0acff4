"""Rate limiting, fault switches, counters, pause/resume and live workspace changes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from notionfs.emulator.faults import ApiFaults, TokenBucket, retry_after_header
from notionfs.emulator.model import Page, paragraph
from tests.emulator.conftest import TOKEN, World, assert_error, search_all, start_world


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


# ---- the token bucket ---------------------------------------------------------------------


def test_bucket_allows_a_burst_then_asks_to_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock)
    assert [bucket.try_acquire(2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait_s = bucket.try_acquire(2.0, 3)
    assert wait_s == pytest.approx(0.5)
    clock.now_s += 0.5
    assert bucket.try_acquire(2.0, 3) == 0.0
    assert bucket.try_acquire(2.0, 3) > 0


def test_bucket_refills_up_to_the_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock)
    bucket.try_acquire(1.0, 2)
    clock.now_s += 1000
    assert [bucket.try_acquire(1.0, 2) for _ in range(3)][2] > 0


def test_bucket_off_when_rate_is_zero() -> None:
    bucket = TokenBucket(FakeClock())
    assert all(bucket.try_acquire(0.0, 1) == 0.0 for _ in range(100))


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(2.01) == "3"
    assert retry_after_header(0) == "0"


# ---- rate limiting over HTTP --------------------------------------------------------------


def test_bursting_past_the_bucket_gets_429_with_retry_after() -> None:
    world = start_world(rate_limit_rps=0.5, rate_limit_burst=3)
    try:
        client = world.client()
        statuses = [client.get("/v1/users/me").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.get("/v1/users/me")
        body = assert_error(limited, 429, "rate_limited")
        assert body["status"] == 429
        retry_after = limited.headers["Retry-After"]
        assert retry_after.isdigit() and int(retry_after) >= 1
    finally:
        world.close()
        world.emulator.stop()


def test_no_429_when_rate_limit_off(world: World) -> None:
    client = world.client()
    assert world.emulator.faults.rate_limit_rps == 0
    assert {client.get("/v1/users/me").status_code for _ in range(40)} == {200}


def test_rate_limit_settable_at_runtime(world: World) -> None:
    client = world.client()
    world.emulator.faults.rate_limit_rps = 0.1
    world.emulator.faults.rate_limit_burst = 2
    statuses = [client.get("/v1/users/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    world.emulator.faults.rate_limit_rps = 0
    assert client.get("/v1/users/me").status_code == 200


def test_unauthenticated_requests_do_not_spend_the_bucket(world: World) -> None:
    world.emulator.faults.rate_limit_rps = 0.1
    world.emulator.faults.rate_limit_burst = 1
    anonymous = world.client(token=None)
    assert {anonymous.get("/v1/users/me").status_code for _ in range(5)} == {401}
    assert world.client().get("/v1/users/me").status_code == 200


# ---- fault switches -----------------------------------------------------------------------


def test_force_429_answers_the_next_n_requests(world: World) -> None:
    client = world.client()
    world.emulator.faults.force_429 = 2
    world.emulator.faults.retry_after_s = 2
    first, second, third = (client.get("/v1/users/me") for _ in range(3))
    assert_error(first, 429, "rate_limited")
    assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    assert third.status_code == 200
    assert world.emulator.faults.force_429 == 0


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "validation_error"),
        (500, "internal_server_error"),
        (502, "bad_gateway"),
        (503, "service_unavailable"),
        (504, "gateway_timeout"),
        (529, "service_overload"),
    ],
)
def test_error_rate_one_always_fails_with_notion_codes(
    world: World, status: int, code: str
) -> None:
    world.emulator.faults.error_rate = 1.0
    world.emulator.faults.error_statuses = (status,)
    assert_error(world.client().get(f"/v1/pages/{world.refs.home.id}"), status, code)


def test_error_rate_is_repeatable_for_a_seed() -> None:
    def draws(seed: int) -> list[int | None]:
        faults = ApiFaults(error_rate=0.5, seed=seed)
        return [faults.draw_error_status() for _ in range(40)]

    first = draws(7)
    assert first == draws(7)
    assert any(s is None for s in first) and any(s is not None for s in first)
    assert set(first) - {None} <= {500, 502, 503, 504, 529}
    assert first != draws(8)


def test_error_rate_over_http_fails_some_requests(world: World) -> None:
    world.emulator.faults.error_rate = 0.5
    client = world.client()
    statuses = [client.get("/v1/users/me").status_code for _ in range(40)]
    assert 200 in statuses
    assert set(statuses) - {200}
    world.emulator.reset()
    assert {client.get("/v1/users/me").status_code for _ in range(10)} == {200}


def test_latency_does_not_change_answers(world: World) -> None:
    world.emulator.faults.latency_s = 0.01
    assert world.client().get("/v1/users/me").status_code == 200


def test_reset_restores_the_constructor_rate_limit() -> None:
    world = start_world(rate_limit_rps=5.0, rate_limit_burst=7)
    try:
        faults = world.emulator.faults
        faults.rate_limit_rps = 0
        faults.force_429 = 3
        world.emulator.reset()
        assert (faults.rate_limit_rps, faults.rate_limit_burst, faults.force_429) == (5.0, 7, 0)
    finally:
        world.close()
        world.emulator.stop()


# ---- counters -----------------------------------------------------------------------------


def test_counters_by_route_status_and_log(world: World) -> None:
    client = world.client()
    page_id = world.refs.big_page.id
    client.get(f"/v1/blocks/{page_id}/children", params={"page_size": 10})
    client.get(f"/v1/blocks/{page_id.replace('-', '')}/children")
    client.post("/v1/search", json={"query": "Home"})
    client.get("/v1/pages/0123456789abcdef0123456789abcdef")
    counters = world.emulator.counters
    assert counters.total == 4
    assert counters.calls("GET /v1/blocks/{id}/children") == 2
    assert counters.by_route["POST /v1/search"] == 1
    assert counters.by_status == {200: 3, 404: 1}
    first, _, search, missing = counters.log
    assert first.route == "GET /v1/blocks/{id}/children"
    assert first.method == "GET" and first.path == f"/v1/blocks/{page_id}/children"
    assert first.query == "page_size=10" and first.status == 200
    assert first.headers["notion-version"] == "2025-09-03"
    assert search.body == {"query": "Home"}
    assert missing.status == 404 and missing.route == "GET /v1/pages/{id}"


def test_counters_snapshot_is_a_copy_and_reset_clears(world: World) -> None:
    client = world.client()
    client.get("/v1/users/me")
    snapshot = world.emulator.counters.snapshot()
    client.get("/v1/users/me")
    assert snapshot.total == 1 and len(snapshot.log) == 1
    assert world.emulator.counters.total == 2
    world.emulator.reset()
    assert world.emulator.counters.total == 0 and world.emulator.counters.log == []
    assert not world.emulator.counters.by_route


def test_errors_and_faults_are_counted(world: World) -> None:
    world.emulator.faults.force_429 = 1
    client = world.client()
    client.get("/v1/users/me")
    world.client(token="nope").get("/v1/users/me")
    assert world.emulator.counters.by_status == {429: 1, 401: 1}
    assert world.emulator.counters.calls("GET /v1/users/me") == 2


# ---- pause / resume -----------------------------------------------------------------------


def test_pause_refuses_connections_and_resume_serves_again(world: World) -> None:
    client = world.client()
    assert client.get("/v1/users/me").status_code == 200  # a pooled keep-alive connection
    url = world.emulator.api_url
    world.emulator.pause_api()
    with pytest.raises(httpx.TransportError):
        client.get("/v1/users/me")
    with pytest.raises(httpx.ConnectError):
        world.client().get("/v1/users/me")
    world.emulator.resume_api()
    assert world.emulator.api_url == url
    assert client.get("/v1/users/me").status_code == 200


def test_file_host_keeps_serving_while_the_api_is_paused(world: World) -> None:
    body = world.client().get(f"/v1/blocks/{world.refs.image_block.id}").json()
    world.emulator.pause_api()
    assert world.download(body["image"]["file"]["url"]) == world.refs.image.data
    world.emulator.resume_api()


# ---- live workspace -----------------------------------------------------------------------


def test_refresh_serves_new_pages(world: World) -> None:
    client = world.client()
    added = Page("Added later", children=[paragraph("fresh")])
    world.refs.home.children.insert(0, added)
    world.emulator.refresh()
    assert added.id
    assert added.id in {r["id"] for r in search_all(client, query="Added later")}
    listed = client.get(f"/v1/blocks/{world.refs.home.id}/children").json()["results"]
    assert listed[0]["id"] == added.id
    old_ids = {world.refs.home.id, world.refs.big_page.id}
    assert old_ids <= {r["id"] for r in search_all(client)}


def test_trashing_after_start_hides_the_page(world: World) -> None:
    client = world.client()
    world.refs.nested.in_trash = True
    world.emulator.refresh()
    assert world.refs.nested.id not in {r["id"] for r in search_all(client)}
    body = client.get(f"/v1/pages/{world.refs.nested.id}").json()
    assert body["in_trash"] is True


def test_touch_sets_last_edited_time(world: World) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    world.emulator.touch(world.refs.home)
    body = world.client().get(f"/v1/pages/{world.refs.home.id}").json()
    edited = datetime.strptime(body["last_edited_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert edited.replace(tzinfo=UTC) >= before


def test_replaced_file_content_is_served_after_refresh(world: World) -> None:
    world.refs.image.data = b"new bytes"
    world.refs.image.version += 1
    world.emulator.refresh()
    body = world.client().get(f"/v1/blocks/{world.refs.image_block.id}").json()
    assert world.download(body["image"]["file"]["url"]) == b"new bytes"


def test_file_spec_lookup(world: World) -> None:
    spec = world.refs.image
    assert world.emulator.file_spec(spec.id) is spec
    assert world.emulator.file_spec(spec.id.replace("-", "")) is spec
    with pytest.raises(KeyError):
        world.emulator.file_spec("0123456789abcdef0123456789abcdef")


def test_token_and_loopback_guard(world: World) -> None:
    from notionfs.emulator.server import Emulator

    assert world.emulator.token == TOKEN
    with pytest.raises(ValueError):
        Emulator(world.emulator.workspace, host="0.0.0.0")


def test_in_process_transport(world: World) -> None:
    transport = world.emulator.api_transport()
    with httpx.Client(
        transport=transport,
        base_url="http://notion.invalid",
        headers={"Authorization": f"Bearer {TOKEN}", "Notion-Version": "2025-09-03"},
    ) as client:
        body = client.get(f"/v1/pages/{world.refs.home.id.replace('-', '')}").json()
        assert body["id"] == world.refs.home.id
        assert_error(
            client.get("/v1/users/me", headers={"Authorization": "x"}), 401, "unauthorized"
        )
    assert world.emulator.counters.total == 2
