"""The upload engine against the emulator over loopback HTTP: modes, parts, attaches,
lost answers, Notion down, crashes; API calls counted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notionfs.config import Settings
from notionfs.errors import (
    FileTooLargeError,
    UnsupportedFileError,
    UploadFailedError,
    UploadPendingError,
)
from notionfs.journal import Entry, Target
from notionfs.priority import in_background
from notionfs.uploadqueue import new_block_target
from tests.e2e.storecheck import scan_cache
from tests.emulator.conftest import TOKEN, World, start_world
from tests.emulator.uploading import (
    APPEND,
    COMPLETE,
    CREATE,
    DELETE_BLOCK,
    SEND,
    UPDATE_BLOCK,
    UPDATE_PAGE,
    MiB,
    Rig,
    build_rig,
    random_bytes,
    sha,
)
from tests.emulator.writing import Clock


@pytest.fixture
def rig(world: World, tmp_path: Path) -> Iterator[Rig]:
    rig = build_rig(world, tmp_path / "staging")
    try:
        yield rig
    finally:
        rig.queue.close()
        rig.client.close()


def wait_done(rig: Rig, entry_id: str, timeout_s: float = 60.0) -> Entry:
    """Wait through failed attempts (the workers retry them) until the entry is done."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return rig.queue.wait(entry_id, timeout_s=max(0.1, deadline - time.monotonic()))
        except UploadPendingError:
            if time.monotonic() > deadline:
                raise


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


def test_multi_part_with_one_failed_part_resends_only_that_part(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(45 * MiB)
    rig.world.emulator.faults.writes.fail_part(3)
    block_id = _upload_new(rig, page, "film.mp4", data)
    assert rig.counters.calls(SEND) == 5 + 1  # 10+10+10+10+5 MiB, part 3 once more
    assert rig.counters.calls(CREATE) == 1 and rig.counters.calls(COMPLETE) == 1
    created = [r for r in rig.counters.log if r.route == CREATE][0].body
    assert created["mode"] == "multi_part" and created["number_of_parts"] == 5
    block = rig.children(page)[-1]
    assert block["id"] == block_id and block["type"] == "video"
    assert sha(rig.block_bytes(block_id)) == sha(data)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("shot.jpg", "image"), ("paper.pdf", "pdf"), ("clip.mov", "video"),
     ("song.mp3", "audio"), ("notes.txt", "file"), ("report.docx", "file")],
)
def test_each_type_becomes_its_block(rig: Rig, name: str, kind: str) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(4096)
    block_id = _upload_new(rig, page, name, data)
    block = rig.children(page)[-1]
    assert block["id"] == block_id and block["type"] == kind
    assert block[kind]["name"] == name
    assert rig.block_bytes(block_id) == data
    sent = [r for r in rig.counters.log if r.route == APPEND][0].body["children"][0]
    # Only a file block is given a name: the others take the upload's filename.
    assert ("name" in sent[kind]) == (kind == "file")


def test_replace_keeps_the_block_and_its_place(rig: Rig) -> None:
    home = rig.world.refs.home.id
    block_id = rig.world.refs.image_block.id
    before = [b["id"] for b in rig.children(home)]
    data = random_bytes(70_000)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, Target.replace(block_id), name="cat photo.png")
    done = rig.queue.wait(entry.id, timeout_s=30)
    assert done.result_id == block_id
    assert [b["id"] for b in rig.children(home)] == before  # same block, same position
    assert rig.block_bytes(block_id) == data
    assert rig.counters.calls(APPEND) == 0


