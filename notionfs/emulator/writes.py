"""The emulated Notion API's writes: pages, blocks, file uploads, with their fault switches."""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from notionfs.emulator.api import (
    ApiFailure,
    Call,
    NotionApi,
    PageSlice,
    _list_body,
    _match,
    _page_args,
)
from notionfs.emulator.faults import WRITE_ROUTES, retry_after_header
from notionfs.emulator.index import WorkspaceIndex, dashed_id, id_key
from notionfs.emulator.model import Block, Database, DataSource, FileSpec, Node, Page, rich_text
from notionfs.emulator.render import (
    V2022,
    V2026,
    Json,
    RenderContext,
    bot_user_id,
    page_title,
    render_block,
    render_page,
)
from notionfs.emulator.uploads import STATUSES, UploadStore, minute, not_found

__all__ = ["WritableApi", "MUTATING_ROUTES", "workspace_id"]

# Routes that change the workspace model: they run alone (readers wait), then re-index.
MUTATING_ROUTES = frozenset(
    {
        "POST /v1/pages",
        "PATCH /v1/pages/{id}",
        "POST /v1/pages/{id}/move",
        "PATCH /v1/blocks/{id}",
        "DELETE /v1/blocks/{id}",
        "PATCH /v1/blocks/{id}/children",
    }
)
MAX_CHILDREN = 100  # blocks per append or page create
MAX_NESTING = 2  # levels of nested children below the appended blocks, per request
MAX_TEXT_CHARS = 2000  # one rich text run's content
FILE_KINDS = ("image", "video", "audio", "file", "pdf")
TEXT_KINDS = (
    "paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item",
    "numbered_list_item", "to_do", "toggle", "quote", "callout", "code",
)
_EMPTY_KINDS = ("divider", "breadcrumb", "table_of_contents")
# What each file block can show (Notion's block types for uploaded files).
_KIND_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/",),
    "pdf": ("application/pdf",),
}
_ARCHIVED = "Can't edit block that is archived. You must unarchive the block before editing."
_NOT_SHARED = "Make sure the relevant pages and databases are shared with your integration."
_REMOTE_TEXT = "Edited by someone else."
_MISSING = object()

_local = threading.local()  # per request thread: whether to drop the connection unanswered

F = TypeVar("F", bound=Callable[..., Json])


def workspace_id(api: NotionApi) -> str:
    """The emulated workspace's id, stable per workspace seed."""
    seed = api.index.workspace.seed
    return str(uuid.uuid5(uuid.UUID("a9d4b4f2-6f0e-4f53-9a0e-1c2b3d4e5f60"), f"{seed}/workspace"))


def _validation(message: str) -> ApiFailure:
    return ApiFailure(400, "validation_error", message)


def _new_id() -> str:
    return str(uuid.uuid4())


