"""Users: GET /v1/users as Notion answers it, the client's listing, and names in rendered rows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from notionfs.client import NotionClient, user_names
from notionfs.config import Settings
from notionfs.emulator.model import Database, Page, Workspace
from notionfs.emulator.render import person_user_id
from notionfs.emulator.samples import person
from notionfs.emulator.server import Emulator
from notionfs.errors import AuthError
from notionfs.models import Page as PageModel
from notionfs.render import render_csv, row_properties

from .conftest import UUID_DASHED, assert_error

MEMBERS = 130  # more than one page of 100 users


def people_workspace(*, user_capability: bool = True) -> Workspace:
    members = [person(f"Member {i:03d}") for i in range(MEMBERS)]
    rows = [Page(f"Row {i}", properties={"Owners": [members[i]["id"]]}) for i in range(3)]
    rows[0].properties["Owners"] = members  # named here: these are workspace members
    table = Database("Team", properties={"Name": "title", "Owners": "people",
                                         "Author": "created_by"}, rows=rows)
    return Workspace(name="People", pages=[table], user_capability=user_capability)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = Emulator(people_workspace(), token="secret_users")
    yield emulator


def client_for(emulator: Emulator, version: str = "2025-09-03") -> NotionClient:
    settings = Settings(token="secret_users", api_url="http://emulator",
                        notion_version=version, rate_limit_rps=1000.0, rate_limit_burst=1000)
    return NotionClient(settings, httpx.Client(transport=emulator.api_transport()))


def raw(emulator: Emulator, path: str, version: str = "2025-09-03") -> httpx.Response:
    http = httpx.Client(transport=emulator.api_transport(), base_url="http://emulator")
    headers = {"Authorization": "Bearer secret_users", "Notion-Version": version}
    return http.get(path, headers=headers)


def test_users_list_is_a_paginated_list_of_people_then_the_bot(emulator: Emulator) -> None:
    first = raw(emulator, "/v1/users?page_size=100").json()
    assert first["object"] == "list" and first["type"] == "user" and first["user"] == {}
    assert len(first["results"]) == 100 and first["has_more"] is True
    assert UUID_DASHED.fullmatch(first["next_cursor"]) and UUID_DASHED.match(first["request_id"])
    own = first["results"][0]
    assert own["id"] == person_user_id(emulator.workspace) and own["type"] == "person"
    assert own["person"] == {"email": "person@example.com", "email_verified": True}
    rest = raw(emulator, f"/v1/users?start_cursor={first['next_cursor']}").json()
    assert rest["has_more"] is False and rest["next_cursor"] is None
    everyone = first["results"] + rest["results"]
    assert len(everyone) == 1 + MEMBERS + 1
    assert everyone[-1]["type"] == "bot"
    assert len({user["id"] for user in everyone}) == len(everyone)


def test_users_at_2022_carry_no_email_verified(emulator: Emulator) -> None:
    body = raw(emulator, "/v1/users", "2022-06-28").json()
    assert body["results"][0]["person"] == {"email": "person@example.com"}


def test_list_users_follows_cursors(emulator: Emulator) -> None:
    users = list(client_for(emulator).list_users())
    assert len(users) == 1 + MEMBERS + 1
    assert [u.type for u in users].count("bot") == 1
    assert users[1].name == "Member 000"
    assert emulator.counters.by_route["GET /v1/users"] == 2  # 100 per page, 2 pages


def test_user_names_maps_ids_to_names(emulator: Emulator) -> None:
    names = user_names(client_for(emulator))
    assert names[person_user_id(emulator.workspace)] == "Emulated Person"
    assert names[person("Member 007")["id"]] == "Member 007"
    assert "notionfs emulator" in names.values()  # the bot is a user too


def test_without_user_capability_there_are_no_names_and_no_error() -> None:
    emulator = Emulator(people_workspace(user_capability=False), token="secret_users")
    assert_error(raw(emulator, "/v1/users"), 403, "restricted_resource")
    assert_error(raw(emulator, f"/v1/users/{person_user_id(emulator.workspace)}"), 403,
                 "restricted_resource")
    assert raw(emulator, "/v1/users/me").json()["type"] == "bot"  # the bot itself: allowed
    client = client_for(emulator)
    with pytest.raises(AuthError):
        list(client.list_users())
    assert user_names(client) == {}
    # People values are partial users then, as Notion sends them.
    database = emulator.workspace.pages[0]
    assert isinstance(database, Database)
    source = database.data_sources[0]
    rows = list(client.query_rows(client.get_database(database.id), source.id))
    owners = rows[0].raw_properties["Owners"]["people"]
    assert owners and all(set(user) == {"object", "id"} for user in owners)


def test_user_names_lets_other_errors_through() -> None:
    emulator = Emulator(people_workspace(), token="secret_other")
    with pytest.raises(AuthError) as info:
        user_names(client_for(emulator))  # wrong token: 401, a real error
    assert info.value.status == 401


def _rows(client: NotionClient, workspace: Workspace) -> list[PageModel]:
    database = workspace.pages[0]
    assert isinstance(database, Database)
    return list(client.query_rows(client.get_database(database.id), database.data_sources[0].id))


@pytest.mark.parametrize("version", ["2022-06-28", "2025-09-03", "2026-03-11"])
def test_rows_show_user_names_where_known(emulator: Emulator, version: str) -> None:
    client = client_for(emulator, version)
    rows = _rows(client, emulator.workspace)
    me = person_user_id(emulator.workspace)
    # Row 1 names a member only by id (a partial user), and its author is a partial user.
    plain = row_properties(rows[1], fetch=None, title={}.get)
    assert plain["Owners"] == person("Member 001")["id"] and plain["Author"] == me
    names = user_names(client)
    named = row_properties(rows[1], fetch=None, title={}.get, user_name=names.get)
    assert named["Owners"] == "Member 001" and named["Author"] == "Emulated Person"
    table = render_csv(rows, columns=None, fetch=None, title={}.get, user_name=names.get)
    assert me not in table.decode() and "Emulated Person" in table.decode()