def test_files_property_append_keeps_existing_entries_in_order(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    client = rig.world.client()
    for name in ("spec.pdf", "later.txt"):
        data = random_bytes(2000)
        staged = rig.stage(data)
        entry = rig.queue.submit(staged, Target.files_property(row, "Attachments"), name=name)
        rig.queue.wait(entry.id, timeout_s=30)
        files = client.get(f"/v1/pages/{row}").json()["properties"]["Attachments"]["files"]
        assert rig.world.download(files[-1]["file"]["url"]) == data
    names = [f["name"] for f in files]
    assert names == ["notes.txt", "spec.pdf", "later.txt"]
    assert rig.world.download(files[0]["file"]["url"]) == b"row attachment"  # kept


def test_trash_moves_a_block_to_the_trash(rig: Rig) -> None:
    block_id = rig.world.refs.image_block.id
    entry = rig.queue.submit_trash(block_id)
    assert rig.queue.wait(entry.id, timeout_s=10).state == "done"
    block = rig.world.client().get(f"/v1/blocks/{block_id}").json()
    assert block["in_trash"] is True
    assert block_id not in [b["id"] for b in rig.children(rig.world.refs.home.id)]


# ---- lost answers: checked, never duplicated ---------------------------------------------------


def test_a_cut_append_is_checked_and_not_duplicated(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    rig.world.emulator.faults.writes.cut_next(route=APPEND)
    data = random_bytes(5000)
    block_id = _upload_new(rig, page, "once.png", data)
    named = [b for b in rig.children(page) if b["type"] == "image"
             and b["image"]["name"] == "once.png"]
    assert [b["id"] for b in named] == [block_id]  # there once, found by the check
    assert rig.counters.calls(APPEND) == 1  # never sent again
    assert rig.block_bytes(block_id) == data


def test_a_cut_replace_is_checked_and_not_repeated(rig: Rig) -> None:
    block_id = rig.world.refs.image_block.id
    rig.world.emulator.faults.writes.cut_next(route=UPDATE_BLOCK)
    data = random_bytes(5000)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, Target.replace(block_id), name="cat photo.png")
    assert rig.queue.wait(entry.id, timeout_s=30).result_id == block_id
    assert rig.counters.calls(UPDATE_BLOCK) == 1
    assert rig.block_bytes(block_id) == data


def test_a_cut_property_update_is_checked_and_not_repeated(rig: Rig) -> None:
    row = rig.world.refs.rows[0].id
    rig.world.emulator.faults.writes.cut_next(route=UPDATE_PAGE)
    staged = rig.stage(b"%PDF-1.4 once")
    entry = rig.queue.submit(staged, Target.files_property(row, "Attachments"), name="a.pdf")
    rig.queue.wait(entry.id, timeout_s=30)
    files = rig.world.client().get(f"/v1/pages/{row}").json()["properties"]["Attachments"]
    assert [f["name"] for f in files["files"]] == ["notes.txt", "a.pdf"]
    assert rig.counters.calls(UPDATE_PAGE) == 1


def test_a_refused_attach_that_was_not_applied_is_sent_again(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    rig.world.emulator.faults.writes.fail_next(503, route=APPEND)
    staged = rig.stage(b"x" * 100)
    entry = rig.queue.submit(staged, new_block_target(page, "later.txt"), name="later.txt")
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=30)
    assert rig.journal.get(entry.id).state == "attaching"  # type: ignore[union-attr]
    rig.queue.retry(entry.id)
    done = rig.queue.wait(entry.id, timeout_s=30)
    assert rig.counters.calls(APPEND) == 2  # the 503 applied nothing: sent once more
    assert [b["id"] for b in rig.children(page) if b["type"] == "file"
            and b["file"]["name"] == "later.txt"] == [done.result_id]


# ---- expiry -------------------------------------------------------------------------------------


def test_an_upload_that_expired_before_its_attach_is_started_again(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    rig.world.emulator.faults.writes.fail_next(503, route=APPEND)
    data = random_bytes(3000)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "late.png"), name="late.png")
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=30)
    first = rig.journal.get(entry.id)
    assert first is not None and first.upload_id
    rig.world.emulator.uploads.expire_all_now()  # an hour passed: Notion dropped it
    rig.queue.retry(entry.id)
    done = rig.queue.wait(entry.id, timeout_s=30)
    assert rig.counters.calls(CREATE) == 2 and rig.counters.calls(SEND) == 2
    assert rig.block_bytes(done.result_id or "") == data
    assert len([b for b in rig.children(page) if b["type"] == "image"
                and b["image"]["name"] == "late.png"]) == 1


def test_a_multi_part_upload_expired_midway_is_started_again(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(25 * MiB)  # 3 parts
    rig.world.emulator.faults.writes.fail_part(3, times=50)  # part 3 cannot get through
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "long.mp4"), name="long.mp4")
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=60)
    stopped = rig.journal.get(entry.id)
    assert stopped is not None and stopped.state == "uploading"
    assert stopped.parts_done == (1, 2)
    rig.world.emulator.faults.writes.reset()
    rig.world.emulator.uploads.expire_all_now()
    sends = rig.counters.calls(SEND)
    rig.queue.retry(entry.id)
    done = rig.queue.wait(entry.id, timeout_s=60)
    assert rig.counters.calls(SEND) - sends == 3  # every part again, into a new upload
    assert rig.counters.calls(CREATE) == 2
    assert sha(rig.block_bytes(done.result_id or "")) == sha(data)