class _ReadWriteLock:
    """Many readers or one writer: a write changes model objects that reads render."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._writing = True  # new readers wait from here on, so a writer is not starved
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _write_route(label: str) -> Callable[[F], F]:
    """Gate a write handler: capability, the write fault switches, and remote edits."""
    assert label in WRITE_ROUTES

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def run(self: WritableApi, call: Call) -> Json:
            if self.read_only:
                raise ApiFailure(
                    403, "restricted_resource", "Insufficient permissions for this endpoint."
                )
            switches = self.faults.writes
            status = switches.take_status(label)
            if status is not None:
                failure = ApiFailure.for_status(status)
                if status == 429:
                    failure.headers["Retry-After"] = retry_after_header(self.faults.retry_after_s)
                raise failure
            if label in MUTATING_ROUTES:
                for object_id in switches.take_remote_edits():
                    self._remote_edit_locked(object_id, None, None, None)
            result = handler(self, call)
            if switches.take_cut(label):
                _local.cut = True
            return result

        return run  # type: ignore[return-value]

    return decorate


class WritableApi(NotionApi):
    """The Notion API with an integration that may insert and update content.

    ``reindex`` rebuilds the workspace index (and registers new files with the file host)
    after each write; ``uploads`` holds the file uploads. ``read_only`` turns the writes
    back into 403, as for an integration with the read-content capability only.
    """

    def __init__(
        self,
        index: WorkspaceIndex,
        *,
        reindex: Callable[[], WorkspaceIndex],
        uploads: UploadStore,
        read_only: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(index, **options)
        self._reindex = reindex
        self.uploads = uploads
        self.read_only = read_only
        self._rw = _ReadWriteLock()

    # ---- request plumbing --------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Any:
        _local.cut = False
        route, _ = _match(method.upper(), target.partition("?")[0])
        exclusive = route is not None and route.label in MUTATING_ROUTES
        with self._rw.write() if exclusive else self._rw.read():
            return super().handle(method, target, headers, raw_body)

    @staticmethod
    def take_cut() -> bool:
        """Whether the request just handled on this thread must go unanswered (the
        connection is dropped after the write was applied)."""
        cut = bool(getattr(_local, "cut", False))
        _local.cut = False
        return cut

    def refresh(self) -> None:
        """Re-index after a test changed the workspace model (waits for running requests)."""
        with self._rw.write():
            self.index = self._reindex()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The model as no write is half applied: writes wait, reads go on."""
        with self._rw.read():
            yield

    @contextmanager
    def editing(self) -> Iterator[None]:
        """A test's changes to the model inside run alone (requests wait), then re-index."""
        with self._rw.write():
            yield
            self.index = self._reindex()

    def _commit(self, call: Call) -> RenderContext:
        """Re-index after a write; the context to render the answer with."""
        self.index = self._reindex()
        return dataclasses.replace(call.ctx, index=self.index)

    def now(self) -> datetime:
        return minute(self.uploads.now())

    # ---- users/me: the workspace and its upload limit --------------------------------------

    # Notion's 2026 answers tell the bot's workspace and upload limit wherever the bot user
    # appears (users/me, users/{id}, the users list); its 2022-06-28 answers did not.
    def _users_me(self, call: Call) -> Json:
        return self._with_workspace(super()._users_me(call), call)

    def _users_get(self, call: Call) -> Json:
        return self._with_workspace(super()._users_get(call), call)

    def _users_list(self, call: Call) -> Json:
        body = super()._users_list(call)
        results = [self._with_workspace(user, call) for user in body.get("results", [])]
        return {**body, "results": results}

    def _with_workspace(self, user: Json, call: Call) -> Json:
        if user.get("type") != "bot" or call.version == V2022:
            return user
        bot = dict(user.get("bot") or {})
        bot["workspace_id"] = workspace_id(self)
        bot["workspace_limits"] = {"max_file_upload_size_in_bytes": self.uploads.max_file_bytes}
        return {**user, "bot": bot}

    # ---- file uploads ------------------------------------------------------------------------

    def _render_upload(self, call: Call, upload: Any, with_request_id: bool = True) -> Json:
        body = self.uploads.render(
            upload,
            base_url=self.base_url,
            bot_id=bot_user_id(self.index.workspace),
            archived=call.version < V2026,
        )
        if with_request_id:
            body["request_id"] = call.request_id
        return body

    @_write_route("POST /v1/file_uploads")
    def create_upload(self, call: Call) -> Json:
        upload = self.uploads.create(call.body)
        answer = self._render_upload(call, upload)
        if upload.mode == "external_url":
            self.uploads.run_import(upload)  # answered pending; later reads tell the outcome
        return answer

    def get_upload(self, call: Call) -> Json:
        raw = call.params[0]
        if id_key(raw) is None:
            raise _validation(
                f'path failed validation: path.file_upload_id should be a valid uuid, instead '
                f'was `"{raw}"`.'
            )
        upload = self.uploads.get(raw)
        if upload is None:
            raise not_found(raw)
        return self._render_upload(call, upload)

    def list_uploads(self, call: Call) -> Json:
        status = call.query.get("status")
        if status is not None and status not in STATUSES:
            raise _validation(
                "query failed validation: query.status should be one of "
                f"{', '.join(repr(s).replace(chr(39), chr(96)) for s in STATUSES)}, "
                f"instead was `{status}`."
            )
        page_size, cursor = _page_args(call.query, "query")
        uploads = [u for u in self.uploads.all() if status is None or u.status == status]
        start = 0
        if cursor is not None:
            start = next(
                (i for i, u in enumerate(uploads) if id_key(u.id) == id_key(cursor)), -1
            )
            if start < 0:
                raise _validation(f"The start_cursor provided is invalid: {cursor}")
        chosen = uploads[start : start + page_size]
        has_more = start + page_size < len(uploads)
        # Notion's cursor here is the id of the first upload of the next page.
        next_cursor = dashed_id(uploads[start + page_size].id) if has_more else None
        results = [self._render_upload(call, u, with_request_id=False) for u in chosen]
        return _list_body(
            "file_upload", results, PageSlice(chosen, next_cursor, has_more), call.request_id
        )

    @_write_route("POST /v1/file_uploads/{id}/send")
    def send_upload(self, call: Call) -> Json:
        upload = self.uploads.send(
            call.params[0],
            call.headers.get("content-type", ""),
            call.raw_body,
            self.faults.writes.take_part_failure,
        )
        return self._render_upload(call, upload)

    @_write_route("POST /v1/file_uploads/{id}/complete")
    def complete_upload(self, call: Call) -> Json:
        return self._render_upload(call, self.uploads.complete(call.params[0]))

    # ---- blocks ------------------------------------------------------------------------------

    @_write_route("PATCH /v1/blocks/{id}/children")
    def append_children(self, call: Call) -> Json:
        target = self._require(call, "block", (Block, Page), "block_id")
        parent = target.obj
        assert isinstance(parent, (Block, Page))
        if target.trashed:
            raise _validation(_ARCHIVED)
        raw = call.body.get("children")
        if not isinstance(raw, list):
            raise _validation(
                "body failed validation: body.children should be an array, instead was "
                f"`{_show(raw)}`."
            )
        siblings = parent.children
        index, whole_list = self._insert_position(call, siblings)
        pending: list[Callable[[], None]] = []
        nodes = self._build_blocks(raw, "body.children", 0, pending)
        self._attach_all(pending)
        now = self.now()
        for node in nodes:
            _stamp(node, now)
        siblings[index:index] = nodes
        self._touch(parent, now)
        ctx = self._commit(call)
        # Notion answers the new blocks; with position "start" it answers the whole child
        # list instead, the new blocks first (as clients of the API have observed).
        shown = self.index.children(parent) if whole_list else nodes
        results = [render_block(node, ctx) for node in shown]
        return _list_body(
            "block", results, PageSlice(shown, None, False), call.request_id
        )

    def _insert_position(self, call: Call, siblings: list[Node]) -> tuple[int, bool]:
        """Where appended blocks go: (index in ``siblings``, answer with the whole list)."""
        after = call.body.get("after", _MISSING)
        position = call.body.get("position", _MISSING)
        if after is not _MISSING and call.version >= V2026:
            raise _validation(
                "body failed validation: body.after should be not present, instead was "
                f"`{_show(after)}`. Use body.position."
            )
        if after is not _MISSING and position is not _MISSING:
            raise _validation("body failed validation: only one of body.after and body.position "
                              "may be given.")
        if after is not _MISSING:
            return self._after_index(after, siblings, "body.after"), False
        if position is _MISSING or position is None:
            return len(siblings), False
        kind = position.get("type") if isinstance(position, dict) else None
        if kind == "end":
            return len(siblings), False
        if kind == "start":
            return 0, True
        if kind == "after_block":
            ref = position.get("after_block")
            block_id = ref.get("id") if isinstance(ref, dict) else None
            return self._after_index(block_id, siblings, "body.position.after_block.id"), False
        raise _validation(
            "body failed validation: body.position.type should be `\"after_block\"`, "
            f"`\"start\"`, or `\"end\"`, instead was `{_show(kind)}`."
        )

    @staticmethod
    def _after_index(block_id: Any, siblings: list[Node], where: str) -> int:
        key = id_key(block_id) if isinstance(block_id, str) else None
        if key is None:
            raise _validation(
                f"body failed validation: {where} should be a valid uuid, instead was "
                f"`{_show(block_id)}`."
            )
        for i, node in enumerate(siblings):
            if id_key(node.id) == key and not node.in_trash:
                return i + 1
        raise _validation(
            f"Block {dashed_id(block_id)} given in {where} is not a child of the parent block."
        )

    @_write_route("PATCH /v1/blocks/{id}")
    def update_block(self, call: Call) -> Json:
        entry = self._require(call, "block", (Block, Page, Database), "block_id")
        node = entry.obj
        assert isinstance(node, (Block, Page, Database))
        trash = _trash_flag(call.body, call.version)
        edits = {k: v for k, v in call.body.items() if k not in ("archived", "in_trash", "type")}
        if entry.trashed and trash is not False:
            raise _validation(_ARCHIVED)
        now = self.now()
        if edits:
            if not isinstance(node, Block):
                kind = "child_page" if isinstance(node, Page) else "child_database"
                raise _validation(
                    f"body failed validation: only body.archived and body.in_trash may be "
                    f"given for a {kind} block; update it with the pages or databases API."
                )
            self._edit_block(node, edits)
        if trash is not None:
            node.in_trash = trash
        self._touch(node, now)
        return self._block_answer(node, call)

    def _edit_block(self, block: Block, edits: dict[str, Any]) -> None:
        extra = [key for key in edits if key != block.type]
        if extra:
            raise _validation(
                f"body failed validation: body.{extra[0]} should be not present for a block of "
                f"type `{block.type}`."
            )
        raw = edits[block.type]
        if not isinstance(raw, dict):
            raise _validation(f"body failed validation: body.{block.type} should be an object.")
        where = f"body.{block.type}"
        if block.type in FILE_KINDS:
            pending: list[Callable[[], None]] = []
            payload, spec = self._file_parts(block.type, raw, where, pending, required=False)
            self._attach_all(pending)
            if "caption" in raw:
                block.payload["caption"] = payload["caption"]
            if spec is not None:
                block.file = spec.value
            elif "name" in raw and block.file is not None:
                block.file = _renamed(block.file, raw["name"], where)
            return
        if block.type in TEXT_KINDS:
            merged = {**_text_payload(block.type, {**_plain_payload(block), **raw}, where)}
            block.payload.update(merged)
            return
        raise _validation(f"The emulator cannot update blocks of type `{block.type}`.")

    @_write_route("DELETE /v1/blocks/{id}")
    def delete_block(self, call: Call) -> Json:
        entry = self._require(call, "block", (Block, Page, Database), "block_id")
        node = entry.obj
        assert isinstance(node, (Block, Page, Database))
        if entry.trashed:
            raise _validation(_ARCHIVED)
        node.in_trash = True
        self._touch(node, self.now())
        return self._block_answer(node, call)

    def _block_answer(self, node: Block | Page | Database, call: Call) -> Json:
        ctx = self._commit(call)
        return {**render_block(node, ctx), "request_id": call.request_id}

    # ---- pages -------------------------------------------------------------------------------

    @_write_route("POST /v1/pages")
    def create_page(self, call: Call) -> Json:
        body = call.body
        container = self._page_parent(body.get("parent"), call, "body.parent")
        pending: list[Callable[[], None]] = []
        page = Page(title="", id=_new_id())
        props = body.get("properties", {})
        if not isinstance(props, dict):
            raise _validation("body failed validation: body.properties should be an object.")
        self._apply_properties(page, container if isinstance(container, DataSource) else None,
                               props, pending)
        raw_children = body.get("children", [])
        if not isinstance(raw_children, list):
            raise _validation("body failed validation: body.children should be an array.")
        page.children = self._build_blocks(raw_children, "body.children", 0, pending)
        for key in ("icon", "cover"):
            if body.get(key) is not None:
                self._set_visual(page, key, body[key], pending)
        siblings = self._members(container)
        index = len(siblings)
        position = body.get("position")
        if position is not None:
            if not isinstance(container, Page):
                raise _validation("body failed validation: body.position is only allowed when "
                                  "the parent is a page.")
            index = self._page_position(position, siblings)
        self._attach_all(pending)
        now = self.now()
        _stamp(page, now)
        siblings.insert(index, page)
        self._touch(container, now)
        ctx = self._commit(call)
        return {**render_page(page, ctx), "request_id": call.request_id}

    def _page_position(self, position: Any, siblings: list[Node]) -> int:
        kind = position.get("type") if isinstance(position, dict) else None
        if kind == "page_start":
            return 0
        if kind == "page_end":
            return len(siblings)
        if kind == "after_block":
            ref = position.get("after_block")
            block_id = ref.get("id") if isinstance(ref, dict) else None
            return self._after_index(block_id, siblings, "body.position.after_block.id")
        raise _validation(
            "body failed validation: body.position.type should be `\"after_block\"`, "
            f"`\"page_start\"`, or `\"page_end\"`, instead was `{_show(kind)}`."
        )

    @_write_route("PATCH /v1/pages/{id}")
    def update_page(self, call: Call) -> Json:
        entry = self._require(call, "page", (Page,), "page_id")
        page = entry.obj
        assert isinstance(page, Page)
        body = call.body
        trash = _trash_flag(body, call.version)
        if entry.trashed and trash is not False:
            raise _validation(_ARCHIVED)
        pending: list[Callable[[], None]] = []
        props = body.get("properties")
        if props is not None:
            if not isinstance(props, dict):
                raise _validation("body failed validation: body.properties should be an object.")
            self._apply_properties(page, self.index.data_source_of(page), props, pending)
        for key in ("icon", "cover"):
            if key in body:
                self._set_visual(page, key, body[key], pending)
        self._attach_all(pending)
        if trash is not None:
            page.in_trash = trash
        self._touch(page, self.now())
        ctx = self._commit(call)
        return {**render_page(page, ctx), "request_id": call.request_id}

    @_write_route("POST /v1/pages/{id}/move")
    def move_page(self, call: Call) -> Json:
        entry = self._require(call, "page", (Page,), "page_id")
        page = entry.obj
        assert isinstance(page, Page)
        if entry.trashed:
            raise _validation(_ARCHIVED)
        target = self._page_parent(call.body.get("parent"), call, "body.parent", move=True)
        walker: Any = target
        while walker is not None:
            if walker is page:
                raise _validation("A page cannot be moved into itself or one of its descendants.")
            walker = self.index.entry_of(walker).parent
        old_parent = entry.parent
        old_ds = old_parent if isinstance(old_parent, DataSource) else None
        page.title = page_title(page, old_ds)  # the title survives leaving a data source
        old_list = self._members(old_parent)
        old_list[:] = [node for node in old_list if node is not page]
        self._members(target).append(page)
        now = self.now()
        for touched in (page, old_parent, target):
            if touched is not None:
                self._touch(touched, now)
        ctx = self._commit(call)
        return {**render_page(page, ctx), "request_id": call.request_id}

    def _page_parent(
        self, raw: Any, call: Call, where: str, move: bool = False
    ) -> Page | DataSource:
        """The page or data source a new (or moved) page goes into."""
        if not isinstance(raw, dict):
            raise _validation(f"body failed validation: {where} should be an object, instead "
                              f"was `{_show(raw)}`.")
        kinds = [k for k in ("page_id", "database_id", "data_source_id", "workspace", "block_id")
                 if k in raw]
        if not kinds:
            raise _validation(
                f"body failed validation: {where} should have one of page_id, database_id or "
                "data_source_id."
            )
        kind: str = raw["type"] if raw.get("type") in kinds else kinds[0]
        if kind == "workspace":
            raise _validation(
                "Internal integrations cannot create or move pages to the workspace level: "
                "give a page or data source parent."
            )
        if kind == "block_id" or (move and kind == "database_id"):
            raise _validation(f"body failed validation: {where}.{kind} is not a valid parent "
                              "for this request.")
        if kind == "data_source_id" and call.version == V2022:
            raise _validation(f"body failed validation: {where}.data_source_id is not supported "
                              f"in Notion-Version {V2022}.")
        object_id = raw.get(kind)
        noun = {"page_id": "page", "database_id": "database", "data_source_id": "data_source"}
        entry = self.index.get(object_id) if isinstance(object_id, str) else None
        if entry is None or not self.index.visible(entry):
            raise ApiFailure(
                404,
                "object_not_found",
                f"Could not find {noun[kind]} with ID: {dashed_id(str(object_id))}. {_NOT_SHARED}",
            )
        obj = entry.obj
        if entry.trashed:
            raise _validation(_ARCHIVED)
        if isinstance(obj, Database) and kind in ("database_id", "page_id"):
            if len(obj.data_sources) > 1:
                raise _validation(
                    "Databases with multiple data sources cannot be a parent by database_id; "
                    "give one data source's data_source_id."
                )
            return obj.data_sources[0]
        if kind == "page_id" and isinstance(obj, Page):
            return obj
        if kind == "data_source_id" and isinstance(obj, DataSource):
            return obj
        raise ApiFailure(
            404,
            "object_not_found",
            f"Could not find {noun[kind]} with ID: {dashed_id(str(object_id))}. {_NOT_SHARED}",
        )

    def _members(self, container: Any) -> list[Any]:
        """The list a page or block sits in: its parent's children or its data source's rows."""
        if container is None:
            return self.index.workspace.pages
        if isinstance(container, DataSource):
            return container.rows
        assert isinstance(container, (Page, Block))
        return container.children

    # ---- properties, icons and covers ---------------------------------------------------------

    def _apply_properties(
        self,
        page: Page,
        ds: DataSource | None,
        props: dict[str, Any],
        pending: list[Callable[[], None]],
    ) -> None:
        schema = ds.properties if ds is not None else {"title": "title"}
        for key, raw in props.items():
            name = _schema_name(schema, key)
            if name is None:
                raise _validation(f"{key} is not a property that exists.")
            kind = schema[name]
            where = f"body.properties.{key}"
            value = _property_input(kind, raw, where)
            if kind == "title":
                runs = _rich_text(value, f"{where}.title")
                page.title = "".join(run["plain_text"] for run in runs)
                if ds is not None:
                    page.properties[name] = runs
            elif kind == "files":
                page.properties[name] = self._files_value(value, where, pending)
            else:
                page.properties[name] = _plain_property(kind, value, where)

    def _files_value(
        self, raw: Any, where: str, pending: list[Callable[[], None]]
    ) -> list[FileSpec]:
        if not isinstance(raw, list):
            raise _validation(f"body failed validation: {where}.files should be an array.")
        specs: list[FileSpec] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise _validation(f"body failed validation: {where}.files[{i}] should be an "
                                  "object.")
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise _validation(f"body failed validation: {where}.files[{i}].name should be a "
                                  "string.")
            # Notion's request types: a hosted or external entry needs its name; only a
            # file_upload may leave it out (it then takes the upload's filename).
            source = entry.get("type") or next(
                (k for k in ("file_upload", "external", "file") if k in entry), None)
            if name is None and source in ("file", "external"):
                raise _validation(f"body failed validation: {where}.files[{i}].name should be "
                                  "defined, instead was `undefined`.")
            slot = _Slot(i, specs)
            specs.append(FileSpec(name="(pending)"))
            self._file_source(entry, f"{where}.files[{i}]", None, name, pending, slot.put)
        return specs

    def _set_visual(
        self, page: Page, key: str, raw: Any, pending: list[Callable[[], None]]
    ) -> None:
        where = f"body.{key}"
        if raw is None:
            setattr(page, key, None)
            return
        if not isinstance(raw, dict):
            raise _validation(f"body failed validation: {where} should be an object or null.")
        if key == "icon" and (raw.get("type") == "emoji" or "emoji" in raw):
            emoji = raw.get("emoji")
            if not isinstance(emoji, str) or not emoji:
                raise _validation(f"body failed validation: {where}.emoji should be a string.")
            page.icon = emoji
            return

        def put(spec: FileSpec) -> None:
            setattr(page, key, spec)

        self._file_source(raw, where, "image", None, pending, put)

    # ---- building blocks from request JSON ---------------------------------------------------

    def _build_blocks(
        self, raw: list[Any], where: str, depth: int, pending: list[Callable[[], None]]
    ) -> list[Node]:
        if len(raw) > MAX_CHILDREN:
            raise _validation(
                f"body failed validation: {where}.length should be ≤ `{MAX_CHILDREN}`, instead "
                f"was `{len(raw)}`."
            )
        return [self._build_block(item, f"{where}[{i}]", depth, pending)
                for i, item in enumerate(raw)]

    def _build_block(
        self, raw: Any, where: str, depth: int, pending: list[Callable[[], None]]
    ) -> Block:
        if not isinstance(raw, dict):
            raise _validation(f"body failed validation: {where} should be an object.")
        kind = raw.get("type")
        if kind is None:
            known = [k for k in (*TEXT_KINDS, *FILE_KINDS, *_EMPTY_KINDS) if k in raw]
            kind = known[0] if len(known) == 1 else None
        payload_raw = raw.get(kind) if isinstance(kind, str) else None
        if not isinstance(kind, str) or not isinstance(payload_raw, dict):
            raise _validation(
                f"body failed validation: {where} should be a block object with its type's "
                "content, e.g. `{\"paragraph\": {\"rich_text\": [...]}}`."
            )
        block = Block(kind, id=_new_id())
        inner = f"{where}.{kind}"
        if kind in FILE_KINDS:
            payload, spec = self._file_parts(kind, payload_raw, inner, pending, required=True)
            block.payload = payload
            assert spec is not None
            spec.target = block
        elif kind in TEXT_KINDS:
            block.payload = _text_payload(kind, payload_raw, inner)
        elif kind in _EMPTY_KINDS:
            block.payload = {"color": "default"} if kind != "divider" else {}
        else:
            raise _validation(f"The emulator cannot create blocks of type `{kind}`.")
        children = payload_raw.get("children", raw.get("children"))
        if children is not None:
            if depth >= MAX_NESTING:
                raise _validation(
                    f"body failed validation: {inner}.children should be not present: at most "
                    f"{MAX_NESTING} levels of nested children per request."
                )
            if kind not in ("paragraph", "toggle", "bulleted_list_item", "numbered_list_item",
                            "to_do", "quote", "callout", "heading_1", "heading_2", "heading_3"):
                raise _validation(f"Blocks of type `{kind}` cannot have children.")
            if not isinstance(children, list):
                raise _validation(f"body failed validation: {inner}.children should be an array.")
            block.children = list(self._build_blocks(children, f"{inner}.children", depth + 1,
                                                     pending))
        return block

    def _file_parts(
        self,
        kind: str,
        raw: dict[str, Any],
        where: str,
        pending: list[Callable[[], None]],
        *,
        required: bool,
    ) -> tuple[Json, _BlockFile | None]:
        """A file block's caption and (unless only its caption or name change) its file."""
        payload: Json = {"caption": _rich_text(raw.get("caption", []), f"{where}.caption")}
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise _validation(f"body failed validation: {where}.name should be a string.")
        has_file = any(k in raw for k in ("file_upload", "external", "file")) or "type" in raw
        if not has_file:
            if required:
                raise _validation(
                    f"body failed validation: {where} should have a file_upload or external "
                    "file."
                )
            return payload, None
        holder = _BlockFile()
        self._file_source(raw, where, kind, name, pending, holder.put)
        return payload, holder

    def _file_source(
        self,
        raw: dict[str, Any],
        where: str,
        kind: str | None,
        name: str | None,
        pending: list[Callable[[], None]],
        put: Callable[[FileSpec], None],
    ) -> None:
        """Check one file object of a request; queue its attachment into ``put``."""
        source = raw.get("type")
        if source is None:
            source = next((k for k in ("file_upload", "external", "file") if k in raw), None)
        detail = raw.get(source) if isinstance(source, str) else None
        if source not in ("file_upload", "external", "file") or not isinstance(detail, dict):
            raise _validation(
                f"body failed validation: {where}.type should be `\"file_upload\"` or "
                f"`\"external\"`, instead was `{_show(source)}`."
            )
        if source == "file_upload":
            upload_id = detail.get("id")
            self._check_upload_for(kind, upload_id, where)
            pending.append(lambda: put(self.uploads.attach(upload_id, name)))
            return
        url = detail.get("url")
        existing = self._hosted_file(url)
        if existing is None:
            raise _validation(
                f"body failed validation: {where}.{source}.url: the emulator only accepts file "
                "uploads and URLs of files it hosts."
            )
        pending.append(lambda: put(existing if name in (None, existing.name)
                                   else _renamed(existing, name, where)))

    def _check_upload_for(self, kind: str | None, upload_id: Any, where: str) -> None:
        """Refuse, before anything is applied, an upload that cannot go into ``kind``."""
        upload = self.uploads.get(upload_id) if isinstance(upload_id, str) else None
        if upload is None or upload.status != "uploaded":
            self.uploads.attach(upload_id)  # raises Notion's validation error for it
            return
        wanted = _KIND_TYPES.get(kind or "")
        content_type = upload.content_type or ""
        if wanted is not None and not content_type.startswith(wanted):
            raise _validation(
                f"body failed validation: {where}: the file upload {dashed_id(upload.id)} has "
                f"content type `{content_type}`, which a `{kind}` block cannot show."
            )

    def _hosted_file(self, url: Any) -> FileSpec | None:
        """The file a URL of this emulator's file host serves (signed or external)."""
        if not isinstance(url, str):
            return None
        segments = urlsplit(url).path.split("/")
        if len(segments) != 4:
            return None
        return self.index.file(unquote(segments[2]))

    @staticmethod
    def _attach_all(pending: list[Callable[[], None]]) -> None:
        for attach in pending:
            attach()

    # ---- times and remote edits --------------------------------------------------------------

    def _touch(self, obj: Any, now: datetime) -> None:
        """A write edits ``obj`` and, as Notion shows it, the page or database holding it."""
        if obj is None:
            return
        targets: list[Any] = [obj]
        if isinstance(obj, DataSource):
            targets = [self.index.database_of(obj)]
        elif isinstance(obj, Block):
            try:
                targets.append(self.index.entry_of(obj).owner)
            except KeyError:
                pass
        for target in targets:
            if hasattr(target, "last_edited_time"):
                target.last_edited_time = now

    def remote_edit(
        self,
        object_id: str,
        *,
        data: bytes | None = None,
        title: str | None = None,
        text: str | None = None,
    ) -> None:
        """Edit a page or block as another person would, now: a file block gets new bytes
        (``data``, or its old bytes plus a line), a text block new text, a page a new title
        or a new paragraph; last_edited_time moves at least a minute on (it has minute
        precision), on the object and on its page."""
        with self._rw.write():
            self._remote_edit_locked(object_id, data, title, text)

    def _remote_edit_locked(
        self, object_id: str, data: bytes | None, title: str | None, text: str | None
    ) -> None:
        entry = self.index.get(object_id)
        if entry is None:
            raise KeyError(object_id)
        obj = entry.obj
        for edited in (obj, entry.owner):
            self.feed.stage(edited)  # search shows the edit after its lag (see feed.py)
        if isinstance(obj, Block) and obj.file is not None:
            old = obj.file
            obj.file = FileSpec(
                name=old.name,
                data=data if data is not None else old.read() + b"\n" + _REMOTE_TEXT.encode(),
                content_type=old.content_type,
                id=_new_id(),
            )
        elif isinstance(obj, Block) and "rich_text" in obj.payload:
            obj.payload["rich_text"] = rich_text(text or _REMOTE_TEXT)
        elif isinstance(obj, Page):
            ds = self.index.data_source_of(obj)
            if title is not None:
                obj.title = title
                name = next((n for n, k in (ds.properties if ds else {}).items()
                             if k == "title"), None)
                if name is not None:
                    obj.properties[name] = title
            else:
                obj.children.append(
                    Block("paragraph", {"rich_text": rich_text(text or _REMOTE_TEXT),
                                        "icon": None, "color": "default"}, id=_new_id())
                )
        else:
            raise ValueError(f"cannot edit {type(obj).__name__} {object_id} remotely")
        for target in {id(t): t for t in (obj, entry.owner)}.values():
            before = target.last_edited_time
            later = before + timedelta(minutes=1) if before is not None else self.now()
            target.last_edited_time = max(self.now(), minute(later))
        for node in getattr(obj, "children", []):
            if getattr(node, "created_time", None) is None:
                _stamp(node, self.now())
        self.index = self._reindex()


