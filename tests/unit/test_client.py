"""NotionClient over httpx.MockTransport: pagination, retries, rate limit, errors, versions."""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from notionfs.apihttp import UNREACHABLE_HOLD_S
from notionfs.client import PACING_FRACTION, NotionClient
from notionfs.config import Settings
from notionfs.errors import (
    ApiError,
    AuthError,
    ConfigError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from notionfs.models import (
    Database,
    DataSourceRef,
    MalformedResponse,
    Page,
    Parent,
    parse_database,
)
from notionfs.ratelimit import TokenBucket
from tests.unit.test_models import (
    DB_ID,
    DS_ID,
    PAGE_ID,
    block_json,
    data_source_json,
    database_json,
    page_json,
    rich,
    row_json,
)

TOKEN = "secret_tok3n_DO_NOT_LEAK_0123456789"
API = "https://api.test"
DB2_ID = "0f5b1d1c-8f1e-4b5e-9d0a-3c2b1a098765"
DS2_ID = "1a2b3c4d-0000-4000-8000-00000000beef"
DS3_ID = "1a2b3c4d-0000-4000-8000-00000000cafe"

Reply = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class FakeApi:
    """Routes (method, path) to queued replies; the last reply repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            queue = self.routes.get((request.method, request.url.path))
            if queue is None:
                return error(404, "object_not_found", f"no route {request.url.path}")
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, httpx.Response):
            return reply
        if isinstance(reply, type):
            raise reply("simulated failure", request=request)
        return reply(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def ok(payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(200, json=payload, headers=headers)


def listing(results: list[dict[str, Any]], next_cursor: str | None = None) -> httpx.Response:
    return ok({"object": "list", "results": results, "next_cursor": next_cursor,
               "has_more": next_cursor is not None, "type": "block", "block": {}})


def error(status: int, code: str, message: str = "failed", **headers: str) -> httpx.Response:
    body = {"object": "error", "status": status, "code": code, "message": message,
            "request_id": "req-42"}
    return httpx.Response(status, json=body, headers=headers)


def make_client(
    api: FakeApi, version: str = "2025-09-03", **overrides: Any
) -> tuple[NotionClient, FakeTime]:
    fake = FakeTime()
    settings = Settings(token=TOKEN, api_url=API, notion_version=version)
    settings = replace(settings, **overrides)
    http = httpx.Client(transport=httpx.MockTransport(api.handler))
    client = NotionClient(settings, http, clock=fake.clock, sleep=fake.sleep,
                          wall_clock=lambda: 1_700_000_000.0)
    return client, fake


def paragraph(n: int) -> dict[str, Any]:
    b = block_json("paragraph", {"rich_text": rich(f"p{n}")})
    b["id"] = f"00000000-0000-4000-8000-{n:012d}"
    return b


# ---- headers, basic endpoints, versions ---------------------------------------------


def test_injected_http_gets_auth_and_version_headers() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json()))
    client, _ = make_client(api, "2026-03-11")
    page = client.get_page(PAGE_ID.replace("-", ""))  # compact ids are normalised
    assert page.title == "Plans"
    (request,) = api.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["notion-version"] == "2026-03-11"
    assert str(request.url) == f"{API}/v1/pages/{PAGE_ID}"


def test_own_http_client_is_configured_from_settings() -> None:
    settings = Settings(token=TOKEN, api_url=API + "/", connect_timeout_s=3.0,
                        read_timeout_s=7.0)
    client = NotionClient(settings)
    http = client._api.http
    assert str(http.base_url).rstrip("/") == API
    assert http.headers["notion-version"] == settings.notion_version
    assert http.timeout.connect == 3.0 and http.timeout.read == 7.0
    assert TOKEN not in repr(client)
    client.close()
    assert http.is_closed


def test_injected_http_is_not_closed_by_client() -> None:
    client, _ = make_client(FakeApi())
    client.close()
    assert not client._api.http.is_closed


def test_unsupported_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        NotionClient(Settings(token=TOKEN, notion_version="2021-05-13"))


def test_me_and_get_block() -> None:
    api = FakeApi()
    api.on("GET", "/v1/users/me", ok({"object": "user", "id": PAGE_ID, "type": "bot",
                                      "name": "fs", "bot": {"workspace_name": "Acme"}}))
    api.on("GET", f"/v1/blocks/{PAGE_ID}", ok(block_json("child_page", {"title": "Kid"})))
    client, _ = make_client(api)
    assert client.me().workspace_name == "Acme"
    assert client.get_block(PAGE_ID).title == "Kid"


def test_ids_are_quoted_into_paths() -> None:
    api = FakeApi()
    client, _ = make_client(api)
    with pytest.raises(NotFoundError):
        client.get_page("../users/me")
    assert api.requests[0].url.raw_path == b"/v1/pages/..%2Fusers%2Fme"


# ---- pagination -------------------------------------------------------------------------


def test_pagination_follows_has_more_over_short_pages() -> None:
    pages = {None: ([paragraph(1), paragraph(2)], "c1"),  # short page, yet more follow
             "c1": ([], "c2"),  # even an empty page can have more
             "c2": ([paragraph(3)], None)}

    def serve(request: httpx.Request) -> httpx.Response:
        assert request.url.params["page_size"] == "100"
        results, nxt = pages[request.url.params.get("start_cursor")]
        return listing(results, nxt)

    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children", serve)
    client, _ = make_client(api)
    ids = [b.payload["rich_text"][0]["plain_text"] for b in client.block_children(PAGE_ID)]
    assert ids == ["p1", "p2", "p3"]
    assert [r.url.params.get("start_cursor") for r in api.requests] == [None, "c1", "c2"]


def test_a_full_page_without_has_more_is_the_end() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children",
           listing([paragraph(n) for n in range(100)], None))
    client, _ = make_client(api)
    assert len(list(client.block_children(PAGE_ID))) == 100
    assert len(api.requests) == 1


def test_children_are_fetched_lazily() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children",
           listing([paragraph(1)], "c1"), listing([paragraph(2)], None))
    client, _ = make_client(api)
    children = client.block_children(PAGE_ID)
    assert api.requests == []
    next(children)
    assert len(api.requests) == 1
    assert len(list(children)) == 1
    assert len(api.requests) == 2


def test_post_pagination_puts_cursor_in_body() -> None:
    bodies: list[dict[str, Any]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if body.get("start_cursor") is None:
            return listing([row_json("2025-09-03")], "next")
        return listing([row_json("2025-09-03")], None)

    api = FakeApi()
    api.on("POST", f"/v1/data_sources/{DS_ID}/query", serve)
    client, _ = make_client(api)
    db = client_db()
    assert len(list(client.query_rows(db, DS_ID))) == 2
    assert bodies == [{"page_size": 100}, {"page_size": 100, "start_cursor": "next"}]


def test_repeated_cursor_is_malformed_not_an_endless_loop() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children", listing([paragraph(1)], "same"))
    client, _ = make_client(api)
    with pytest.raises(MalformedResponse):
        list(client.block_children(PAGE_ID))
    assert len(api.requests) == 2


def test_has_more_without_cursor_is_malformed() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children",
           ok({"object": "list", "results": [], "has_more": True, "next_cursor": None}))
    client, _ = make_client(api)
    with pytest.raises(MalformedResponse):
        list(client.block_children(PAGE_ID))


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        ok({"object": "list", "has_more": False}),
        ok({"object": "list", "results": ["x"], "has_more": False}),
        httpx.Response(200, json=[1, 2]),
    ],
)
def test_malformed_bodies_raise_api_error(reply: httpx.Response) -> None:
    api = FakeApi()
    api.on("GET", f"/v1/blocks/{PAGE_ID}/children", reply)
    client, _ = make_client(api)
    with pytest.raises(ApiError):
        list(client.block_children(PAGE_ID))


# ---- versions: databases, data sources, rows, search -----------------------------------


def client_db(version: str = "2025-09-03") -> Database:
    return parse_database(database_json(version))


def test_get_database_2022_has_its_implicit_data_source() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/databases/{DB_ID}", ok(database_json("2022-06-28")))
    client, _ = make_client(api, "2022-06-28")
    db = client.get_database(DB_ID)
    assert db.data_sources == (DataSourceRef(DB_ID, "Tasks"),)


def test_get_data_source_by_version() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/data_sources/{DS_ID}", ok(data_source_json()))
    api.on("GET", f"/v1/databases/{DB_ID}", ok(database_json("2022-06-28")))
    new, _ = make_client(api, "2025-09-03")
    assert new.get_data_source(DS_ID).parent.database_id == DB_ID
    old, _ = make_client(api, "2022-06-28")
    legacy = old.get_data_source(DB_ID)
    assert (legacy.id, legacy.name) == (DB_ID, "Tasks")
    assert api.paths() == [f"/v1/data_sources/{DS_ID}", f"/v1/databases/{DB_ID}"]


@pytest.mark.parametrize(
    ("version", "path"),
    [
        ("2022-06-28", f"/v1/databases/{DB_ID}/query"),
        ("2025-09-03", f"/v1/data_sources/{DS_ID}/query"),
        ("2026-03-11", f"/v1/data_sources/{DS_ID}/query"),
    ],
)
def test_query_rows_endpoint_by_version(version: str, path: str) -> None:
    api = FakeApi()
    api.on("POST", path, listing([row_json(version), data_source_json(version)]))
    client, _ = make_client(api, version)
    db = client_db(version)
    source_id = db.data_sources[0].id
    rows = list(client.query_rows(db, source_id))
    assert [r.title for r in rows] == ["Row one"]  # the nested data source is not a row
    assert rows[0].parent.database_id == DB_ID
    assert api.paths() == [path]


def test_search_all_folds_data_sources_into_databases() -> None:
    ds2 = data_source_json()
    ds2["id"] = DS2_ID  # a second data source of the same database
    orphan = data_source_json()
    orphan.update(id=DS3_ID, title=rich("Orphan"),
                  parent={"type": "database_id", "database_id": DB2_ID})
    partial_page = {"object": "page", "id": PAGE_ID}
    api = FakeApi()
    api.on("POST", "/v1/search",
           listing([page_json(), data_source_json(), ds2], "c1"),
           listing([orphan, partial_page], None))
    db_raw = database_json("2025-09-03")
    db_raw["data_sources"].append({"id": DS2_ID, "name": "Second"})
    api.on("GET", f"/v1/databases/{DB_ID}", ok(db_raw))
    api.on("GET", f"/v1/databases/{DB2_ID}", error(404, "object_not_found"))
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json(properties={
        "title": {"id": "title", "type": "title", "title": rich("Fetched")}})))
    client, _ = make_client(api)

    found = list(client.search_all())

    assert [type(x).__name__ for x in found] == ["Page", "Database", "Database", "Page"]
    assert isinstance(found[1], Database)
    assert found[1].id == DB_ID
    assert [ref.id for ref in found[1].data_sources] == [DS_ID, DS2_ID]
    orphan_db = found[2]
    assert isinstance(orphan_db, Database)
    assert (orphan_db.id, orphan_db.title) == (DB2_ID, "Orphan")
    assert orphan_db.parent == Parent("page_id", PAGE_ID)
    assert orphan_db.data_sources == (DataSourceRef(DS3_ID, "Orphan"),)
    assert isinstance(found[3], Page) and found[3].title == "Fetched"
    assert api.paths().count(f"/v1/databases/{DB_ID}") == 1  # once per distinct database


def test_search_all_2022_yields_databases_directly() -> None:
    api = FakeApi()
    api.on("POST", "/v1/search", listing([database_json("2022-06-28"), row_json("2022-06-28")]))
    client, _ = make_client(api, "2022-06-28")
    found = list(client.search_all())
    assert isinstance(found[0], Database) and found[0].data_sources[0].id == DB_ID
    assert isinstance(found[1], Page)
    assert api.paths() == ["/v1/search"]


def test_page_property_paginated_and_single() -> None:
    api = FakeApi()
    base = f"/v1/pages/{PAGE_ID}/properties"
    item = {"object": "property_item", "type": "title", "id": "title"}
    api.on("GET", f"{base}/title",
           ok({"object": "list", "results": [{**item, "n": 1}], "has_more": True,
               "next_cursor": "k", "type": "property_item"}),
           ok({"object": "list", "results": [{**item, "n": 2}], "has_more": False,
               "next_cursor": None, "type": "property_item"}))
    api.on("GET", f"{base}/a;x",  # the route sees the decoded path
           ok({"object": "property_item", "type": "checkbox", "id": "a%3Bx", "checkbox": True}))
    client, _ = make_client(api)
    assert [i["n"] for i in client.page_property(PAGE_ID, "title")] == [1, 2]
    assert client.page_property(PAGE_ID, "a%3Bx")[0]["checkbox"] is True
    assert api.requests[-1].url.raw_path.endswith(b"/properties/a%3Bx?page_size=100")


# ---- retries ----------------------------------------------------------------------------


def test_429_honours_retry_after_seconds() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}",
           error(429, "rate_limited", **{"Retry-After": "7"}), ok(page_json()))
    client, fake = make_client(api)
    assert client.get_page(PAGE_ID).id == PAGE_ID
    assert fake.sleeps == [pytest.approx(7.0)]
    assert client.stats.snapshot() == {"requests": 2, "retries": 1, "rate_limited": 1,
                                       "errors_by_code": {"rate_limited": 1}}


def test_429_honours_retry_after_http_date_against_server_date() -> None:
    server_now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    headers = {"Retry-After": format_datetime(server_now + timedelta(seconds=12), usegmt=True),
               "Date": format_datetime(server_now, usegmt=True)}
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(429, "rate_limited", **headers),
           ok(page_json()))
    client, fake = make_client(api)
    client.get_page(PAGE_ID)
    assert fake.sleeps == [pytest.approx(12.0)]


def test_429_http_date_without_date_header_uses_wall_clock() -> None:
    wall = datetime.fromtimestamp(1_700_000_000.0, tz=UTC)
    retry_at = format_datetime(wall + timedelta(seconds=3), usegmt=True)
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(429, "rate_limited", **{"Retry-After": retry_at}),
           ok(page_json()))
    client, fake = make_client(api)
    client.get_page(PAGE_ID)
    assert fake.sleeps == [pytest.approx(3.0)]


def test_429_pause_slows_down_the_following_calls() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}",
           error(429, "rate_limited", **{"Retry-After": "5"}), ok(page_json()))
    client, fake = make_client(api, rate_limit_rps=3.0, rate_limit_burst=10)
    client.get_page(PAGE_ID)
    client.get_page(PAGE_ID)
    # Without the 429 the bucket would let both through at once; after it, no burst,
    # and the (paced) rate is halved.
    assert fake.sleeps == [pytest.approx(5.0), pytest.approx(1 / (1.5 * PACING_FRACTION))]


def test_429_after_retries_is_rate_limited_error() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(429, "rate_limited", **{"Retry-After": "1"}))
    client, _ = make_client(api, max_retries=2)
    with pytest.raises(RateLimitedError) as info:
        client.get_page(PAGE_ID)
    assert info.value.retry_after_s == 1.0
    assert len(api.requests) == 3
    assert client.stats.rate_limited == 3


def test_retry_after_beyond_deadline_gives_up_at_once() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(429, "rate_limited", **{"Retry-After": "120"}))
    client, fake = make_client(api, op_deadline_s=30.0)
    with pytest.raises(RateLimitedError) as info:
        client.get_page(PAGE_ID)
    assert info.value.retry_after_s == 120.0
    assert len(api.requests) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("GET", f"/v1/pages/{PAGE_ID}", lambda c: c.get_page(PAGE_ID)),
        ("POST", "/v1/search", lambda c: list(c.search_all())),
    ],
)
def test_529_is_retried(method: str, path: str, call: Callable[[NotionClient], Any]) -> None:
    api = FakeApi()
    success = ok(page_json()) if method == "GET" else listing([])
    api.on(method, path, error(529, "service_overload"), success)
    client, fake = make_client(api)
    call(client)
    assert len(api.requests) == 2
    assert len(fake.sleeps) == 1 and 0.25 <= fake.sleeps[0] <= 0.5  # base 0.5, jittered


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_on_reads(status: int) -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(status, "internal_server_error"),
           ok(page_json()))
    api.on("POST", f"/v1/data_sources/{DS_ID}/query", error(status, "internal_server_error"),
           listing([row_json("2025-09-03")]))
    client, _ = make_client(api)
    client.get_page(PAGE_ID)
    assert len(list(client.query_rows(client_db(), DS_ID))) == 1
    assert client.stats.retries == 2


def test_5xx_not_retried_on_writes_but_529_is() -> None:
    api = FakeApi()
    api.on("POST", "/v1/pages", error(503, "service_unavailable"))
    client, _ = make_client(api)
    with pytest.raises(ServerError):
        list(client.paginate("POST", "/v1/pages", body={}))
    assert len(api.requests) == 1
    api.on("POST", "/v1/comments", error(529, "service_overload"), listing([]))
    assert list(client.paginate("POST", "/v1/comments", body={})) == []


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        (400, "validation_error", ApiError),
        (401, "unauthorized", AuthError),
        (403, "restricted_resource", AuthError),
        (404, "object_not_found", NotFoundError),
        (409, "conflict_error", ApiError),
        (501, "not_implemented", ServerError),
    ],
)
def test_client_errors_are_typed_and_never_retried(status: int, code: str,
                                                   exc: type[ApiError]) -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(status, code, "Nope."))
    client, fake = make_client(api)
    with pytest.raises(exc) as info:
        client.get_page(PAGE_ID)
    assert type(info.value) is exc
    assert (info.value.status, info.value.code, info.value.request_id) == (status, code, "req-42")
    assert code in str(info.value) and "Nope." in str(info.value)
    assert len(api.requests) == 1
    assert fake.sleeps == []
    assert client.stats.errors_by_code == {code: 1}


def test_non_json_error_body_still_typed() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}",
           httpx.Response(502, text="<html>bad gateway</html>",
                          headers={"x-notion-request-id": "hdr-1"}))
    client, _ = make_client(api, max_retries=0)
    with pytest.raises(ServerError) as info:
        client.get_page(PAGE_ID)
    assert (info.value.code, info.value.request_id) == ("http_502", "hdr-1")


def test_backoff_is_exponential_jittered_and_capped() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(503, "service_unavailable"))
    client, fake = make_client(api, max_retries=8, backoff_base_s=1.0, backoff_cap_s=4.0,
                               op_deadline_s=1000.0)
    with pytest.raises(ServerError):
        client.get_page(PAGE_ID)
    assert len(api.requests) == 9
    ceilings = [min(4.0, 2.0**i) for i in range(8)]
    assert len(fake.sleeps) == 8
    for slept, ceiling in zip(fake.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_total_retry_time_is_bounded_by_the_deadline() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(503, "service_unavailable"))
    client, fake = make_client(api, max_retries=1000, backoff_base_s=1.0, backoff_cap_s=4.0,
                               op_deadline_s=20.0)
    with pytest.raises(ServerError):
        client.get_page(PAGE_ID)
    assert sum(fake.sleeps) <= 20.0
    assert len(api.requests) < 30


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadTimeout,
                                     httpx.RemoteProtocolError, httpx.ConnectTimeout])
def test_network_errors_retried_on_reads(failure: type[Exception]) -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", failure, ok(page_json()))
    client, _ = make_client(api)
    assert client.get_page(PAGE_ID).id == PAGE_ID
    assert client.stats.retries == 1


def test_network_error_after_retries_names_the_host() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", httpx.ReadTimeout)
    client, _ = make_client(api, max_retries=2)
    with pytest.raises(NetworkError) as info:
        client.get_page(PAGE_ID)
    assert "api.test" in str(info.value)
    assert len(api.requests) == 3


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout])
def test_unreachable_api_fails_fast_then_recovers(
    failure: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """A host refusing connections is tried twice; then calls fail without a request
    until the hold passes, and the first call after it reaches Notion again."""
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", failure)
    client, fake = make_client(api, max_retries=6, op_deadline_s=30.0)
    with pytest.raises(NetworkError):
        client.get_page(PAGE_ID)
    assert len(api.requests) == 2
    slept = sum(fake.sleeps)
    assert slept <= 0.5  # one short backoff, not a deadline's worth of retries
    for _ in range(5):
        with pytest.raises(NetworkError, match="down for"):
            client.get_page(PAGE_ID)
    assert len(api.requests) == 2
    assert sum(fake.sleeps) == slept
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json()))
    fake.now += UNREACHABLE_HOLD_S
    assert client.get_page(PAGE_ID).id == PAGE_ID
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


def test_unreachable_hold_is_shared_by_threads() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", httpx.ConnectError)
    client, _ = make_client(api)
    with pytest.raises(NetworkError):
        client.get_page(PAGE_ID)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_page(PAGE_ID)
        except NetworkError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8
    assert len(api.requests) == 2


def test_network_error_not_retried_on_writes() -> None:
    api = FakeApi()
    api.on("POST", "/v1/pages", httpx.ReadTimeout)
    client, _ = make_client(api)
    with pytest.raises(NetworkError):
        list(client.paginate("POST", "/v1/pages", body={}))
    assert len(api.requests) == 1


def test_write_that_never_left_is_retried() -> None:
    """No connection was made, so Notion never saw the write: sending it again is safe."""
    api = FakeApi()
    api.on("POST", "/v1/pages", httpx.ConnectError, listing([]))
    client, fake = make_client(api)
    assert list(client.paginate("POST", "/v1/pages", body={})) == []
    assert len(api.requests) == 2
    assert len(fake.sleeps) == 1 and 0.25 <= fake.sleeps[0] <= 0.5


# ---- rate limiter -------------------------------------------------------------------


def test_limiter_average_rate_over_many_calls() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json()))
    client, fake = make_client(api, rate_limit_rps=3.0, rate_limit_burst=10)
    start = fake.now
    for _ in range(100):
        client.get_page(PAGE_ID)
    elapsed = fake.now - start
    # The first 10 go at once (the burst), the other 90 paced a little under 3 per second.
    assert elapsed == pytest.approx(90 / (3 * PACING_FRACTION), abs=1e-6)
    assert len(fake.sleeps) == 90
    assert 90 / elapsed <= 3.0


def test_limiter_refills_while_idle() -> None:
    fake = FakeTime()
    bucket = TokenBucket(2.0, 4, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)
    fake.now += 100.0  # long idle: the bucket is full again, but no fuller
    assert [bucket.acquire() for _ in range(4)] == [0.0] * 4
    assert bucket.acquire() == pytest.approx(0.5)


def test_limiter_slows_down_after_a_429_and_recovers() -> None:
    fake = FakeTime()
    bucket = TokenBucket(4.0, 1, clock=fake.clock, sleep=fake.sleep, recovery_s=60.0,
                         max_slowdown=8.0)
    bucket.pause(2.0)
    assert bucket.acquire() == pytest.approx(2.0)  # nothing passes during the pause
    assert bucket.rate_per_s() == pytest.approx(2.0)
    assert bucket.acquire() == pytest.approx(0.5)  # then the halved rate
    fake.now += 30.0
    assert bucket.rate_per_s() == pytest.approx(2.0 + 2.0 * (30.5 / 60.0))
    fake.now += 60.0
    assert bucket.rate_per_s() == pytest.approx(4.0)  # fully recovered, never above
    for _ in range(10):
        bucket.pause(0.0)
    assert bucket.rate_per_s() == pytest.approx(0.5)  # floored at 1/max_slowdown


def test_limiter_is_thread_safe() -> None:
    frozen = FakeTime()
    waits: list[float] = []
    lock = threading.Lock()
    # The clock never moves, so each reservation must wait one interval more than the last.
    bucket = TokenBucket(4.0, 5, clock=frozen.clock, sleep=lambda s: None)

    def worker() -> None:
        for _ in range(25):
            waited = bucket.acquire()
            assert waited is not None
            with lock:
                waits.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [0.0] * 5 + [(k + 1) / 4.0 for k in range(195)]
    assert sorted(waits) == pytest.approx(expected)


def test_limiter_refuses_a_wait_longer_than_allowed() -> None:
    fake = FakeTime()
    bucket = TokenBucket(1.0, 1, clock=fake.clock, sleep=fake.sleep)
    assert bucket.acquire() == 0.0
    assert bucket.acquire(max_wait_s=0.5) is None  # would wait 1 s; nothing taken
    assert bucket.acquire(max_wait_s=1.0) == pytest.approx(1.0)


def test_client_gives_up_when_the_queue_is_past_the_deadline() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json()))
    client, _ = make_client(api, rate_limit_rps=1.0, rate_limit_burst=1, op_deadline_s=5.0)
    client._limiter.pause(60.0)
    with pytest.raises(RateLimitedError):
        client.get_page(PAGE_ID)
    assert api.requests == []


def test_stats_are_consistent_under_threads() -> None:
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", ok(page_json()))
    client, _ = make_client(api, rate_limit_rps=1e9, rate_limit_burst=1000)

    def worker() -> None:
        for _ in range(25):
            client.get_page(PAGE_ID)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.stats.requests == 100


# ---- the token never leaks ------------------------------------------------------------


def test_token_absent_from_logs_errors_and_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeApi()
    api.on("GET", f"/v1/pages/{PAGE_ID}", error(503, "service_unavailable"), ok(page_json()))
    # A server that echoes the credential back in its message must not leak it either.
    api.on("GET", "/v1/users/me", error(401, "unauthorized", f"bad token {TOKEN}"))
    api.on("GET", f"/v1/blocks/{PAGE_ID}", httpx.ConnectError)
    client, _ = make_client(api, max_retries=1)

    client.get_page(PAGE_ID)
    errors: list[BaseException] = []
    for call in (client.me, lambda: client.get_block(PAGE_ID)):
        with pytest.raises((AuthError, NetworkError)) as info:
            call()
        errors.append(info.value)

    assert caplog.records, "the client should log its requests at DEBUG"
    assert any(f"/v1/pages/{PAGE_ID}" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    for exc in errors:
        assert TOKEN not in str(exc) and TOKEN not in repr(exc)
        assert TOKEN not in "".join(traceback.format_exception(exc))
    assert TOKEN not in repr(client)
    assert "[redacted]" in str(errors[0])