# ---- Notion down ------------------------------------------------------------------------------


def test_notion_down_during_an_upload_keeps_the_entry_until_it_returns(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(25 * MiB)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "down.mp4"), name="down.mp4")
    original = rig.engine.on_saved

    def pause_after_first_part(saved: Entry) -> None:
        original(saved)
        if saved.state == "uploading" and len(saved.parts_done) == 1:
            rig.world.emulator.pause_api()

    rig.engine.on_saved = pause_after_first_part
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=60)
    rig.engine.on_saved = original
    kept = rig.journal.get(entry.id)
    assert kept is not None and kept.state == "uploading" and kept.attempts == 1
    assert "NetworkError" in (kept.last_error or "")
    assert Path(kept.staged_path or "").is_file()
    status = rig.queue.status(entry.id)
    assert status is not None and "attempt 1 failed" in str(status)
    # Still down: a retry fails fast, the entry stays.
    rig.queue.retry(entry.id)
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=60)
    sends = rig.counters.calls(SEND)
    rig.world.emulator.resume_api()
    rig.queue.start()  # background workers pick it up when due
    done = wait_done(rig, entry.id)
    assert sha(rig.block_bytes(done.result_id or "")) == sha(data)
    # The same upload resumed, not restarted: only parts Notion had not confirmed go again
    # (2 of 3; one more when the cut lost the answer to a part it had received).
    assert rig.counters.calls(CREATE) == 1
    assert rig.counters.calls(SEND) - sends <= 3 - len(kept.parts_done) + 1
    assert rig.journal.entries() == [] and rig.staging.files() == []


# ---- crashes: a new queue over the same journal finishes exactly once ------------------------


class Crash(BaseException):
    """The process dying at a chosen instant (nothing after it runs, nothing is tidied)."""


def test_a_crash_after_the_attach_was_sent_finishes_exactly_once(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(8000)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "crash.png"), name="crash.png")
    staged.close()
    real_append = rig.api.append_children

    def append_then_die(*args: Any, **kwargs: Any) -> Any:
        real_append(*args, **kwargs)
        raise Crash()  # Notion has the block; the journal never hears of it

    rig.api.append_children = append_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        rig.queue.run_due()
    assert rig.journal.get(entry.id).state == "attaching"  # type: ignore[union-attr]
    fresh = rig.restart()
    try:
        assert fresh.queue.run_due() == 1
        assert fresh.journal.entries() == [] and fresh.staging.files() == []
    finally:
        fresh.queue.close()
    named = [b for b in rig.children(page) if b["type"] == "image"
             and b["image"]["name"] == "crash.png"]
    assert len(named) == 1 and rig.block_bytes(named[0]["id"]) == data
    assert rig.counters.calls(APPEND) == 1


def test_a_crash_midway_through_the_parts_sends_only_the_missing_ones(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(45 * MiB)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "half.mp4"), name="half.mp4")
    staged.close()
    real_send = rig.api.send
    sent: list[int | None] = []

    def send_then_die(*args: Any, **kwargs: Any) -> Any:
        if len(sent) >= 2:
            raise Crash()
        answer = real_send(*args, **kwargs)
        sent.append(kwargs.get("part_number"))
        return answer

    rig.engine.parts_in_flight = 1  # one part at a time: the crash point is exact
    rig.api.send = send_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        rig.queue.run_due()
    stopped = rig.journal.get(entry.id)
    assert stopped is not None and stopped.parts_done == (1, 2)
    fresh = rig.restart()
    try:
        fresh.queue.run_due()
    finally:
        fresh.queue.close()
    assert rig.counters.calls(SEND) == 5  # parts 1-2 before the crash, 3-5 after
    assert rig.counters.calls(CREATE) == 1 and rig.counters.calls(COMPLETE) == 1
    videos = [b for b in rig.children(page) if b["type"] == "video"]
    assert len(videos) == 1 and sha(rig.block_bytes(videos[0]["id"])) == sha(data)


# ---- what is refused at once --------------------------------------------------------------------