# ---- helpers ------------------------------------------------------------------------------


class _BlockFile:
    """The file a new or edited file block will get once its upload is attached."""

    def __init__(self) -> None:
        self.value: FileSpec | None = None
        self.target: Block | None = None

    def put(self, spec: FileSpec) -> None:
        self.value = spec
        if self.target is not None:
            self.target.file = spec


class _Slot:
    def __init__(self, index: int, specs: list[FileSpec]) -> None:
        self.index = index
        self.specs = specs

    def put(self, spec: FileSpec) -> None:
        self.specs[self.index] = spec


def _stamp(node: Any, now: datetime) -> None:
    """Give a new node (and its new children) its creation and edit times and an id."""
    if not node.id:
        node.id = _new_id()
    if getattr(node, "created_time", None) is None:
        node.created_time = now
    node.last_edited_time = now
    for child in getattr(node, "children", []):
        if getattr(child, "created_time", None) is None:
            _stamp(child, now)


def _renamed(spec: FileSpec, name: Any, where: str) -> FileSpec:
    if not isinstance(name, str) or not name:
        raise _validation(f"body failed validation: {where}.name should be a non-empty string.")
    return dataclasses.replace(spec, name=name, id=_new_id())


def _show(value: Any) -> str:
    if value is None or value is _MISSING:
        return "undefined"
    return f'"{value}"' if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else str(value)


