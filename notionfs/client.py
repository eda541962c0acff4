"""NotionClient: the endpoints notionfs reads; each call rate limited, retried, typed errors.

The connection (auth and Notion-Version headers, timeouts), reachability, answer parsing and
pagination are apihttp.py's.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from notionfs.apihttp import (
    ApiHttp,
    ClientStats,
    Reachability,
    error_fields,
    json_object,
    list_results,
    pages,
)
from notionfs.config import SUPPORTED_VERSIONS, Settings
from notionfs.errors import (
    ApiError,
    AuthError,
    ConfigError,
    NetworkError,
    NotFoundError,
    NotionFSError,
    RateLimitedError,
    ServerError,
)
from notionfs.models import (
    Block,
    Database,
    DataSource,
    DataSourceRef,
    MalformedResponse,
    Page,
    Parent,
    User,
    normalize_id,
    parse_block,
    parse_data_source,
    parse_database,
    parse_page,
    parse_user,
)
from notionfs.ratelimit import TokenBucket
from notionfs.retry import RetryPolicy

__all__ = ["NotionClient", "PACING_FRACTION", "user_names"]

logger = logging.getLogger(__name__)

# The first version where databases hold data sources (rows live in data sources).
_DATA_SOURCE_VERSION = "2025-09-03"
# No connection could be made at all: Notion, or the way to it, is down.
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
# Requests are paced this far under the configured average. At exactly the server's rate its
# bucket sits empty once both bursts are spent, and any request that travels faster than the
# one before it (jitter) is refused with a 429; the headroom refills it for such moments.
PACING_FRACTION = 0.9
# POSTs that only read: search and database / data source queries.
_READ_POST_SUFFIXES = ("/query",)
_READ_POST_PATHS = frozenset({"/v1/search"})


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: the error to raise if we stop, and when to retry (None: never)."""

    error: NotionFSError
    retry_in_s: float | None
    rate_limited: bool = False


def _is_read(method: str, path: str) -> bool:
    if method == "GET":
        return True
    return method == "POST" and (path in _READ_POST_PATHS or path.endswith(_READ_POST_SUFFIXES))


def _path_id(raw: str) -> str:
    # Quoting keeps a caller's odd id from reaching another endpoint ("../", "?").
    return quote(normalize_id(raw), safe="")


def _is_partial(item: Mapping[str, Any]) -> bool:
    """Partial objects ({object, id} only) come back for items we may not fully read."""
    return "created_time" not in item


