"""The emulated Notion API: auth, versions, routes, pagination, errors, rate limit, faults.

Transport-free: ``NotionApi.handle`` takes a method, target, headers and body and returns
an ``ApiResponse``; ``server.py`` puts it on a socket, tests may call it in-process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl, quote, unquote

from notionfs.emulator.faults import (
    ApiCounters,
    ApiFaults,
    ApiRequest,
    TokenBucket,
    retry_after_header,
)
from notionfs.emulator.feed import ChangeFeed
from notionfs.emulator.index import IndexEntry, WorkspaceIndex, dashed_id, id_key
from notionfs.emulator.model import Block, Database, DataSource, FileSpec, Page
from notionfs.emulator.render import (
    V2022,
    V2025,
    VERSIONS,
    Json,
    RenderContext,
    bot_user_id,
    iso_time,
    page_title,
    plain_value,
    property_id,
    property_item_meta,
    property_items,
    render_block,
    render_bot_user,
    render_data_source,
    render_database,
    render_page,
    workspace_users,
)

__all__ = [
    "ApiFailure",
    "ApiResponse",
    "FileSigner",
    "NotionApi",
    "PageSlice",
    "paginate",
    "ROUTE_TEMPLATES",
    "MAX_PAGE_SIZE",
    "SHORT_PAGE_EVERY",
    "SHORT_PAGE_DEFICIT",
]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
# With short pages on, every SHORT_PAGE_EVERY-th page (the 2nd, 5th, ...) holds
# SHORT_PAGE_DEFICIT fewer results than asked, as Notion sometimes does: clients must
# follow has_more, never infer the end from a short page.
SHORT_PAGE_EVERY = 3
SHORT_PAGE_DEFICIT = 7

_NOT_SHARED = "Make sure the relevant pages and databases are shared with your integration."

# (code, message) for statuses the fault switches inject; Notion's codes and wording.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("validation_error", "body failed validation."),
    409: ("conflict_error", "Conflict occurred while saving. Please try again."),
    429: ("rate_limited", "You have been rate limited. Please try again in a few minutes."),
    500: ("internal_server_error", "Unexpected error occurred."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Notion is unavailable, please try again later."),
    504: ("gateway_timeout", "Gateway timeout: the request took too long to complete."),
    529: ("service_overload", "Notion is overloaded right now, please try again later."),
}


class ApiFailure(Exception):
    """An error answer: Notion's ``{object: "error", status, code, message}``, with
    ``additional_data`` where Notion sends it (a 404 names the integration's id)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        additional_data: Json | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.additional_data = additional_data

    @classmethod
    def for_status(cls, status: int) -> ApiFailure:
        code, message = _STATUS_ERRORS.get(status, _STATUS_ERRORS[500])
        return cls(status, code, message)


def _validation(message: str) -> ApiFailure:
    return ApiFailure(400, "validation_error", message)


def _invalid_url() -> ApiFailure:
    return ApiFailure(400, "invalid_request_url", "Invalid request URL.")


@dataclass
class ApiResponse:
    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)


class FileSigner(Protocol):
    """The part of the file host the API needs (see filehost.FileHost)."""

    def signed_url(self, spec: FileSpec, expiry_s: float) -> tuple[str, datetime]: ...

    def external_url(self, spec: FileSpec) -> str: ...


# ---- pagination ---------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class PageSlice(Generic[T]):
    items: list[T]
    next_cursor: str | None
    has_more: bool


_CURSOR = re.compile(r"([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})")


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _encode_cursor(page_no: int, key: str) -> str:
    """A UUID, as Notion's cursors are: the page number (8 hex digits), then 24 hex digits
    that name the next item (a digest of its key)."""
    raw = f"{page_no:08x}{_key_digest(key)}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _decode_cursor(cursor: str) -> tuple[int, str]:
    """(page number, digest of the next item's key)."""
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise _invalid_cursor(cursor)
    raw = "".join(found.groups())
    return int(raw[:8], 16), raw[8:]