def _trash_flag(body: Mapping[str, Any], version: str) -> bool | None:
    """The trash state a request asks for (in_trash, or archived before 2026-03-11)."""
    flags: list[Any] = []
    if "in_trash" in body:
        flags.append(body["in_trash"])
    if "archived" in body:
        if version >= V2026:
            raise _validation(
                "body failed validation: body.archived should be not present, instead was "
                f"`{_show(body['archived'])}`. Use body.in_trash."
            )
        flags.append(body["archived"])
    for flag in flags:
        if not isinstance(flag, bool):
            raise _validation("body failed validation: body.in_trash should be a boolean.")
    if len(set(flags)) > 1:
        raise _validation("body.archived and body.in_trash disagree.")
    return flags[0] if flags else None


def _rich_text(raw: Any, where: str) -> list[Json]:
    """Request rich text (runs with ``text.content``) as Notion answers it."""
    if not isinstance(raw, list):
        raise _validation(f"body failed validation: {where} should be an array, instead was "
                          f"`{_show(raw)}`.")
    runs: list[Json] = []
    for i, run in enumerate(raw):
        text = run.get("text") if isinstance(run, dict) else None
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str):
            raise _validation(
                f"body failed validation: {where}[{i}].text.content should be a string (the "
                "emulator writes text runs only)."
            )
        if len(content) > MAX_TEXT_CHARS:
            raise _validation(
                f"body failed validation: {where}[{i}].text.content.length should be ≤ "
                f"`{MAX_TEXT_CHARS}`, instead was `{len(content)}`."
            )
        link = text.get("link") if isinstance(text, dict) else None
        href = link.get("url") if isinstance(link, dict) else None
        annotations = run.get("annotations") if isinstance(run.get("annotations"), dict) else {}
        known = {k: v for k, v in (annotations or {}).items()
                 if k in ("bold", "italic", "strikethrough", "underline", "code", "color")}
        runs += rich_text(content, **known, href=href) if href else rich_text(content, **known)
    return runs


