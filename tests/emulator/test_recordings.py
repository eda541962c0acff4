"""Notion's own recorded answers: the product reads every one, and the emulator answers alike.

The recordings (``../shared/notion-recordings``, see its README) are real api.notion.com
traffic at 2022-06-28 (recorded 2024) and 2025-09-03 (recorded 2026). For every recorded call
the emulator can answer, a workspace holding an equivalent object is built, the same call is
made at the same version, and the two answers are compared key path by key path: keys, value
types, and values, where ids, times, request ids and the ids inside URLs and messages count by
their shape (a UUID, a time with milliseconds and "Z", ...). What still differs is listed
in ``ACCEPTED`` with its reason; any other difference fails, and so does an entry that no
longer matches anything (the table only shrinks).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.emulator.model import Block, Database, DataSource, Page, Workspace
from notionfs.emulator.render import bot_user_id, person_user_id
from notionfs.emulator.server import Emulator
from notionfs.errors import ApiError
from notionfs.models import (
    normalize_id,
    parse_block,
    parse_data_source,
    parse_database,
    parse_page,
    parse_user,
)
from notionfs.render.inline import notion_link_id

RECORDINGS = Path(
    os.environ.get("NOTIONFS_RECORDINGS")
    or Path(__file__).resolve().parents[3] / "shared" / "notion-recordings"
)
TOKEN = "secret_recordings"

pytestmark = pytest.mark.skipif(
    not (RECORDINGS / "index.json").exists(),
    reason=f"Notion's recordings are not at {RECORDINGS} (set NOTIONFS_RECORDINGS)",
)


# ---- what is compared, and what still differs ---------------------------------------------

# Routes notionfs reads, whose every recording is compared with the emulator's answer.
COMPARED = frozenset({
    "GET /v1/users/me", "GET /v1/users", "GET /v1/users/{id}", "POST /v1/search",
    "GET /v1/pages/{id}", "GET /v1/pages/{id}/properties/{property_id}",
    "GET /v1/blocks/{id}", "GET /v1/blocks/{id}/children", "GET /v1/databases/{id}",
    "POST /v1/databases/{id}/query", "GET /v1/data_sources/{id}",
    "POST /v1/data_sources/{id}/query", "GET /v1/invalid",
})

# Write routes the emulator is gaining: compare them once it answers them (delete the line
# and teach ``mirror`` the request).
NOT_YET_COMPARED = {
    route: "write route being added to the emulator: not compared yet"
    for route in (
        "POST /v1/pages", "PATCH /v1/pages/{id}", "POST /v1/pages/{id}/move",
        "PATCH /v1/blocks/{id}", "DELETE /v1/blocks/{id}", "PATCH /v1/blocks/{id}/children",
        "POST /v1/file_uploads", "GET /v1/file_uploads", "GET /v1/file_uploads/{id}",
        "POST /v1/file_uploads/{id}/send",
    )
}

# Routes notionfs never calls: the emulator does not answer them.
NOT_EMULATED = frozenset({
    "POST /v1/databases", "PATCH /v1/databases/{id}", "POST /v1/data_sources",
    "PATCH /v1/data_sources/{id}", "GET /v1/data_sources/{id}/templates",
    "GET /v1/comments", "POST /v1/comments", "GET /v1/comments/{id}",
    "PATCH /v1/comments/{id}", "DELETE /v1/comments/{id}", "GET /v1/custom_emojis",
    "GET /v1/pages/{id}/markdown", "PATCH /v1/pages/{id}/markdown",
    "GET /v1/async_tasks/{id}", "GET /v1/views", "POST /v1/views", "GET /v1/views/{id}",
    "PATCH /v1/views/{id}", "DELETE /v1/views/{id}", "POST /v1/views/{id}/queries",
    "GET /v1/views/{id}/queries/{id}", "DELETE /v1/views/{id}/queries/{id}",
})


@dataclass(frozen=True)
class Accepted:
    """A difference that stays: at ``version`` ("*": all), on ``route``, at key paths
    matching ``key`` (fnmatch; list indexes read "[]"), of ``kind``: missing (recorded, not
    emulated), extra (emulated, not recorded), type, value, length or status."""

    version: str
    route: str
    key: str
    kind: str
    reason: str

    def matches(self, diff: Diff) -> bool:
        return (self.version in ("*", diff.version) and self.route == diff.route
                and fnmatch.fnmatchcase(diff.key, self.key) and self.kind == diff.kind)


ACCEPTED = (
    Accepted("2022-06-28", "GET /v1/invalid", "request_id", "extra",
             "Notion left request_id out of this one error in 2024; its 2026 answers carry "
             "one (2025-09-03 recording), and a request id is what support asks for"),
    Accepted("2022-06-28", "POST /v1/databases/{id}/query", "", "status",
             "the emulator refuses query filters (400) rather than answer them wrongly; "
             "notionfs never filters"),
)


# ---- the recordings ---------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    name: str
    method: str
    path: str
    query: str
    version: str
    request_body: Any
    status: int
    body: Any

    @property
    def route(self) -> str:
        return route_of(self.method, self.path)


_ID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def route_of(method: str, path: str) -> str:
    path = re.sub(r"/properties/[^/]+$", "/properties/{property_id}", path)
    path = re.sub(rf"/(?:task_)?{_ID}", "/{id}", path)
    return f"{method} {path}"


def load_recordings() -> list[Recording]:
    if not (RECORDINGS / "index.json").exists():
        return []
    found = []
    for path in sorted(RECORDINGS.glob("*/*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        found.append(Recording(
            name=f"{path.parent.name}/{path.name}", method=raw["method"], path=raw["path"],
            query=raw["query"] or "", version=raw["notion_version"],
            request_body=raw["request_body"], status=raw["status"], body=raw["body"],
        ))
    return found


RECORDED = load_recordings()


def test_every_recording_is_loaded_and_every_route_is_accounted_for() -> None:
    index = json.loads((RECORDINGS / "index.json").read_text(encoding="utf-8"))
    assert len(RECORDED) == len(index["fixtures"]) > 400
    assert {r.version for r in RECORDED} == {"2022-06-28", "2025-09-03"}
    unplaced = {r.route for r in RECORDED} - COMPARED - set(NOT_YET_COMPARED) - NOT_EMULATED
    assert not unplaced, f"recorded routes in no table: {sorted(unplaced)}"


# ---- 1. the product reads every recorded answer ------------------------------------------

PARSERS = {
    "page": parse_page, "database": parse_database, "data_source": parse_data_source,
    "block": parse_block, "user": parse_user,
}
# Objects notionfs has no model for: it never asks for them.
UNMODELLED = frozenset({
    "comment", "file_upload", "view", "view_query", "async_task", "page_markdown",
    "custom_emoji", "property_item",
})


def objects_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object with an ``object`` key, nested ones included."""
    if isinstance(value, dict):
        if isinstance(value.get("object"), str):
            yield value
        for inner in value.values():
            yield from objects_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from objects_in(inner)


