"""The official Python SDK (notion-client) uploading through the emulator and attaching the file."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from notion_client import APIErrorCode, APIResponseError, Client
from notion_client.helpers import collect_paginated_api

from tests.emulator.conftest import TOKEN, World, plain_http_client
from tests.emulator.writing import download

MiB = 1024 * 1024


@pytest.fixture
def sdk(world: World) -> Iterator[Client]:
    client = Client(
        auth=TOKEN,
        base_url=world.emulator.api_url,
        notion_version="2025-09-03",
        client=plain_http_client(),
    )
    try:
        yield client
    finally:
        client.close()


def test_sdk_single_part_upload_attached_to_a_page(sdk: Client, world: World) -> None:
    data = b"\x89PNG\r\n\x1a\n sdk bytes"
    upload = sdk.file_uploads.create(mode="single_part", filename="sdk.png",
                                     content_type="image/png")
    sent = sdk.file_uploads.send(file_upload_id=upload["id"],
                                 file=("sdk.png", data, "image/png"))
    assert sent["status"] == "uploaded" and sent["content_length"] == len(data)
    page = world.refs.big_page.id
    sdk.blocks.children.append(block_id=page, children=[
        {"type": "image", "image": {"type": "file_upload", "file_upload": {"id": upload["id"]}}}
    ])
    blocks = collect_paginated_api(sdk.blocks.children.list, block_id=page)
    assert blocks[-1]["type"] == "image"
    assert download(world, blocks[-1]["image"]) == data
    listed = sdk.file_uploads.list(status="uploaded")
    assert [u["id"] for u in listed["results"]] == [upload["id"]]
    assert sdk.file_uploads.retrieve(file_upload_id=upload["id"])["expiry_time"] is None


def test_sdk_multi_part_upload(sdk: Client, world: World) -> None:
    data = random.Random(7).randbytes(11 * MiB)
    upload = sdk.file_uploads.create(mode="multi_part", filename="clip.mp4",
                                     content_type="video/mp4", number_of_parts=2)
    sdk.file_uploads.send(file_upload_id=upload["id"], part_number="1",
                          file=("clip.mp4", data[: 6 * MiB], "video/mp4"))
    sdk.file_uploads.send(file_upload_id=upload["id"], part_number="2",
                          file=("clip.mp4", data[6 * MiB :], "video/mp4"))
    done = sdk.file_uploads.complete(file_upload_id=upload["id"])
    assert done["status"] == "uploaded" and done["content_length"] == len(data)
    page = sdk.pages.create(
        parent={"page_id": world.refs.big_page.id},
        properties={"title": [{"text": {"content": "Clip"}}]},
        children=[{"type": "video",
                   "video": {"type": "file_upload", "file_upload": {"id": upload["id"]}}}],
    )
    video = collect_paginated_api(sdk.blocks.children.list, block_id=page["id"])[0]
    assert download(world, video["video"]) == data
    moved = sdk.pages.move(page_id=page["id"], parent={"page_id": world.refs.home.id})
    assert moved["parent"]["page_id"] == world.refs.home.id
    trashed = sdk.pages.update(page_id=page["id"], in_trash=True)
    assert trashed["in_trash"] is True


def test_sdk_sees_upload_errors(sdk: Client) -> None:
    with pytest.raises(APIResponseError) as raised:
        sdk.file_uploads.create(mode="single_part", filename="archive.zip")
    assert raised.value.code == APIErrorCode.ValidationError
    assert raised.value.status == 400