def _plain_payload(block: Block) -> Json:
    """A text block's payload as a request would give it (for partial updates)."""
    return {k: v for k, v in copy.deepcopy(block.payload).items() if k != "rich_text"} | {
        "rich_text": [{"text": {"content": run.get("plain_text", "")},
                       "annotations": run.get("annotations", {})}
                      for run in block.payload.get("rich_text", [])]
    }


def _text_payload(kind: str, raw: dict[str, Any], where: str) -> Json:
    payload: Json = {"rich_text": _rich_text(raw.get("rich_text", []), f"{where}.rich_text")}
    if kind == "paragraph":
        payload["icon"] = None
    if kind.startswith("heading_"):
        payload["is_toggleable"] = bool(raw.get("is_toggleable", False))
    if kind == "to_do":
        payload["checked"] = bool(raw.get("checked", False))
    if kind == "callout":
        payload["icon"] = raw.get("icon") or {"type": "emoji", "emoji": "\U0001f4a1"}
    if kind == "code":
        payload["caption"] = _rich_text(raw.get("caption", []), f"{where}.caption")
        payload["language"] = raw.get("language", "plain text")
        return payload
    payload["color"] = raw.get("color", "default")
    return payload


def _schema_name(schema: dict[str, str], key: str) -> str | None:
    """A property named by name, by id, or as "title" for the title property."""
    from notionfs.emulator.render import property_id

    if key in schema:
        return key
    for name, kind in schema.items():
        if key == property_id(name, kind) or unquote(property_id(name, kind)) == key:
            return name
        if key == "title" and kind == "title":
            return name
    return None