def test_the_models_read_every_recorded_object() -> None:
    parsed = skipped = 0
    for rec in RECORDED:
        for obj in objects_in(rec.body):
            kind = obj["object"]
            if kind in ("list", "error"):
                continue  # containers: their items are objects of their own
            if kind in UNMODELLED:
                skipped += 1
                continue
            assert kind in PARSERS, f"{rec.name}: no model and no reason for {kind!r}"
            model = PARSERS[kind](obj)
            assert model.id == normalize_id(obj["id"]), rec.name  # type: ignore[attr-defined]
            if kind == "database" and "properties" in obj:  # 2022-06-28: its own data source
                assert parse_data_source(obj).raw_properties.keys() == obj["properties"].keys()
            parsed += 1
    # Every object is either read or named above; the counts tell a silent drop.
    assert parsed > 1100 and skipped > 100


def test_the_models_keep_what_notion_says() -> None:
    pages = [o for r in RECORDED for o in objects_in(r.body) if o["object"] == "page"]
    assert pages
    for raw in pages:
        page = parse_page(raw)
        title = next(p for p in raw["properties"].values() if p["type"] == "title")["title"]
        assert page.title == "".join(run["plain_text"] for run in title)
        assert page.in_trash is raw["in_trash"] and page.url == raw["url"]
        assert page.is_archived is raw.get("is_archived", False)
        assert page.is_locked is raw.get("is_locked", False)