def test_refused_names_and_sizes_are_refused_before_anything_is_journalled(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    staged = rig.stage(b"PK\x03\x04")
    with pytest.raises(UnsupportedFileError, match=r"\.zip"):
        rig.queue.submit(staged, new_block_target(page, "a.pdf"), name="archive.zip")
    with pytest.raises(UnsupportedFileError):
        new_block_target(page, "archive.zip")
    with pytest.raises(UnsupportedFileError):
        rig.queue.submit(staged, Target.append(page, "image"), name="paper.pdf")
    assert rig.journal.entries() == [] and rig.world.emulator.counters.calls(CREATE) == 0


def test_the_workspace_limit_comes_from_users_me(rig: Rig) -> None:
    assert rig.api.max_file_bytes() == 5 * 1024 ** 3  # paid plan
    rig.queue.check_size(5 * 1024 ** 3)
    with pytest.raises(FileTooLargeError):
        rig.queue.check_size(5 * 1024 ** 3 + 1)
    rig.api.max_file_bytes()
    assert rig.counters.calls("GET /v1/users/me") == 1  # asked once


def test_a_free_workspace_refuses_past_5_mib(tmp_path: Path) -> None:
    world = start_world(plan="free")
    rig = build_rig(world, tmp_path / "s")
    try:
        assert rig.api.max_file_bytes() == 5 * MiB
        with pytest.raises(FileTooLargeError):
            rig.queue.check_size(5 * MiB + 1)
        staged = rig.stage(b"x" * (5 * MiB + 1))
        with pytest.raises(FileTooLargeError):
            rig.queue.submit(staged, new_block_target(world.refs.big_page.id, "big.txt"),
                             name="big.txt")
    finally:
        rig.queue.close()
        rig.client.close()
        world.close()
        world.emulator.stop()


def test_no_limit_is_assumed_where_notion_does_not_tell(tmp_path: Path, world: World) -> None:
    settings = Settings(token=TOKEN, api_url=world.emulator.api_url,
                        notion_version="2022-06-28", rate_limit_rps=1000.0)
    rig = build_rig(world, tmp_path / "s", settings)
    try:
        assert rig.api.max_file_bytes() is None
        rig.queue.check_size(10 * 1024 ** 4)  # nothing assumed: Notion's refusal will speak
    finally:
        rig.queue.close()
        rig.client.close()


def test_a_replace_over_someone_elses_newer_version_fails_as_a_conflict(rig: Rig) -> None:
    block_id = rig.world.refs.image_block.id
    opened = rig.world.client().get(f"/v1/blocks/{block_id}").json()["last_edited_time"]
    rig.world.emulator.clock = Clock(datetime.now(UTC) + timedelta(minutes=5))
    rig.world.emulator.remote_edit(block_id, data=b"their version")
    staged = rig.stage(b"my version")
    entry = rig.queue.submit(staged, Target.replace(block_id, expect_edited=opened),
                             name="cat photo.png")
    with pytest.raises(UploadFailedError, match="changed in Notion"):
        rig.queue.wait(entry.id, timeout_s=30)
    failed = rig.journal.get(entry.id)
    assert failed is not None and failed.state == "failed"
    assert Path(failed.staged_path or "").read_bytes() == b"my version"  # kept
    assert rig.block_bytes(block_id) == b"their version"
    assert rig.counters.calls(UPDATE_BLOCK) == 0


def test_neither_the_token_nor_a_signed_url_reaches_the_disk(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    row = rig.world.refs.rows[0].id
    _upload_new(rig, page, "one.png", random_bytes(1000))
    # Entries left mid-way, with errors recorded, are what the journal holds longest.
    rig.world.emulator.faults.writes.fail_next(503, 503, route=UPDATE_PAGE)
    staged = rig.stage(b"%PDF kept")
    entry = rig.queue.submit(staged, Target.files_property(row, "Attachments"), name="k.pdf")
    with pytest.raises(UploadPendingError):
        rig.queue.wait(entry.id, timeout_s=30)
    rig.queue.close()
    assert rig.journal.path.is_file() and rig.staging.files()
    assert scan_cache(rig.root, TOKEN) == []


def test_a_cut_trash_is_checked(rig: Rig) -> None:
    block_id = rig.world.refs.image_block.id
    rig.world.emulator.faults.writes.cut_next(route=DELETE_BLOCK)
    entry = rig.queue.submit_trash(block_id)
    assert rig.queue.wait(entry.id, timeout_s=10).state == "done"
    assert rig.counters.calls(DELETE_BLOCK) == 1
    assert rig.world.client().get(f"/v1/blocks/{block_id}").json()["in_trash"] is True


def test_files_for_one_page_land_in_the_order_they_were_written(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    rig.world.emulator.faults.latency_s = 0.05  # let two workers race if they could
    rig.queue.start()
    names = [f"n{i}.txt" for i in range(4)]
    entries = []
    for i, name in enumerate(names):
        staged = rig.stage(random_bytes(100 + i * 300_000))  # later ones are bigger
        entries.append(rig.queue.submit(staged, new_block_target(page, name), name=name))
    done = [wait_done(rig, e.id) for e in entries]
    tail = rig.children(page)[-4:]
    assert [b["file"]["name"] for b in tail] == names
    assert [b["id"] for b in tail] == [d.result_id for d in done]


def test_transitions_are_logged_without_secrets_on_the_shared_client(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notionfs")
    page = rig.world.refs.big_page.id
    rig.world.emulator.faults.writes.fail_part(2)
    _upload_new(rig, page, "logged.mp4", random_bytes(21 * MiB))
    text = caplog.text
    for step in ("uploading: multi_part upload", "part 2 sent", "uploaded: Notion has every",
                 "attaching: attaching (append)", "done: attached"):
        assert step in text
    assert "X-Amz" not in text and TOKEN not in text
    # One client, one limiter: every write went through the reads' client.
    assert rig.client.stats.snapshot()["requests"] == rig.counters.total
    assert rig.client.stats.snapshot()["retries"] == 1  # the failed part, once


def test_closing_mid_upload_leaves_the_rest_for_the_next_start(rig: Rig) -> None:
    page = rig.world.refs.big_page.id
    data = random_bytes(45 * MiB)
    staged = rig.stage(data)
    entry = rig.queue.submit(staged, new_block_target(page, "stop.mp4"), name="stop.mp4")
    staged.close()
    rig.engine.parts_in_flight = 1
    first_part = threading.Event()
    original = rig.engine.on_saved

    def note(saved: Entry) -> None:
        original(saved)
        if saved.parts_done:
            first_part.set()

    rig.engine.on_saved = note
    rig.queue.start()
    assert first_part.wait(30)
    rig.queue.close()  # a part in flight finishes; no new one starts
    fresh = rig.restart()
    try:
        kept = fresh.journal.get(entry.id)
        assert kept is not None and kept.state == "uploading" and 1 <= len(kept.parts_done) < 5
        assert fresh.queue.run_due() == 1
    finally:
        fresh.queue.close()
    assert rig.counters.calls(SEND) == 5 and rig.counters.calls(CREATE) == 1
    videos = [b for b in rig.children(page) if b["type"] == "video"]
    assert len(videos) == 1 and sha(rig.block_bytes(videos[0]["id"])) == sha(data)


def test_workers_call_in_the_background_and_an_awaited_entry_in_the_foreground(
    rig: Rig,
) -> None:
    page = rig.world.refs.big_page.id
    rig.api.max_file_bytes()  # asked once, up front
    seen: list[tuple[str, bool]] = []
    real_request, real_form = rig.client.request, rig.client.request_form

    def request(method: str, path: str, **kwargs: Any) -> Any:
        seen.append((f"{method} {path}", in_background()))
        return real_request(method, path, **kwargs)

    def request_form(path: str, **kwargs: Any) -> Any:
        seen.append((f"POST {path}", in_background()))
        return real_form(path, **kwargs)

    rig.client.request = request  # type: ignore[method-assign]
    rig.client.request_form = request_form  # type: ignore[method-assign]
    rig.queue.start()
    staged = rig.stage(random_bytes(21 * MiB))  # three parts, sent from pool threads
    entry = rig.queue.submit(staged, new_block_target(page, "bg.mp4"), name="bg.mp4")
    deadline = time.monotonic() + 60
    while rig.journal.get(entry.id) is not None:  # nobody waits on it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # create, three parts, complete, append: all in the background
    assert len(seen) == 6 and all(flag for _, flag in seen), seen
    seen.clear()
    rig.queue.close()
    fresh = rig.restart()
    try:
        staged = fresh.stage(b"%PDF awaited")
        entry = fresh.queue.submit(staged, new_block_target(page, "fg.pdf"), name="fg.pdf")
        fresh.queue.wait(entry.id, timeout_s=30)  # a program waits: it goes first
    finally:
        fresh.queue.close()
    assert seen and not any(flag for _, flag in seen), seen