def _property_input(kind: str, raw: Any, where: str) -> Any:
    """The value of a property as a request gives it: {kind: value} or the bare value."""
    if isinstance(raw, dict) and kind in raw:
        given = raw.get("type")
        if given is not None and given != kind:
            raise _validation(f"body failed validation: {where}.type should be `{kind}`.")
        return raw[kind]
    if isinstance(raw, dict) and "type" in raw and raw["type"] != kind:
        raise _validation(f"body failed validation: {where}.type should be `{kind}`, instead was "
                          f"`\"{raw['type']}\"`.")
    if isinstance(raw, list) and kind in ("title", "rich_text", "files", "multi_select"):
        return raw
    if kind in ("number", "checkbox", "url", "email", "phone_number") and not isinstance(raw,
                                                                                         dict):
        return raw
    raise _validation(f"body failed validation: {where}.{kind} should be defined.")


def _plain_property(kind: str, value: Any, where: str) -> Any:
    """A property's request value as the model keeps it."""
    if kind == "rich_text":
        return _rich_text(value, f"{where}.rich_text")
    if kind == "number":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _validation(f"body failed validation: {where}.number should be a number.")
        return value
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise _validation(f"body failed validation: {where}.checkbox should be a boolean.")
        return value
    if kind in ("url", "email", "phone_number"):
        if value is not None and not isinstance(value, str):
            raise _validation(f"body failed validation: {where}.{kind} should be a string.")
        return value
    if kind in ("select", "status"):
        if value is None:
            return None
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str):
            raise _validation(f"body failed validation: {where}.{kind}.name should be a string.")
        return name
    if kind == "multi_select":
        if not isinstance(value, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in value
        ):
            raise _validation(f"body failed validation: {where}.multi_select should be an array "
                              "of {name} options.")
        return [o["name"] for o in value]
    if kind == "date":
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("start"), str):
            raise _validation(f"body failed validation: {where}.date.start should be a string.")
        return {"start": value["start"], "end": value.get("end"),
                "time_zone": value.get("time_zone")}
    raise _validation(f"The emulator cannot write `{kind}` properties ({where}).")
