"""A row's files property through the upload engine against the emulator: an entry replaced
in place, removed, renamed; entries someone added meanwhile kept; lost answers and crashes
checked, never a duplicate entry; API calls counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from notionfs.errors import ConflictError, UploadFailedError, UploadPendingError
from notionfs.journal import Target, entry_key, file_key
from tests.emulator.conftest import World
from tests.emulator.test_upload_engine import Crash
from tests.emulator.uploading import (
    APPEND,
    CREATE,
    SEND,
    UPDATE_PAGE,
    Rig,
    build_rig,
    random_bytes,
)

GET_PAGE = "GET /v1/pages/{id}"
PROP = "Attachments"


@pytest.fixture
def rig(world: World, tmp_path: Path) -> Iterator[Rig]:
    rig = build_rig(world, tmp_path / "staging")
    try:
        yield rig
    finally:
        rig.queue.close()
        rig.client.close()


def entries(rig: Rig, row: str) -> list[dict[str, Any]]:
    page = rig.world.client().get(f"/v1/pages/{row}").json()
    files: list[dict[str, Any]] = page["properties"][PROP]["files"]
    return files


def names_and_bytes(rig: Rig, row: str) -> list[tuple[str, bytes]]:
    return [(e["name"], rig.world.download(e["file"]["url"])) for e in entries(rig, row)]


def key_of(item: dict[str, Any]) -> str:
    return entry_key(item[item["type"]]["url"])


def add(rig: Rig, row: str, name: str, data: bytes) -> str:
    """A new entry through the engine; its entry key."""
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, Target.files_property(row, PROP), name=name)
    staged.close()
    done = rig.queue.wait(entry.id, timeout_s=30)
    assert done.result_id is not None
    return done.result_id


def test_a_new_entry_costs_create_send_read_and_patch_and_reports_its_key(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    rig.api.max_file_bytes()  # asked once per mount (users/me), not per file
    before = rig.counters.snapshot()
    key = add(rig, row, "spec.pdf", b"%PDF-1.4 spec")
    calls = sorted(r.route for r in rig.counters.snapshot().log[len(before.log):])
    assert calls == sorted([CREATE, SEND, GET_PAGE, UPDATE_PAGE]), calls
    last = entries(rig, row)[-1]
    assert last["name"] == "spec.pdf" and key_of(last) == key


def test_replace_keeps_the_position_and_the_other_entries(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    add(rig, row, "b.txt", b"b")
    add(rig, row, "c.txt", b"c")
    first = entries(rig, row)[0]
    staged = rig.stage(b"new notes")
    target = Target.property_entry("property_replace", row, PROP, key_of(first), 0)
    done = rig.queue.wait(rig.queue.submit(staged, target, name="notes.txt").id, timeout_s=30)
    assert names_and_bytes(rig, row) == [("notes.txt", b"new notes"), ("b.txt", b"b"),
                                         ("c.txt", b"c")]
    assert done.result_id == key_of(entries(rig, row)[0])  # the replacement's own key
    assert rig.counters.calls(APPEND) == 0


def test_an_entry_added_by_someone_meanwhile_is_kept(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    client = rig.world.client()
    staged = rig.stage(b"mine")
    entry = rig.queue.submit(staged, Target.files_property(row, PROP), name="mine.txt")
    # Someone adds a file after the mount listed the row, before the queue runs.
    theirs = client.post("/v1/file_uploads", json={"filename": "theirs.txt"}).json()["id"]
    client.post(f"/v1/file_uploads/{theirs}/send", files={"file": ("theirs.txt", b"theirs",
                                                                    "text/plain")})
    existing = entries(rig, row)
    client.patch(f"/v1/pages/{row}", json={"properties": {PROP: {"files": [
        *[{"name": e["name"], "type": "file", "file": {"url": e["file"]["url"]}}
          for e in existing],
        {"type": "file_upload", "file_upload": {"id": theirs}, "name": "theirs.txt"}]}}})
    rig.queue.wait(entry.id, timeout_s=30)
    assert [n for n, _ in names_and_bytes(rig, row)] == ["notes.txt", "theirs.txt", "mine.txt"]


def test_replace_of_an_entry_someone_removed_is_a_conflict(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    gone = key_of(entries(rig, row)[0])
    rig.world.client().patch(f"/v1/pages/{row}", json={"properties": {PROP: {"files": []}}})
    staged = rig.stage(b"mine")
    target = Target.property_entry("property_replace", row, PROP, gone, 0)
    entry = rig.queue.submit(staged, target, name="notes.txt")
    with pytest.raises(ConflictError, match="changed in Notion"):
        rig.queue.wait(entry.id, timeout_s=30)
    assert entries(rig, row) == []  # nothing appended in its place
    assert rig.counters.calls(UPDATE_PAGE) == 1  # only the emptying above


def test_remove_and_rename_keep_the_others_in_order(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    add(rig, row, "b.txt", b"b")
    add(rig, row, "c.txt", b"c")
    notes, b, _c = entries(rig, row)
    before = rig.counters.calls(UPDATE_PAGE)
    remove = Target.property_entry("property_remove", row, PROP, key_of(notes), 0)
    assert rig.queue.wait(rig.queue.submit_edit(remove, name="notes.txt").id, 30).state == "done"
    rename = Target.property_entry("property_rename", row, PROP, key_of(b), 1)
    done = rig.queue.wait(rig.queue.submit_edit(rename, name="bee.txt").id, 30)
    assert names_and_bytes(rig, row) == [("bee.txt", b"b"), ("c.txt", b"c")]
    assert done.result_id == key_of(entries(rig, row)[0])
    assert rig.counters.calls(UPDATE_PAGE) == before + 2
    # Removing what is already gone asks nothing more of Notion than a read.
    again = rig.queue.submit_edit(remove, name="notes.txt")
    assert rig.queue.wait(again.id, 30).state == "done"
    assert rig.counters.calls(UPDATE_PAGE) == before + 2


def test_entries_sharing_a_url_path_are_told_apart_by_position(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    [notes] = entries(rig, row)
    twice = {"name": "notes.txt", "type": "file", "file": {"url": notes["file"]["url"]}}
    rig.world.client().patch(f"/v1/pages/{row}", json={"properties": {PROP: {"files": [
        twice, twice]}}})
    key = key_of(entries(rig, row)[0])
    assert key_of(entries(rig, row)[1]) == key
    rename = Target.property_entry("property_rename", row, PROP, key, 1)
    rig.queue.wait(rig.queue.submit_edit(rename, name="second.txt").id, 30)
    assert [n for n, _ in names_and_bytes(rig, row)] == ["notes.txt", "second.txt"]


def test_a_rename_of_an_entry_that_is_gone_fails_and_changes_nothing(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    rename = Target.property_entry("property_rename", row, PROP, "0" * 32, 0)
    entry = rig.queue.submit_edit(rename, name="x.txt")
    with pytest.raises(UploadFailedError, match="no longer in property"):
        rig.queue.wait(entry.id, 30)
    assert [n for n, _ in names_and_bytes(rig, row)] == ["notes.txt"]
    assert rig.counters.calls(UPDATE_PAGE) == 0


# ---- lost answers and crashes: checked, never a duplicate entry -------------------------------


@pytest.mark.parametrize("action", ["property", "property_replace"])
def test_a_cut_upload_attach_is_checked_and_not_repeated(rig: Rig, action: str) -> None:
    row = rig.world.refs.rows[0].id
    target = Target.files_property(row, PROP) if action == "property" else \
        Target.property_entry(action, row, PROP, key_of(entries(rig, row)[0]), 0)
    rig.world.emulator.faults.writes.cut_next(route=UPDATE_PAGE)
    data = random_bytes(3000)
    staged = rig.stage(data)
    done = rig.queue.wait(rig.queue.submit(staged, target, name="once.pdf").id, timeout_s=30)
    shown = names_and_bytes(rig, row)
    expected = [("notes.txt", b"row attachment")] if action == "property" else []
    assert shown == [*expected, ("once.pdf", data)]
    assert done.result_id == key_of(entries(rig, row)[-1])
    assert rig.counters.calls(UPDATE_PAGE) == 1


@pytest.mark.parametrize("action", ["property_remove", "property_rename"])
def test_a_cut_edit_is_checked_and_not_repeated(rig: Rig, action: str) -> None:
    row = rig.world.refs.rows[0].id
    add(rig, row, "b.txt", b"b")
    key = key_of(entries(rig, row)[0])
    before = rig.counters.calls(UPDATE_PAGE)
    rig.world.emulator.faults.writes.cut_next(route=UPDATE_PAGE)
    target = Target.property_entry(action, row, PROP, key, 0)
    entry = rig.queue.submit_edit(target, name="renamed.txt")
    with pytest.raises(UploadPendingError):  # applied, but the answer never came
        rig.queue.wait(entry.id, timeout_s=30)
    rig.queue.retry(entry.id)
    assert rig.queue.wait(entry.id, timeout_s=30).state == "done"  # read, found done
    expected = ["b.txt"] if action == "property_remove" else ["renamed.txt", "b.txt"]
    assert [n for n, _ in names_and_bytes(rig, row)] == expected
    assert rig.counters.calls(UPDATE_PAGE) == before + 1


def test_a_crash_after_the_patch_finishes_exactly_once(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    data = random_bytes(5000)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, Target.files_property(row, PROP), name="crash.pdf")
    staged.close()
    real_update = rig.api.update_page

    def update_then_die(*args: Any, **kwargs: Any) -> Any:
        real_update(*args, **kwargs)
        raise Crash()  # Notion has the entry; the journal never hears of it

    rig.api.update_page = update_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        rig.queue.run_due()
    assert rig.journal.get(entry.id).state == "attaching"  # type: ignore[union-attr]
    fresh = rig.restart()
    try:
        assert fresh.queue.run_due() == 1
        assert fresh.journal.entries() == [] and fresh.staging.files() == []
    finally:
        fresh.queue.close()
    assert names_and_bytes(rig, row) == [("notes.txt", b"row attachment"), ("crash.pdf", data)]
    assert rig.counters.calls(UPDATE_PAGE) == 1


def test_an_attach_journalled_by_schema_1_is_still_checked(rig: Rig) -> None:
    """Checks saved before schema 2 hold file_key()s of the entries that were there."""
    row = rig.world.refs.rows[0].id
    old_keys = [file_key(e["file"]["url"]) for e in entries(rig, row)]
    staged = rig.stage(b"%PDF once")
    entry = rig.queue.submit(staged, Target.files_property(row, PROP), name="old.pdf")
    staged.close()
    real_update = rig.api.update_page

    def update_then_die(*args: Any, **kwargs: Any) -> Any:
        real_update(*args, **kwargs)
        raise Crash()

    rig.api.update_page = update_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        rig.queue.run_due()
    left = rig.journal.get(entry.id)
    assert left is not None
    rig.journal.save(left.but(checks=MappingProxyType({"sent": True, "existing": old_keys})))
    fresh = rig.restart()
    try:
        assert fresh.queue.run_due() == 1
    finally:
        fresh.queue.close()
    assert [n for n, _ in names_and_bytes(rig, row)] == ["notes.txt", "old.pdf"]
    assert rig.counters.calls(UPDATE_PAGE) == 1


def test_a_property_past_25_entries_is_read_whole_before_it_is_rewritten(rig: Rig) -> None:
    """A page object may show only 25 entries of a property: the engine then reads the
    property on its own, so a rewrite keeps every entry."""
    row = rig.world.refs.rows[0].id
    [notes] = entries(rig, row)
    kept = {"name": "notes.txt", "type": "file", "file": {"url": notes["file"]["url"]}}
    rig.world.client().patch(f"/v1/pages/{row}", json={"properties": {PROP: {"files": [
        {**kept, "name": f"n{i:02d}.txt"} for i in range(30)]}}})
    real_get_page = rig.api.get_page

    def cut_at_25(page_id: str) -> dict[str, Any]:
        page = real_get_page(page_id)
        page["properties"][PROP]["files"] = page["properties"][PROP]["files"][:25]
        return page

    rig.api.get_page = cut_at_25  # type: ignore[method-assign]
    before = rig.counters.calls("GET /v1/pages/{id}/properties/{property_id}")
    add(rig, row, "last.txt", b"last")
    assert [e["name"] for e in entries(rig, row)] == [
        *(f"n{i:02d}.txt" for i in range(30)), "last.txt"]
    assert rig.counters.calls("GET /v1/pages/{id}/properties/{property_id}") == before + 1