def _invalid_cursor(cursor: str) -> ApiFailure:
    return _validation(f"The start_cursor provided is invalid: {cursor}")


def paginate(
    items: Sequence[T],
    key: Callable[[int, T], str],
    *,
    start_cursor: str | None,
    page_size: int,
    short_pages: bool,
) -> PageSlice[T]:
    """One page of ``items``. Cursors are opaque UUIDs naming the page number and the next
    item (``key(position, item)``), much as Notion's cursors name the next block. A cursor
    whose item is gone is rejected like any bad cursor."""
    page_no, start = 0, 0
    if start_cursor is not None:
        page_no, wanted = _decode_cursor(start_cursor)
        start = next(
            (i for i, item in enumerate(items) if _key_digest(key(i, item)) == wanted), -1
        )
        if start < 0 or page_no < 1:
            raise _invalid_cursor(start_cursor)
    size = page_size
    if short_pages and page_no % SHORT_PAGE_EVERY == 1:
        size = max(1, page_size - SHORT_PAGE_DEFICIT)
    end = min(len(items), start + size)
    has_more = end < len(items)
    next_cursor = _encode_cursor(page_no + 1, key(end, items[end])) if has_more else None
    return PageSlice(list(items[start:end]), next_cursor, has_more)


def _object_key(_position: int, obj: Page | Database | DataSource | Block) -> str:
    return id_key(obj.id) or obj.id


def _position_key(position: int, _item: object) -> str:
    return f"item{position}"