def _client_over(rec: Recording, *, empty_after_first: bool = True) -> NotionClient:
    """A NotionClient whose every request gets the recorded answer (later pages empty)."""
    served: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        served.append(request)
        if len(served) > 1 and empty_after_first:
            return httpx.Response(200, json={"object": "list", "results": [],
                                             "next_cursor": None, "has_more": False})
        return httpx.Response(rec.status, json=rec.body)

    settings = Settings(token=TOKEN, api_url="https://api.notion.com",
                        notion_version=rec.version, max_retries=0)
    return NotionClient(settings, httpx.Client(transport=httpx.MockTransport(handle)))


def test_the_client_reads_every_recorded_listing_it_asks_for() -> None:
    read = 0
    for rec in RECORDED:
        if rec.status != 200 or rec.route not in COMPARED or rec.body.get("object") != "list":
            continue
        client = _client_over(rec)
        results = rec.body["results"]
        if rec.route == "GET /v1/users":
            got = [u.id for u in client.list_users()]
        elif rec.route == "GET /v1/blocks/{id}/children":
            got = [b.id for b in client.block_children(rec.path.split("/")[3])]
        elif rec.route == "POST /v1/search":
            got = [obj.id for obj in client.search_all()]
        elif rec.route.endswith("/query"):
            got = [row.id for row in client.paginate("POST", rec.path, body={})]
        else:  # a page property's items: their id is the property's
            page_id, property_id = rec.path.split("/")[3:6:2]
            got = [item["id"] for item in client.page_property(page_id, property_id)]
            results = [{**r, "id": normalize_id(r["id"])} for r in results]
        assert got == [normalize_id(r["id"]) for r in results], rec.name
        read += 1
    assert read >= 30


def test_the_client_reports_every_recorded_error_with_notions_code() -> None:
    errors = [r for r in RECORDED if r.status >= 400]
    assert len(errors) >= 20
    for rec in errors:
        client = _client_over(rec, empty_after_first=False)
        with pytest.raises(ApiError) as info:
            list(client.paginate(rec.method, rec.path))
        assert (info.value.status, info.value.code) == (rec.status, rec.body["code"]), rec.name
        assert info.value.message == rec.body["message"]
        assert info.value.request_id == rec.body.get("request_id")


# ---- recorded URLs ------------------------------------------------------------------------


def recorded_urls() -> list[tuple[str, str]]:
    """(url, id it names) of every recorded page, database and data source: a data source's
    url names its database."""
    found = []
    for rec in RECORDED:
        for obj in objects_in(rec.body):
            if obj["object"] in ("page", "database") and obj.get("url"):
                found.append((obj["url"], normalize_id(obj["id"])))
            elif obj["object"] == "data_source" and obj.get("url"):
                found.append((obj["url"], normalize_id(obj["parent"]["database_id"])))
    return found


def test_link_rewriting_recognises_every_recorded_notion_url() -> None:
    urls = recorded_urls()
    modern = [u for u, _ in urls if u.startswith("https://app.notion.com/p/")]
    assert len(modern) >= 120 and any(u.startswith("https://www.notion.so/") for u, _ in urls)
    for url, object_id in urls:
        assert notion_link_id(url) == object_id, url
        for tail in ("?pvs=4", "#" + "b" * 32, "?v=" + "c" * 32, "/"):
            assert notion_link_id(url + tail) == object_id, url + tail
        workspace_url = url.replace("https://www.notion.so/", "https://www.notion.so/acme/")
        assert notion_link_id(workspace_url) == object_id
    assert notion_link_id("https://developers.notion.com/reference/page") is None
    assert notion_link_id("https://example.com/" + "a" * 32) is None


