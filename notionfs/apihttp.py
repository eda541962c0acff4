"""The Notion API's request plumbing below NotionClient: connection, counters, answers, pages.

``ApiHttp`` is the connection: base URL, the auth and ``Notion-Version`` headers, timeouts,
and an httpx client it builds (and closes) or is given; it sends one request and logs its
path, never its headers (the token). ``Reachability`` makes calls fail at once while the host
takes no connections. The rest reads answers (JSON objects, Notion's error fields, request
ids) and follows Notion's cursor pagination.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import httpx

from .config import Settings
from .errors import NetworkError
from .models import MalformedResponse

__all__ = [
    "PAGE_SIZE",
    "UNREACHABLE_HOLD_S",
    "ApiHttp",
    "ClientStats",
    "Reachability",
    "Requester",
    "error_fields",
    "header_request_id",
    "json_object",
    "list_results",
    "pages",
    "with_cursor",
]

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # Notion's maximum page_size for every paginated endpoint
# A connection that fails twice in a row makes every call fail at once for this long, instead
# of each spending its deadline on retries against a host that is not there: stale listings
# are then served at once. The next call after the hold tries again, so recovery is automatic.
UNREACHABLE_HOLD_S = 2.0


class ClientStats:
    """Request counters, safe to update from many threads; read them or take a snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.errors_by_code: Counter[str] = Counter()

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def count_error(self, code: str, status: int | None) -> None:
        with self._lock:
            self.errors_by_code[code] += 1
            if status == 429:
                self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "errors_by_code": dict(self.errors_by_code),
            }


class ApiHttp:
    """The HTTP connection to the Notion API: one request at a time, counted and logged."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client | None,
        stats: ClientStats,
        clock: Callable[[], float],
    ) -> None:
        self.base_url = settings.api_url.rstrip("/")
        self.host = httpx.URL(self.base_url).host or self.base_url
        self._stats = stats
        self._clock = clock
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.connect_timeout_s,
        )
        self._headers = {
            "Authorization": f"Bearer {settings.token}",
            "Notion-Version": settings.notion_version,
        }
        self._owns_http = http is None
        self.http = http if http is not None else self._build_http()

    def _build_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            http2=False,
            limits=httpx.Limits(
                max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0
            ),
        )

    def close(self) -> None:
        """Close the HTTP client if it was built here (an injected one is the caller's)."""
        if self._owns_http:
            self.http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, Any, str]] | None = None,
    ) -> httpx.Response:
        """One request, counted: a JSON ``body``, or a multipart ``form`` and ``files``. Its
        answer is the caller's to judge."""
        self._stats.count_request()
        started = self._clock()
        response = self.http.request(
            method,
            self.base_url + path,
            params=params,
            json=body,
            data=form,
            files=files,
            headers=self._headers,
            timeout=self._timeout,
        )
        # Log the path only: never headers (the token) nor full URLs.
        logger.debug(
            "%s %s -> %d in %.3fs request_id=%s",
            method,
            path,
            response.status_code,
            self._clock() - started,
            header_request_id(response),
        )
        return response


class Reachability:
    """Whether the API host answers connections; while it does not, calls fail at once."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = float("-inf")
        self._down_since: float | None = None

    def check(self, host: str) -> None:
        """Raise NetworkError without a request while the hold after a failure lasts."""
        with self._lock:
            now = self._clock()
            if now >= self._down_until or self._down_since is None:
                return
            down_s, hold_s = now - self._down_since, self._down_until - now
        raise NetworkError(
            f"cannot reach {host}: down for {down_s:.1f} s; next attempt in {hold_s:.1f} s"
        )

    def unreachable(self, host: str, error: NetworkError) -> None:
        with self._lock:
            now = self._clock()
            first = self._down_since is None
            if first:
                self._down_since = now
            self._down_until = now + UNREACHABLE_HOLD_S
        if first:
            logger.warning("Notion API unreachable (%s); failing calls at once, retrying "
                           "every %g s", error, UNREACHABLE_HOLD_S)

    def reached(self, host: str) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down_s = self._clock() - self._down_since
            self._down_since, self._down_until = None, float("-inf")
        logger.warning("Notion API at %s reachable again after %.1f s", host, down_s)


class Requester(Protocol):
    """One API call (NotionClient's): the JSON object it answers."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...


def pages(
    request: Requester,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, Any] | None,
) -> Iterator[Mapping[str, Any]]:
    """Each response of a paginated endpoint, in order, fetched lazily."""
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page_body, page_params = with_cursor(method, body, params, cursor)
        response = request(method, path, body=page_body, params=page_params)
        yield response
        # Only has_more decides: a short page may not be the last, nor a full one.
        if response.get("object") != "list" or response.get("has_more") is not True:
            return
        cursor = response.get("next_cursor")
        if not isinstance(cursor, str) or cursor in seen_cursors:
            # A missing or repeated cursor would loop forever.
            raise MalformedResponse(f"{path}: has_more without a new next_cursor")
        seen_cursors.add(cursor)


def with_cursor(
    method: str,
    body: dict[str, Any] | None,
    params: dict[str, Any] | None,
    cursor: str | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Body and query with page_size and start_cursor where this method carries them."""
    paging: dict[str, Any] = {"page_size": PAGE_SIZE}
    if cursor is not None:
        paging["start_cursor"] = cursor
    if method == "GET":
        return body, {**(params or {}), **paging}
    return {**(body or {}), **paging}, params


def list_results(response: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """The results of one page of a list answer."""
    items = response.get("results")
    if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
        raise MalformedResponse(f"{path}: list response without a results array")
    return items


def json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise MalformedResponse(
            f"{path}: response is not JSON", header_request_id(response)
        ) from exc
    if not isinstance(data, dict):
        raise MalformedResponse(f"{path}: response is not a JSON object",
                                header_request_id(response))
    return data


def header_request_id(response: httpx.Response) -> str | None:
    headers = response.headers
    request_id: str | None = headers.get("x-notion-request-id") or headers.get("x-request-id")
    return request_id


def error_fields(response: httpx.Response) -> tuple[str, str, str | None]:
    """Notion's code, message and request_id from an error response (any body)."""
    code = f"http_{response.status_code}"
    message = response.reason_phrase or "error"
    request_id = header_request_id(response)
    try:
        data = response.json()
    except ValueError:
        # A proxy or load balancer answered with HTML or nothing.
        return code, message, request_id
    if isinstance(data, dict):
        if isinstance(data.get("code"), str):
            code = data["code"]
        if isinstance(data.get("message"), str):
            message = data["message"]
        if isinstance(data.get("request_id"), str):
            request_id = data["request_id"]
    return code, message, request_id
