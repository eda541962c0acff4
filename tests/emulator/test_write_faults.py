"""Fault switches of the emulator's write routes: errors, cut connections, remote edits."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.emulator.conftest import World, assert_error, children
from tests.emulator.writing import (
    Clock,
    append,
    child_ids,
    create_upload,
    download,
    paragraph,
    parse_time,
    send,
)


def test_fail_next_answers_without_applying(world: World) -> None:
    client = world.client()
    page = world.refs.big_page.id
    before = child_ids(client, page)
    world.emulator.faults.writes.fail_next(503, 429)
    url = f"/v1/blocks/{page}/children"
    assert_error(client.patch(url, json={"children": [paragraph("x")]}), 503,
                 "service_unavailable")
    limited = client.patch(url, json={"children": [paragraph("x")]})
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "1"
    assert child_ids(client, page) == before
    assert client.get(f"/v1/pages/{page}").status_code == 200  # reads untouched
    append(client, page, [paragraph("x")])
    assert len(child_ids(client, page)) == len(before) + 1


def test_fail_next_can_target_one_route(world: World) -> None:
    client = world.client()
    world.emulator.faults.writes.fail_next(500, route="POST /v1/file_uploads/{id}/send")
    upload = create_upload(client, filename="a.txt")
    append(client, world.refs.big_page.id, [paragraph("fine")])
    assert_error(send(client, upload["id"], b"a", "a.txt"), 500, "internal_server_error")
    assert send(client, upload["id"], b"a", "a.txt").status_code == 200
    with pytest.raises(ValueError):
        world.emulator.faults.writes.fail_next(500, route="GET /v1/pages/{id}")


def test_cut_connection_after_the_write_was_applied(world: World) -> None:
    client = world.client()
    page = world.refs.big_page.id
    world.emulator.faults.writes.cut_next(route="PATCH /v1/blocks/{id}/children")
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch(f"/v1/blocks/{page}/children", json={"children": [paragraph("cut")]})
    texts = [b["paragraph"]["rich_text"][0]["plain_text"]
             for b in children(client, page) if b["type"] == "paragraph"]
    assert texts.count("cut") == 1  # applied exactly once, though never answered
    assert world.emulator.counters.calls("PATCH /v1/blocks/{id}/children") == 1
    assert not world.emulator.faults.writes.armed


def test_cut_connection_in_process(world: World) -> None:
    transport = world.emulator.api_transport()
    headers = {"Authorization": "Bearer secret_test_token", "Notion-Version": "2025-09-03"}
    with httpx.Client(transport=transport, base_url="http://notion", headers=headers) as client:
        world.emulator.faults.writes.cut_next()
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v1/file_uploads", json={"filename": "a.txt"})
        listed = client.get("/v1/file_uploads").json()["results"]
        assert [u["filename"] for u in listed] == ["a.txt"]


def test_remote_edit_of_a_file_block(world: World) -> None:
    world.emulator.clock = Clock()
    client = world.client()
    block_id = world.refs.image_block.id
    before = client.get(f"/v1/blocks/{block_id}").json()
    page_before = client.get(f"/v1/pages/{world.refs.home.id}").json()["last_edited_time"]
    world.emulator.remote_edit(block_id, data=b"their version")
    after = client.get(f"/v1/blocks/{block_id}").json()
    assert download(world, after["image"]) == b"their version"
    assert after["image"]["name"] == before["image"]["name"]
    moved = parse_time(after["last_edited_time"]) - parse_time(before["last_edited_time"])
    assert moved.total_seconds() >= 60
    page_after = client.get(f"/v1/pages/{world.refs.home.id}").json()["last_edited_time"]
    assert page_after != page_before


def test_remote_edit_during_the_next_write(world: World) -> None:
    client = world.client()
    page = world.refs.big_page.id
    title_before = client.get(f"/v1/pages/{page}").json()["last_edited_time"]
    world.emulator.faults.writes.remote_edit_next(world.refs.image_block.id)
    append(client, page, [paragraph("mine")])
    block = client.get(f"/v1/blocks/{world.refs.image_block.id}").json()
    assert download(world, block["image"]).endswith(b"Edited by someone else.")
    assert client.get(f"/v1/pages/{page}").json()["last_edited_time"] != title_before


def test_reset_disarms_write_switches(world: World) -> None:
    switches = world.emulator.faults.writes
    switches.fail_next(500)
    switches.cut_next()
    switches.fail_part(1)
    switches.remote_edit_next(world.refs.home.id)
    assert switches.armed
    world.emulator.reset()
    assert not switches.armed


def test_global_faults_apply_to_writes_too(world: World) -> None:
    world.emulator.faults.force_429 = 1
    world.emulator.faults.retry_after_s = 2
    response = world.client().post("/v1/file_uploads", json={"filename": "a.txt"})
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "2"


def test_reads_during_writes_never_fail(world: World) -> None:
    page = world.refs.big_page.id
    statuses: list[int] = []
    stop = threading.Event()

    def read() -> None:
        reader = world.client()
        while not stop.is_set():
            statuses.append(reader.get(f"/v1/blocks/{page}/children").status_code)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    writer = world.client()
    try:
        for i in range(30):
            append(writer, page, [paragraph(f"w{i}")])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses and set(statuses) == {200}