def _page_args(source: Mapping[str, Any], where: str) -> tuple[int, str | None]:
    """(page_size, start_cursor) from a JSON body or a query string, validated as Notion does."""
    raw_size = source.get("page_size")
    size: Any = raw_size
    if where == "query" and isinstance(raw_size, str):
        size = int(raw_size) if re.fullmatch(r"-?\d+", raw_size) else raw_size
    if raw_size is None:
        size = MAX_PAGE_SIZE
    elif not isinstance(size, int) or isinstance(size, bool):
        raise _validation(f"{where} failed validation: {where}.page_size should be a number.")
    elif not 1 <= size <= MAX_PAGE_SIZE:
        bound = "less than or equal to `100`" if size > MAX_PAGE_SIZE else "greater than `0`"
        raise _validation(
            f"{where} failed validation: {where}.page_size should be {bound}, "
            f"instead was `{raw_size}`."
        )
    cursor = source.get("start_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _validation(f"{where} failed validation: {where}.start_cursor should be a string.")
    return size, (cursor or None)


def _list_body(kind: str, results: list[Json], page: PageSlice[Any], request_id: str) -> Json:
    return {
        "object": "list",
        "results": results,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
        "type": kind,
        kind: {},
        "request_id": request_id,
    }


# ---- request handling ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One authenticated request as a route handler sees it."""

    version: str
    params: tuple[str, ...]  # path parameters, percent-decoded
    query: dict[str, str]
    body: Json
    request_id: str
    ctx: RenderContext
    # The undecoded body and the lower-case headers, for multipart/form-data (file uploads).
    raw_body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def index(self) -> WorkspaceIndex:
        return self.ctx.index


_Handler = Callable[["NotionApi", Call], Json]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: _Handler | None  # None: a write endpoint the read-only integration may not use

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"


def _route(method: str, template: str, handler: _Handler | None) -> _Route:
    pattern = re.compile("^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + "/?$")
    return _Route(method, template, pattern, handler)


def _decode_body(raw: bytes) -> tuple[Json, bool]:
    """The JSON body (``{}`` when empty) and whether it failed to parse."""
    if not raw.strip():
        return {}, False
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return {}, True
    return (body, False) if isinstance(body, dict) else ({}, True)


class NotionApi:
    """Answers Notion API requests from a ``WorkspaceIndex``.

    ``index``, ``token``, ``expiry_s``, ``short_pages`` and ``base_url`` may be replaced
    at runtime (the emulator swaps ``index`` on refresh); each request reads them once.
    """

    def __init__(
        self,
        index: WorkspaceIndex,
        *,
        token: str,
        signer: FileSigner,
        faults: ApiFaults,
        counters: ApiCounters,
        expiry_s: float = 3600.0,
        short_pages: bool = True,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.index = index
        self.token = token
        self.signer = signer
        self.faults = faults
        self.counters = counters
        self.expiry_s = expiry_s
        self.short_pages = short_pages
        self.base_url = ""  # set once the server listens; used for property next_url
        self.bucket = TokenBucket()
        self.feed = feed if feed is not None else ChangeFeed()

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> ApiResponse:
        """Answer one request; never raises."""
        request_id = str(uuid.uuid4())
        path, _, query_string = target.partition("?")
        lower_headers = {k.lower(): v for k, v in headers.items()}
        body: Json = {}
        body_invalid = False  # multipart/form-data: a file upload's parts, parsed by the handler
        if not lower_headers.get("content-type", "").lower().startswith("multipart/form-data"):
            body, body_invalid = _decode_body(raw_body)
        route, params = _match(method.upper(), path)
        try:
            result = self._respond(
                route, params, query_string, lower_headers, body, body_invalid, request_id,
                raw_body,
            )
            if "request_id" not in result:
                # Every answer carries one, single objects too (recorded).
                result = {**result, "request_id": request_id}
            response = ApiResponse(200, result)
        except ApiFailure as failure:
            response = self._error(failure, request_id)
        except Exception:
            logger.exception("emulator bug answering %s %s", method, path)
            response = self._error(ApiFailure.for_status(500), request_id)
        response.headers.setdefault("x-notion-request-id", request_id)
        self.counters.record(
            ApiRequest(
                method=method.upper(),
                path=path,
                route=route.label if route else f"{method.upper()} {path}",
                status=response.status,
                headers=lower_headers,
                body=body if raw_body.strip() and not body_invalid else None,
                query=query_string,
            )
        )
        return response

    @staticmethod
    def _error(failure: ApiFailure, request_id: str) -> ApiResponse:
        body: Json = {
            "object": "error",
            "status": failure.status,
            "code": failure.code,
            "message": failure.message,
        }
        if failure.additional_data is not None:
            body["additional_data"] = failure.additional_data
        body["request_id"] = request_id
        return ApiResponse(failure.status, body, dict(failure.headers))

    def _respond(
        self,
        route: _Route | None,
        params: tuple[str, ...],
        query_string: str,
        headers: dict[str, str],
        body: Json,
        body_invalid: bool,
        request_id: str,
        raw_body: bytes = b"",
    ) -> Json:
        self._authenticate(headers)
        version = self._negotiate_version(headers)
        self._apply_faults()
        if body_invalid:
            raise ApiFailure(400, "invalid_json", "Error parsing JSON body.")
        if route is None:
            raise _invalid_url()
        if route.handler is None:
            raise ApiFailure(
                403, "restricted_resource", "Insufficient permissions for this endpoint."
            )
        ctx = RenderContext(version=version, index=self.index, file_object=self._file_object)
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        call = Call(version, params, query, body, request_id, ctx, raw_body, headers)
        return self.feed.present(route.handler(self, call))

    def _authenticate(self, headers: dict[str, str]) -> None:
        if headers.get("authorization", "") != f"Bearer {self.token}":
            raise ApiFailure(401, "unauthorized", "API token is invalid.")

    @staticmethod
    def _negotiate_version(headers: dict[str, str]) -> str:
        version = headers.get("notion-version", "").strip()
        if not version:
            raise ApiFailure(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be "
                "defined, instead was `undefined`.",
            )
        if version not in VERSIONS:
            raise _validation(
                "Notion-Version header failed validation: Notion-Version header should be one "
                f"of {', '.join(VERSIONS)}, instead was `{version}`."
            )
        return version

    def _apply_faults(self) -> None:
        faults = self.faults
        if faults.take_forced_429():
            raise self._rate_limited(retry_after_header(faults.retry_after_s))
        wait_s = self.bucket.try_acquire(faults.rate_limit_rps, faults.rate_limit_burst)
        if wait_s > 0:
            raise self._rate_limited(retry_after_header(max(1.0, wait_s)))
        status = faults.draw_error_status()
        if status is not None:
            raise ApiFailure.for_status(status)

    @staticmethod
    def _rate_limited(retry_after: str) -> ApiFailure:
        failure = ApiFailure.for_status(429)
        failure.headers["Retry-After"] = retry_after
        return failure

    def _file_object(self, spec: FileSpec) -> Json:
        """A file object; Notion-hosted ones get a freshly signed URL on every render."""
        if spec.external:
            return {"type": "external", "external": {"url": self.signer.external_url(spec)}}
        url, expiry = self.signer.signed_url(spec, self.expiry_s)
        return {"type": "file", "file": {"url": url, "expiry_time": iso_time(expiry)}}

    # ---- lookups shared by the handlers ------------------------------------------------

    @staticmethod
    def _require(
        call: Call, noun: str, types: tuple[type, ...], param: str = "id", position: int = 0
    ) -> IndexEntry:
        raw = call.params[position]
        if id_key(raw) is None:
            raise _validation(
                f"path failed validation: path.{param} should be a valid uuid, "
                f'instead was `"{raw}"`.'
            )
        entry = call.index.get(raw)
        if entry is None or not isinstance(entry.obj, types) or not call.index.visible(entry):
            workspace = call.index.workspace
            # Notion names the integration and gives its id (recorded, 2026).
            raise ApiFailure(
                404,
                "object_not_found",
                f"Could not find {noun} with ID: {dashed_id(raw)}. "
                f"{_NOT_SHARED.rstrip('.')} {json.dumps(workspace.bot_name)}.",
                additional_data={"integration_id": bot_user_id(workspace)},
            )
        return entry

    @staticmethod
    def _require_single_source(db: Database, call: Call) -> DataSource:
        if call.version == V2022 and len(db.data_sources) > 1:
            raise _validation(
                "Databases with multiple data sources are not supported in this API version. "
                f"Use Notion-Version {V2025} or later."
            )
        return db.data_sources[0]

    # ---- route handlers ----------------------------------------------------------------

    def _users_me(self, call: Call) -> Json:
        return render_bot_user(call.index.workspace)

    def _users_get(self, call: Call) -> Json:
        _require_user_capability(call)
        for user in workspace_users(call.index.workspace, call.version):
            if id_key(user["id"]) == id_key(call.params[0]):
                return user
        raise ApiFailure(404, "object_not_found", f"Could not find user with ID: {call.params[0]}.")

    def _users_list(self, call: Call) -> Json:
        _require_user_capability(call)
        users = workspace_users(call.index.workspace, call.version)
        page_size, cursor = _page_args(call.query, "query")
        part = paginate(
            users,
            lambda _position, user: str(user["id"]),
            start_cursor=cursor,
            page_size=page_size,
            short_pages=self.short_pages,
        )
        return _list_body("user", part.items, part, call.request_id)

    def _search(self, call: Call) -> Json:
        query = call.body.get("query")
        if query is not None and not isinstance(query, str):
            raise _validation("body failed validation: body.query should be a string.")
        wanted = _search_filter(call.body.get("filter"), call.version)
        descending = _search_sort(call.body.get("sort"))
        feed = self.feed
        # What search has indexed: an object edited within the search lag shows as it was.
        seen = [feed.search_view(e.obj) for e in call.index.order if _searchable(e, wanted, call)]
        found = [
            obj
            for obj in seen
            if obj is not None and (query or "").lower() in _title_of(obj, call).lower()
        ]
        if descending is not None:
            # Stable: objects whose (rounded) times tie keep one order across pages.
            found.sort(key=lambda obj: feed.search_time(obj, call.index), reverse=descending)
        page_size, cursor = _page_args(call.body, "body")
        page = paginate(
            found,
            _object_key,
            start_cursor=cursor,
            page_size=page_size,
            short_pages=self.short_pages,
        )
        kind = "page_or_database" if call.version == V2022 else "page_or_data_source"
        results = []
        for o in page.items:
            shown = iso_time(feed.search_time(o, call.index))  # the time search indexed
            results.append({**_render_any(o, call.ctx), "last_edited_time": shown})
        return _list_body(kind, results, page, call.request_id)

    def _get_page(self, call: Call) -> Json:
        page = self._require(call, "page", (Page,), "page_id").obj
        assert isinstance(page, Page)
        return render_page(page, call.ctx)

    def _get_page_property(self, call: Call) -> Json:
        page = self._require(call, "page", (Page,), "page_id").obj
        assert isinstance(page, Page)
        wanted = unquote(call.params[1])
        ds = call.index.data_source_of(page)
        schema = ds.properties if ds is not None else {"title": "title"}
        match = next(
            ((n, k) for n, k in schema.items() if unquote(property_id(n, k)) == wanted), None
        )
        if match is None:
            raise ApiFailure(
                404, "object_not_found", f"Could not find property with id: {call.params[1]}."
            )
        name, kind = match
        items = property_items(page, name, kind, call.ctx)
        if isinstance(items, dict):
            return items
        page_size, cursor = _page_args(call.query, "query")
        part = paginate(
            items,
            _position_key,
            start_cursor=cursor,
            page_size=page_size,
            short_pages=self.short_pages,
        )
        body = _list_body("property_item", part.items, part, call.request_id)
        meta = property_item_meta(page, name, kind, call.ctx)
        next_url = None
        if part.next_cursor is not None:
            next_url = (
                f"{self.base_url}/v1/pages/{dashed_id(page.id)}/properties/"
                f"{quote(meta['id'], safe='%')}?start_cursor={part.next_cursor}"
            )
        body["property_item"] = {"id": meta["id"], "next_url": next_url, "type": kind,
                                 kind: meta[kind]}
        return body

    def _get_block(self, call: Call) -> Json:
        node = self._require(call, "block", (Block, Page, Database), "block_id").obj
        assert isinstance(node, (Block, Page, Database))
        return render_block(node, call.ctx)

    def _block_children(self, call: Call) -> Json:
        node = self._require(call, "block", (Block, Page, Database), "block_id").obj
        children = call.index.children(node)
        page_size, cursor = _page_args(call.query, "query")
        part = paginate(
            children,
            _object_key,
            start_cursor=cursor,
            page_size=page_size,
            short_pages=self.short_pages,
        )
        results = [render_block(child, call.ctx) for child in part.items]
        return _list_body("block", results, part, call.request_id)

    def _get_database(self, call: Call) -> Json:
        db = self._require(call, "database", (Database,), "database_id").obj
        assert isinstance(db, Database)
        self._require_single_source(db, call)
        return render_database(db, call.ctx)

    def _query_database(self, call: Call) -> Json:
        if call.version != V2022:
            raise _invalid_url()  # moved to /v1/data_sources/{id}/query in 2025-09-03
        db = self._require(call, "database", (Database,), "database_id").obj
        assert isinstance(db, Database)
        return self._query_rows(call, self._require_single_source(db, call), "page_or_database")

    def _get_data_source(self, call: Call) -> Json:
        ds = self._require_data_source(call)
        return render_data_source(ds, call.ctx)

    def _query_data_source(self, call: Call) -> Json:
        ds = self._require_data_source(call)
        return self._query_rows(call, ds, "page_or_data_source")

    def _require_data_source(self, call: Call) -> DataSource:
        if call.version == V2022:
            raise _invalid_url()  # data sources exist from 2025-09-03 on
        ds = self._require(call, "data_source", (DataSource,), "data_source_id").obj
        assert isinstance(ds, DataSource)
        return ds

    def _query_rows(self, call: Call, ds: DataSource, kind: str) -> Json:
        if call.body.get("filter") is not None:
            # Loud rather than silently wrong: the emulator does not evaluate filters.
            raise _validation("The Notion emulator does not support query filters.")
        rows = [row for row in ds.rows if not row.in_trash and row.shared]
        rows = _sort_rows(rows, ds, call.body.get("sorts"))
        page_size, cursor = _page_args(call.body, "body")
        part = paginate(
            rows,
            _object_key,
            start_cursor=cursor,
            page_size=page_size,
            short_pages=self.short_pages,
        )
        results = [render_page(row, call.ctx) for row in part.items]
        return _list_body(kind, results, part, call.request_id)


def _require_user_capability(call: Call) -> None:
    if not call.index.workspace.user_capability:
        raise ApiFailure(
            403, "restricted_resource", "Insufficient permissions for this endpoint."
        )


# ---- search and sort helpers --------------------------------------------------------------


def _search_filter(raw: Any, version: str) -> str | None:
    if raw is None:
        return None
    allowed = ("page", "database") if version == V2022 else ("page", "data_source")
    value = raw.get("value") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("property") != "object" or value not in allowed:
        raise _validation(
            f'body failed validation: body.filter.value should be `"{allowed[0]}"` or '
            f'`"{allowed[1]}"`, instead was `{json.dumps(value)}`.'
        )
    return str(value)


def _search_sort(raw: Any) -> bool | None:
    """None for Notion's default order, else whether to sort by last edit descending."""
    if raw is None:
        return None
    direction = raw.get("direction") if isinstance(raw, dict) else None
    if (
        not isinstance(raw, dict)
        or raw.get("timestamp") != "last_edited_time"
        or direction not in ("ascending", "descending")
    ):
        raise _validation(
            'body failed validation: body.sort should be `{"timestamp": "last_edited_time", '
            '"direction": "ascending" | "descending"}`.'
        )
    return bool(direction == "descending")


def _searchable(entry: IndexEntry, wanted: str | None, call: Call) -> bool:
    if entry.trashed or not call.index.visible(entry):
        return False
    obj = entry.obj
    if isinstance(obj, Page):
        return wanted in (None, "page")
    if isinstance(obj, Database):
        return call.version == V2022 and wanted in (None, "database")
    if isinstance(obj, DataSource):
        return call.version != V2022 and wanted in (None, "data_source")
    return False


def _title_of(obj: Any, call: Call) -> str:
    if isinstance(obj, Page):
        return page_title(obj, call.index.data_source_of(obj))
    if isinstance(obj, (Database, DataSource)):
        return obj.title
    return ""


def _render_any(obj: Any, ctx: RenderContext) -> Json:
    if isinstance(obj, Page):
        return render_page(obj, ctx)
    if isinstance(obj, Database):
        return render_database(obj, ctx)
    return render_data_source(obj, ctx)


def _sortable(value: Any) -> tuple[int, Any]:
    """A key that orders mixed property values without TypeErrors (numbers, then text)."""
    if isinstance(value, (bool, int, float)):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value.timestamp())
    if isinstance(value, list):
        return (2, ",".join(str(v) for v in value).lower())
    return (2, str(value).lower())


def _row_sort_key(spec: Any, ds: DataSource) -> tuple[Callable[[Page], Any], bool]:
    if not isinstance(spec, dict) or spec.get("direction") not in ("ascending", "descending"):
        raise _validation(
            "body failed validation: body.sorts[].direction should be "
            '`"ascending"` or `"descending"`.'
        )
    descending = spec["direction"] == "descending"
    timestamp = spec.get("timestamp")
    if timestamp in ("created_time", "last_edited_time"):
        return (lambda row: getattr(row, timestamp)), descending
    name = spec.get("property")
    if not isinstance(name, str) or name not in ds.properties:
        raise _validation(f"Could not find sort property with name or id: {name}")
    return (lambda row: plain_value(row, ds, name)), descending


def _sort_rows(rows: list[Page], ds: DataSource, sorts: Any) -> list[Page]:
    """Rows ordered by Notion ``sorts`` (first sort wins; empty values last)."""
    if sorts is None:
        return rows
    if not isinstance(sorts, list):
        raise _validation("body failed validation: body.sorts should be an array.")
    for spec in reversed(sorts):  # stable sorts applied last-to-first give first priority
        key, descending = _row_sort_key(spec, ds)
        present = [row for row in rows if key(row) not in (None, "", [])]
        empty = [row for row in rows if key(row) in (None, "", [])]
        present.sort(key=lambda row: _sortable(key(row)), reverse=descending)
        rows = present + empty
    return rows


# ---- routes -------------------------------------------------------------------------------


def _by_name(name: str) -> _Handler:
    """A handler looked up on the API object at request time, so the emulator's writable
    API (writes.py) can implement or extend it; an API without it is a read-only
    integration, which Notion answers 403."""

    def handler(api: NotionApi, call: Call) -> Json:
        method = getattr(api, name, None)
        if method is None:
            raise ApiFailure(
                403, "restricted_resource", "Insufficient permissions for this endpoint."
            )
        result: Json = method(call)
        return result

    return handler


_ROUTES: list[_Route] = [
    _route("GET", "/v1/users/me", _by_name("_users_me")),
    _route("GET", "/v1/users", _by_name("_users_list")),
    _route("GET", "/v1/users/{id}", _by_name("_users_get")),
    _route("POST", "/v1/search", NotionApi._search),
    _route("GET", "/v1/pages/{id}", NotionApi._get_page),
    _route("GET", "/v1/pages/{id}/properties/{property_id}", NotionApi._get_page_property),
    _route("GET", "/v1/blocks/{id}", NotionApi._get_block),
    _route("GET", "/v1/blocks/{id}/children", NotionApi._block_children),
    _route("GET", "/v1/databases/{id}", NotionApi._get_database),
    _route("POST", "/v1/databases/{id}/query", NotionApi._query_database),
    _route("GET", "/v1/data_sources/{id}", NotionApi._get_data_source),
    _route("POST", "/v1/data_sources/{id}/query", NotionApi._query_data_source),
    # Write endpoints and file uploads: served by the writable API (writes.py, uploads.py).
    _route("POST", "/v1/pages", _by_name("create_page")),
    _route("PATCH", "/v1/pages/{id}", _by_name("update_page")),
    _route("POST", "/v1/pages/{id}/move", _by_name("move_page")),
    _route("PATCH", "/v1/blocks/{id}", _by_name("update_block")),
    _route("DELETE", "/v1/blocks/{id}", _by_name("delete_block")),
    _route("PATCH", "/v1/blocks/{id}/children", _by_name("append_children")),
    _route("POST", "/v1/file_uploads", _by_name("create_upload")),
    _route("GET", "/v1/file_uploads", _by_name("list_uploads")),
    _route("GET", "/v1/file_uploads/{id}", _by_name("get_upload")),
    _route("POST", "/v1/file_uploads/{id}/send", _by_name("send_upload")),
    _route("POST", "/v1/file_uploads/{id}/complete", _by_name("complete_upload")),
    # Write endpoints the emulator does not implement: refused as for a read-only integration.
    _route("POST", "/v1/databases", None),
    _route("PATCH", "/v1/databases/{id}", None),
    _route("POST", "/v1/data_sources", None),
    _route("PATCH", "/v1/data_sources/{id}", None),
    _route("POST", "/v1/comments", None),
]


def _match(method: str, path: str) -> tuple[_Route | None, tuple[str, ...]]:
    for route in _ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(path)
        if found:
            return route, tuple(unquote(p) for p in found.groups())
    return None, ()


ROUTE_TEMPLATES: tuple[str, ...] = tuple(r.label for r in _ROUTES if r.handler is not None)