class NotionClient:
    """A synchronous, thread-safe client for the parts of the Notion API notionfs reads."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if settings.notion_version not in SUPPORTED_VERSIONS:
            raise ConfigError(
                f"unsupported Notion-Version {settings.notion_version!r}; "
                f"use one of {', '.join(SUPPORTED_VERSIONS)}"
            )
        self.version: str = settings.notion_version
        self.stats = ClientStats()
        self._settings = settings
        self._clock = clock
        # What is retried and how long to wait: one policy shared with the file reads.
        self._retry = RetryPolicy.from_settings(
            settings, clock=clock, sleep=sleep, wall_clock=wall_clock, rng=rng
        )
        self._limiter = TokenBucket(
            settings.rate_limit_rps * PACING_FRACTION,
            settings.rate_limit_burst,
            clock=clock,
            sleep=sleep,
        )
        self._api = ApiHttp(settings, http, self.stats, clock)
        self._reach = Reachability(clock)

    def __repr__(self) -> str:
        return f"NotionClient(api_url={self._api.base_url!r}, version={self.version!r})"

    def close(self) -> None:
        """Close the HTTP client if this client built it (an injected one is the caller's)."""
        self._api.close()

    def __enter__(self) -> NotionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def uses_data_sources(self) -> bool:
        """True from 2025-09-03 on: rows are queried through data sources."""
        return self.version >= _DATA_SOURCE_VERSION

    # ---- endpoints ---------------------------------------------------------------------

    def me(self) -> User:
        return parse_user(self.request("GET", "/v1/users/me"))

    def get_page(self, page_id: str) -> Page:
        return parse_page(self.request("GET", f"/v1/pages/{_path_id(page_id)}"))

    def get_block(self, block_id: str) -> Block:
        return parse_block(self.request("GET", f"/v1/blocks/{_path_id(block_id)}"))

    def block_children(self, block_id: str) -> Iterator[Block]:
        """Every direct child of a block or page, fetching pages of results lazily."""
        path = f"/v1/blocks/{_path_id(block_id)}/children"
        for item in self.paginate("GET", path):
            yield parse_block(item)

    def get_database(self, database_id: str) -> Database:
        return parse_database(self.request("GET", f"/v1/databases/{_path_id(database_id)}"))

    def get_data_source(self, data_source_id: str) -> DataSource:
        """A data source; under 2022-06-28 the database of that id, seen as one."""
        if self.uses_data_sources:
            path = f"/v1/data_sources/{_path_id(data_source_id)}"
        else:
            path = f"/v1/databases/{_path_id(data_source_id)}"
        return parse_data_source(self.request("GET", path))

    def query_rows(self, database: Database, data_source_id: str) -> Iterator[Page]:
        """Every row (page) of one data source of ``database``, lazily."""
        if self.uses_data_sources:
            path = f"/v1/data_sources/{_path_id(data_source_id)}/query"
        else:
            path = f"/v1/databases/{_path_id(database.id)}/query"
        for item in self.paginate("POST", path, body={}):
            if item.get("object") == "page":
                yield self._full_page(item)
            else:
                # Wiki data sources may list nested data sources; they are not rows.
                logger.debug("query %s: skipping %r result", path, item.get("object"))

    def search_all(self) -> Iterator[Page | Database]:
        """Every page and database shared with the integration, nested ones included.

        From 2025-09-03 search returns data sources instead of databases; each distinct
        database behind them is fetched once, so callers see Databases in every version.
        """
        seen_databases: set[str] = set()
        for item in self.paginate("POST", "/v1/search", body={}):
            kind = item.get("object")
            if kind == "page":
                yield self._full_page(item)
            elif kind == "database":
                database = parse_database(item)
                if database.id not in seen_databases:
                    seen_databases.add(database.id)
                    yield database
            elif kind == "data_source":
                folded = self._database_of(item, seen_databases)
                if folded is not None:
                    yield folded
            else:
                logger.debug("search: skipping %r result", kind)

    def page_property(self, page_id: str, property_id: str) -> list[dict[str, Any]]:
        """Every property_item of one page property (long titles, relations, people...).

        Paginated property types answer with a list; the others with a single item.
        """
        # Property ids arrive already percent-encoded from the API; keep their escapes.
        path = f"/v1/pages/{_path_id(page_id)}/properties/{quote(property_id, safe='%')}"
        items: list[dict[str, Any]] = []
        for response in pages(self.request, "GET", path, None, None):
            if response.get("object") == "property_item":
                return [dict(response)]
            items.extend(list_results(response, path))
        return items

    def paginate(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every result of a paginated endpoint, following next_cursor while has_more."""
        for response in pages(self.request, method, path, body, params):
            yield from list_results(response, path)

    # ---- helpers for the endpoints --------------------------------------------------------

    def _full_page(self, item: dict[str, Any]) -> Page:
        if _is_partial(item):
            return self.get_page(str(item.get("id", "")))
        return parse_page(item)

    def _database_of(
        self, item: dict[str, Any], seen_databases: set[str]
    ) -> Database | None:
        """The database behind a search result data source, unless already yielded."""
        if _is_partial(item):
            source = self.get_data_source(str(item.get("id", "")))
        else:
            source = parse_data_source(item)
        database_id = source.parent.database_id
        if database_id is None:
            raise MalformedResponse(f"data source {source.id}: no parent database id")
        if database_id in seen_databases:
            return None
        seen_databases.add(database_id)
        try:
            return self.get_database(database_id)
        except NotFoundError:
            # The data source is shared but its database is not readable: show what we know.
            logger.debug("database %s not readable; using data source %s", database_id,
                         source.id)
            return _database_from_source(database_id, source)

    # ---- one API call: rate limit, retries, typed errors -------------------------------

    def _call(
        self, method: str, path: str, send: Callable[[], httpx.Response], read: bool
    ) -> dict[str, Any]:
        """One API call made by ``send``, retried as the policy (retry.py) allows within
        ``op_deadline_s``; ``read``: whether sending it twice is harmless."""
        started = self._clock()
        attempt = 0
        while True:
            self._reach.check(self._api.host)
            self._take_token(started)
            outcome = self._attempt(path, send, read, attempt)
            if not isinstance(outcome, _Failure):
                return outcome
            delay_s = outcome.retry_in_s
            if outcome.rate_limited:
                # The limit is per integration: every thread must back off, not just this one.
                self._limiter.pause(delay_s or 0.0)
            if delay_s is None or not self._retry.allows(delay_s, attempt, started):
                raise outcome.error
            attempt += 1
            self.stats.count_retry()
            logger.info("retrying %s %s in %.2fs (attempt %d): %s", method, path, delay_s,
                        attempt, outcome.error)
            if not outcome.rate_limited:
                # After a 429 the limiter's pause does the waiting, for all threads.
                self._retry.sleep(delay_s)

    def _take_token(self, started: float) -> None:
        remaining_s = self._settings.op_deadline_s - (self._clock() - started)
        if self._limiter.acquire(max_wait_s=max(0.0, remaining_s)) is None:
            wait_s = self._limiter.wait_estimate_s()
            raise RateLimitedError(
                429,
                "rate_limited",
                f"client-side rate limit: next request slot is {wait_s:.1f}s away",
                retry_after_s=wait_s,
            )

    def _attempt(
        self, path: str, send: Callable[[], httpx.Response], read: bool, attempt: int
    ) -> dict[str, Any] | _Failure:
        try:
            response = send()
        except httpx.RequestError as exc:
            return self._transport_failure(exc, read, attempt)
        self._reach.reached(self._api.host)
        if response.is_success:
            return json_object(response, path)
        return self._failure(response, read, attempt)

    def _transport_failure(self, exc: httpx.RequestError, read: bool, attempt: int) -> _Failure:
        self.stats.count_error("network_error", None)
        error = NetworkError(f"cannot reach {self._api.host}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc  # httpx errors carry no headers, so no token
        delay_s = self._retry.delay_for_error(exc, attempt, read=read)
        if isinstance(exc, _CONNECT_ERRORS):
            # Tried once more (a blip), then the host counts as down for a while.
            if attempt > 0:
                delay_s = None
            if delay_s is None:
                self._reach.unreachable(self._api.host, error)
        return _Failure(error, delay_s)

    def _failure(self, response: httpx.Response, read: bool, attempt: int) -> _Failure:
        status = response.status_code
        code, message, request_id = error_fields(response)
        message = self._scrub(message)
        self.stats.count_error(code, status)
        delay_s = self._retry.delay_for_status(status, response.headers, attempt, read=read)
        error: ApiError
        if status == 429:
            retry_after_s = self._retry.retry_after_s(response.headers)
            error = RateLimitedError(status, code, message, request_id, retry_after_s)
            return _Failure(error, delay_s, rate_limited=True)
        if status >= 500:  # 529 service_overload included
            error = ServerError(status, code, message, request_id)
        elif status in (401, 403):
            error = AuthError(status, code, message, request_id)
        elif status == 404:
            error = NotFoundError(status, code, message, request_id)
        else:
            error = ApiError(status, code, message, request_id)
        return _Failure(error, delay_s)

    def _scrub(self, text: str) -> str:
        """Remove the token from text a server echoed back (an error message)."""
        token = self._settings.token
        return text.replace(token, "[redacted]") if token else text

    def list_users(self) -> Iterator[User]:
        """Every user of the workspace, people and bots (GET /v1/users, paginated). Needs the
        user information capability: without it Notion answers 403 restricted_resource
        (``user_names`` turns that into "no names")."""
        for item in self.paginate("GET", "/v1/users"):
            yield parse_user(item)

    # ---- raw calls (the endpoints above, and writeapi.py): one limiter, policy, errors -----

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        """One API call answering a JSON object. ``idempotent``: sending it twice cannot
        apply it twice, so 5xx answers and lost answers are retried as for a read."""
        read = idempotent or _is_read(method, path)

        def send() -> httpx.Response:
            return self._api.send(method, path, body=body, params=params)

        return self._call(method, path, send, read)

    def request_form(
        self,
        path: str,
        *,
        fields: Mapping[str, str],
        file: tuple[str, Any, str],
        idempotent: bool = False,
    ) -> dict[str, Any]:
        """POST multipart/form-data: text ``fields`` and one ``file`` part, given as
        (filename, a seekable binary reader, content type). httpx streams the reader in
        64 KiB chunks and rewinds it for each attempt, so no body is held whole."""

        def send() -> httpx.Response:
            return self._api.send("POST", path, form=dict(fields), files={"file": file})

        return self._call("POST", path, send, idempotent)


def _database_from_source(database_id: str, source: DataSource) -> Database:
    return Database(
        id=database_id,
        title=source.name,
        parent=source.database_parent or Parent("workspace", None),
        created_time=source.created_time,
        last_edited_time=source.last_edited_time,
        in_trash=source.in_trash,
        url="",
        icon=source.icon,
        cover=source.cover,
        is_inline=source.is_inline,
        data_sources=(DataSourceRef(source.id, source.name),),
    )


def user_names(client: NotionClient) -> dict[str, str]:
    """User id -> name for every named workspace user; empty, not an error, when the
    integration may not read users (403 restricted_resource: no user capability)."""
    try:
        return {user.id: user.name for user in client.list_users() if user.name}
    except AuthError as error:
        if error.status != 403 or error.code != "restricted_resource":
            raise
        logger.info("no user names: the integration may not read users (%s)", error.code)
        return {}
