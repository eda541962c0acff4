"""Helpers for the write tests: Notion's recorded answers, shape comparison, uploads."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import World, children

# ../shared/notion-recordings beside the repository (CI has the same layout).
RECORDINGS = Path(
    os.environ.get(
        "NOTIONFS_RECORDINGS",
        Path(__file__).resolve().parents[2].parent / "shared" / "notion-recordings",
    )
)
# Keys of page objects that the read renderer (render.py) does not produce yet; the write
# answers use that renderer, so these are the only differences the tests tolerate.
READ_RENDER_GAPS = frozenset({"is_archived"})


def recording(name: str, version: str = "2025-09-03") -> dict[str, Any]:
    """One recorded interaction: {method, path, request_body, status, body, ...}."""
    path = RECORDINGS / version / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"Notion recordings not found at {RECORDINGS}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def assert_same_shape(
    ours: Any,
    recorded: Any,
    *,
    path: str = "$",
    may_lack: frozenset[str] = frozenset(),
    may_add: frozenset[str] = frozenset(),
) -> None:
    """Same keys and JSON value types, recursively (values themselves may differ; a null
    on either side matches any type, as Notion's nullable fields do)."""
    if ours is None or recorded is None:
        return
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours).__name__} instead of an object"
        missing = set(recorded) - set(ours) - may_lack
        extra = set(ours) - set(recorded) - may_add
        assert not missing, f"{path}: missing keys {sorted(missing)}"
        assert not extra, f"{path}: keys Notion does not send {sorted(extra)}"
        for key in set(recorded) & set(ours):
            assert_same_shape(ours[key], recorded[key], path=f"{path}.{key}",
                              may_lack=may_lack, may_add=may_add)
        return
    if isinstance(recorded, list):
        assert isinstance(ours, list), f"{path}: {type(ours).__name__} instead of an array"
        if ours and recorded:
            assert_same_shape(ours[0], recorded[0], path=f"{path}[0]", may_lack=may_lack,
                              may_add=may_add)
        return
    kinds = (bool,) if isinstance(recorded, bool) else (int, float) \
        if isinstance(recorded, (int, float)) else (type(recorded),)
    assert isinstance(ours, kinds) and isinstance(ours, bool) == isinstance(recorded, bool), (
        f"{path}: {ours!r} is not a {type(recorded).__name__} like Notion's {recorded!r}"
    )


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


class Clock:
    """A settable clock for Emulator.clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 7, 4, 9, 11, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def create_upload(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/file_uploads", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def send(
    client: httpx.Client,
    upload_id: str,
    data: bytes,
    filename: str = "file.bin",
    content_type: str | None = None,
    part_number: int | None = None,
) -> httpx.Response:
    file: tuple[Any, ...] = (filename, data) if content_type is None else \
        (filename, data, content_type)
    form = {"part_number": str(part_number)} if part_number is not None else None
    return client.post(f"/v1/file_uploads/{upload_id}/send", files={"file": file}, data=form)


def upload_file(client: httpx.Client, name: str, data: bytes, content_type: str) -> str:
    """A single_part upload, sent: its id."""
    upload = create_upload(client, filename=name, content_type=content_type)
    response = send(client, upload["id"], data, name, content_type)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "uploaded"
    return str(upload["id"])


def file_block(kind: str, upload_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, kind: {"type": "file_upload", "file_upload": {"id": upload_id},
                                 **extra}}


def paragraph(text: str) -> dict[str, Any]:
    return {"paragraph": {"rich_text": [{"text": {"content": text}}]}}


def append(client: httpx.Client, parent_id: str, blocks: list[dict[str, Any]],
           **body: Any) -> dict[str, Any]:
    response = client.patch(f"/v1/blocks/{parent_id}/children", json={"children": blocks,
                                                                         **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def child_ids(client: httpx.Client, parent_id: str) -> list[str]:
    return [block["id"] for block in children(client, parent_id)]


def hosted_url(file_object: dict[str, Any]) -> str:
    """The URL of a Notion-hosted file object, checked to be one."""
    assert file_object["type"] == "file", file_object
    assert set(file_object["file"]) == {"url", "expiry_time"}
    parse_time(file_object["file"]["expiry_time"])
    return str(file_object["file"]["url"])


def download(world: World, file_object: dict[str, Any]) -> bytes:
    return world.download(hosted_url(file_object))