# ---- 2. the emulator answers alike ---------------------------------------------------------


@dataclass
class Mirror:
    """A workspace holding objects equivalent to a recorded answer's, and the request."""

    workspace: Workspace
    path: str
    query: str
    body: Any
    token: str = TOKEN
    ids: dict[str, str] = field(default_factory=dict)  # recorded user id -> emulated one


def _time(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _plain(runs: list[dict[str, Any]]) -> str:
    return "".join(run["plain_text"] for run in runs)


def _icon(raw: dict[str, Any] | None) -> str | None:
    return raw["emoji"] if raw and raw.get("type") == "emoji" else None


class _Builder:
    """Builds emulator objects with the recorded ids, under containers of the recorded
    parents (unshared when search must not find them)."""

    def __init__(self, shared_containers: bool) -> None:
        self.top: list[Page | Database] = []
        self.containers: dict[str, Page] = {}
        self.shared_containers = shared_containers

    def container(self, page_id: str) -> Page:
        key = normalize_id(page_id)
        if key not in self.containers:
            self.containers[key] = Page("Container", id=key, shared=self.shared_containers)
            self.top.append(self.containers[key])
        return self.containers[key]

    def place(self, obj: Page | Database | Block, parent: dict[str, Any]) -> None:
        if parent["type"] == "workspace":
            assert isinstance(obj, (Page, Database))
            self.top.append(obj)
        else:
            assert parent["type"] == "page_id", f"no mirror for parent {parent['type']}"
            self.container(parent["page_id"]).children.append(obj)

    def page(self, raw: dict[str, Any]) -> Page:
        title = next(p for p in raw["properties"].values() if p["type"] == "title")["title"]
        page = Page(_plain(title), id=raw["id"], icon=_icon(raw["icon"]),
                    in_trash=raw["in_trash"], created_time=_time(raw["created_time"]),
                    last_edited_time=_time(raw["last_edited_time"]),
                    is_archived=raw.get("is_archived", False),
                    is_locked=raw.get("is_locked", False))
        self.place(page, raw["parent"])
        return page

    def block(self, raw: dict[str, Any]) -> Block | Page | Database:
        kind = raw["type"]
        times = {"created_time": _time(raw["created_time"]),
                 "last_edited_time": _time(raw["last_edited_time"])}
        node: Block | Page | Database
        if kind == "child_page":
            node = Page(raw[kind]["title"], id=raw["id"], in_trash=raw["in_trash"], **times)
        elif kind == "child_database":
            node = Database(raw[kind]["title"], id=raw["id"], in_trash=raw["in_trash"], **times)
        else:
            assert kind == "paragraph", f"no mirror for a {kind} block"
            payload = {"rich_text": copy.deepcopy(raw[kind]["rich_text"]),
                       "color": raw[kind]["color"]}
            node = Block(kind, payload, id=raw["id"], in_trash=raw["in_trash"], **times)
        if raw["has_children"] and not isinstance(node, Database):
            node.children.append(Block("paragraph", {"rich_text": [], "color": "default"}))
        self.place(node, raw["parent"])
        return node

    def database(self, raw: dict[str, Any]) -> Database:
        if "data_sources" in raw:
            sources = [DataSource(ref["name"], id=ref["id"]) for ref in raw["data_sources"]]
        else:
            sources = [DataSource(_plain(raw["title"]), properties=_schema(raw))]
        database = Database(_plain(raw["title"]), id=raw["id"], data_sources=sources,
                            icon=_icon(raw["icon"]), inline=raw["is_inline"],
                            in_trash=raw["in_trash"], is_locked=raw.get("is_locked", False),
                            created_time=_time(raw["created_time"]),
                            last_edited_time=_time(raw["last_edited_time"]))
        self.place(database, raw["parent"])
        return database

    def data_source(self, raw: dict[str, Any]) -> DataSource:
        source = DataSource(_plain(raw["title"]), id=raw["id"], properties=_schema(raw))
        database = Database(_plain(raw["title"]), id=raw["parent"]["database_id"],
                            data_sources=[source], icon=_icon(raw["icon"]),
                            inline=raw["is_inline"], in_trash=raw["in_trash"],
                            created_time=_time(raw["created_time"]),
                            last_edited_time=_time(raw["last_edited_time"]))
        self.place(database, raw["database_parent"])
        return source

    def any(self, raw: dict[str, Any]) -> object:
        return getattr(self, raw["object"])(raw)


def _schema(raw: dict[str, Any]) -> dict[str, str]:
    return {name: prop["type"] for name, prop in raw["properties"].items()}


def _users_workspace(rec: Recording, workspace: Workspace, ids: dict[str, str]) -> None:
    """The recorded bot and person become the workspace's own."""
    users = rec.body["results"] if rec.body.get("object") == "list" else [rec.body]
    for user in users:
        if user.get("type") == "bot":
            workspace.bot_name = user["name"]
            workspace.name = user["bot"]["workspace_name"]
            ids[user["id"]] = bot_user_id(workspace)
        elif user.get("type") == "person":
            workspace.person_name = user["name"]
            workspace.person_email = user["person"]["email"]
            workspace.person_avatar_url = user["avatar_url"]
            ids[user["id"]] = person_user_id(workspace)


def _integration_name() -> str:
    me = next(r for r in RECORDED if r.route == "GET /v1/users/me")
    return str(me.body["name"])


def mirror(rec: Recording) -> Mirror:
    """The workspace and request that make the emulator answer ``rec``'s call."""
    builder = _Builder(shared_containers=rec.route != "POST /v1/search")
    workspace = Workspace(name="Mirror", bot_name=_integration_name())
    query = dict(parse_qsl(rec.query))
    body = copy.deepcopy(rec.request_body)
    # A recorded cursor names Notion's data: each page is mirrored as a first page instead.
    query.pop("start_cursor", None)
    if isinstance(body, dict):
        body.pop("start_cursor", None)
    ids: dict[str, str] = {}
    answer = rec.body
    if rec.status == 200 and rec.route.startswith("GET /v1/users"):
        _users_workspace(rec, workspace, ids)
    elif rec.status == 200 and answer.get("object") == "list":
        results = answer["results"]
        if rec.route.endswith("/children"):
            parent = builder.container(rec.path.split("/")[3])
            parent.shared = True
            for raw in results:
                builder.block(raw)
            if answer["has_more"]:
                parent.children.append(Block("paragraph", {"rich_text": [], "color": "default"}))
        elif rec.route.endswith("/query"):
            queried = rec.path.split("/")[3]  # a database (2022-06-28) or a data source
            if rec.route.startswith("POST /v1/databases/"):
                builder.top.append(Database("Queried", id=queried))
            else:
                source = DataSource("Queried", id=queried)
                builder.top.append(Database("Queried", data_sources=[source]))
        elif rec.route.startswith("GET /v1/pages/"):
            page_id = rec.path.split("/")[3]
            title = _plain([item["title"] for item in results])
            builder.top.append(Page(title, id=page_id))
        else:  # search
            for raw in results:
                builder.any(raw)
            if answer["has_more"]:
                builder.top.append(Page(f"{(body or {}).get('query', '')} (one more)"))
    elif rec.status == 200:
        builder.any(answer)
    elif rec.status == 401:
        return Mirror(workspace, rec.path, urlencode(query), body, token="secret_wrong")
    workspace.pages = builder.top
    return Mirror(workspace, rec.path, urlencode(query), body, ids=ids)


def emulated(rec: Recording) -> httpx.Response:
    world = mirror(rec)
    # The recordings come from a free workspace (5 MiB uploads, as users/me tells).
    emulator = Emulator(world.workspace, token=TOKEN, short_pages=False, plan="free")
    path = world.path
    for recorded_id, own_id in world.ids.items():
        path = path.replace(recorded_id, own_id)
    headers = {"Authorization": f"Bearer {world.token}", "Notion-Version": rec.version}
    with httpx.Client(transport=emulator.api_transport(), base_url="http://emulator") as http:
        return http.request(rec.method, path + (f"?{world.query}" if world.query else ""),
                            headers=headers, json=world.body)


@dataclass(frozen=True)
class Diff:
    version: str
    route: str
    key: str
    kind: str


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def shape(text: str) -> str:
    """A string with what naturally differs (ids, times) replaced by its form."""
    text = _UUID.sub("{uuid}", text)
    text = _HEX32.sub("{id32}", text)
    return _TIME.sub(lambda m: "{time" + ("." + "f" * len(m[1][1:]) if m[1] else "")
                     + m[2] + "}", text)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def differences(recorded: Any, emulated: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key path, kind) of each difference; list indexes read "[]"."""
    if _kind(recorded) != _kind(emulated):
        yield key, "type"
    elif isinstance(recorded, dict):
        for name in recorded.keys() | emulated.keys():
            inner = f"{key}.{name}" if key else name
            if name not in emulated:
                yield inner, "missing"
            elif name not in recorded:
                yield inner, "extra"
            else:
                yield from differences(recorded[name], emulated[name], inner)
    elif isinstance(recorded, list):
        if len(recorded) != len(emulated):
            yield key, "length"
        for a, b in zip(recorded, emulated, strict=False):
            yield from differences(a, b, key + "[]")
    elif isinstance(recorded, str):
        if shape(recorded) != shape(emulated):
            yield key, "value"
    elif recorded != emulated:
        yield key, "value"


def compare(rec: Recording) -> set[Diff]:
    response = emulated(rec)
    if response.status_code != rec.status:
        return {Diff(rec.version, rec.route, "", "status")}
    return {Diff(rec.version, rec.route, key, kind)
            for key, kind in differences(rec.body, response.json())}


def test_the_emulator_answers_every_compared_call_as_notion() -> None:
    compared = [r for r in RECORDED if r.route in COMPARED]
    assert len(compared) >= 90
    seen: dict[Diff, str] = {}
    for rec in compared:
        for diff in compare(rec):
            seen.setdefault(diff, rec.name)
    unexplained = [f"{d.version} {d.route} {d.key or '(body)'}: {d.kind} ({name})"
                   for d, name in sorted(seen.items(), key=lambda item: repr(item[0]))
                   if not any(a.matches(d) for a in ACCEPTED)]
    assert not unexplained, "the emulator differs from Notion:\n" + "\n".join(unexplained)
    stale = [a for a in ACCEPTED if not any(a.matches(d) for d in seen)]
    assert not stale, f"accepted differences that no longer occur (remove them): {stale}"


def test_the_comparison_sees_a_difference() -> None:
    """The comparison itself: a changed value, a missing key and a wrong type all show."""
    rec = next(r for r in RECORDED if r.route == "GET /v1/pages/{id}" and r.status == 200)
    assert not compare(rec)
    wrong = copy.deepcopy(rec.body)
    wrong["url"] = wrong["url"].replace("/p/", "/q/").replace(".so/", ".so/x/")
    wrong["nothing"] = 1
    wrong["public_url"] = 5
    del wrong["cover"]
    changed = Recording(**{**rec.__dict__, "body": wrong})
    assert {(d.key, d.kind) for d in compare(changed)} == {
        ("url", "value"), ("nothing", "missing"), ("public_url", "type"), ("cover", "extra")}
