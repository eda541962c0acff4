"""The upload engine against the emulator over loopback HTTP: modes, parts, attaches,
lost answers, Notion down, crashes; API calls counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.journal import Target
from notionfs.uploadqueue import new_block_target
from tests.emulator.conftest import World, start_world
from tests.emulator.uploading import (
    APPEND,
    COMPLETE,
    CREATE,
    SEND,
    MiB,
    Rig,
    build_rig,
    random_bytes,
    sha,
)


@pytest.fixture
def rig(world: World, tmp_path: Path) -> Iterator[Rig]:
    rig = build_rig(world, tmp_path / "staging")
    try:
        yield rig
    finally:
        rig.queue.close()
        rig.client.close()


def _upload_new(rig: Rig, parent: str, name: str, data: bytes) -> str:
    """Stage, submit and run one new file; the block it ended in."""
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(parent, name), name=name)
    staged.close()
    done = rig.queue.wait(entry.id, timeout_s=60)
    assert done.state == "done" and done.result_id
    return done.result_id


def test_single_part_image_is_appended_with_its_bytes(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(300_000)
    before = [b["id"] for b in rig.children(page)]
    block_id = _upload_new(rig, page, "photo.png", data)
    after = rig.children(page)
    assert [b["id"] for b in after] == [*before, block_id]  # appended at the end
    assert after[-1]["type"] == "image" and after[-1]["image"]["name"] == "photo.png"
    assert sha(rig.block_bytes(block_id)) == sha(data)
    assert rig.counters.calls(CREATE) == 1
    assert rig.counters.calls(SEND) == 1
    assert rig.counters.calls(COMPLETE) == 0
    assert rig.counters.calls(APPEND) == 1
    assert rig.staging.files() == [] and rig.journal.entries() == []  # tidied
