"""The upload journal: durable entries, transitions, one process at a time, no secrets."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from notionfs.errors import ConfigError
from notionfs.journal import (
    Entry,
    Journal,
    Target,
    entry_key,
    file_key,
    read_entries,
    staging_dir,
)


def _add(journal: Journal, target: Target, name: str = "a.png") -> Entry:
    return journal.add(target, staged_path=Path("/tmp/x.stage"), name=name, size=3,
                       sha256="ab" * 32, content_type="image/png")


def test_entries_survive_reopening_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.db"
    with Journal(path) as journal:
        entry = journal.add(Target.append("page-1", "image"), staged_path=tmp_path / "a.stage",
                            name="photo.png", size=123, sha256="0" * 64,
                            content_type="image/png")
        moved = journal.save(entry.but(state="uploading", upload_id="up-1",
                                       upload_mode="multi_part", part_bytes=10, parts_total=3,
                                       parts_done=(2, 1), upload_created="2026-01-01T00:00Z",
                                       checks={"sent": True, "existing": ["k1"]}, attempts=2,
                                       next_attempt_at=99.5, last_error="NetworkError: x"))
        journal.add(Target.files_property("row-1", "Files"), staged_path=None, name="b.pdf",
                    size=1, sha256=None, content_type="application/pdf")
    with Journal(path) as journal:
        first, second = journal.entries()
        assert first == moved.but(parts_done=(1, 2), checks=first.checks)
        assert dict(first.checks) == {"sent": True, "existing": ["k1"]}
        assert first.target == Target.append("page-1", "image")
        assert second.seq == first.seq + 1 and second.target.property_name == "Files"
        assert [e.id for e in journal.unfinished()] == [first.id, second.id]
        journal.save(second.but(state="failed", last_error="refused"))
        journal.save(first.but(state="done"))
        assert journal.unfinished() == []
        journal.delete(first.id)
        assert [e.id for e in journal.entries()] == [second.id]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_targets_check_their_ids_and_keys_group_what_must_run_in_order() -> None:
    with pytest.raises(ValueError):
        Target("append", parent_id="p")  # no block kind
    with pytest.raises(ValueError):
        Target("move", block_id="b")
    assert Target.append("p", "image").key == Target.append("p", "file").key
    assert Target.replace("b").key == Target.trash("b").key
    assert Target.files_property("r", "A").key != Target.files_property("r", "B").key


def test_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path):
        code = (
            "import sys; from pathlib import Path; from notionfs.journal import Journal\n"
            "from notionfs.errors import ConfigError\n"
            "try:\n Journal(Path(sys.argv[1]))\nexcept ConfigError as e:\n print('busy:', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                             text=True, check=True).stdout
        assert out.startswith("busy:") and "in use by another notionfs mount" in out
    Journal(path).close()  # free again once closed (or once its process died)


def test_a_foreign_database_is_not_taken_for_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(ConfigError, match="not a notionfs upload journal"):
        Journal(path)


def test_secrets_are_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.db") as journal:
        entry = journal.add(Target.trash("b"), staged_path=None, name=None, size=0,
                            sha256=None, content_type=None)
        with pytest.raises(ValueError, match="signed URL"):
            journal.save(entry.but(last_error="https://s3/x?X-Amz-Credential=abc"))
        with pytest.raises(ValueError, match="token"):
            journal.save(entry.but(last_error="secret_" + "a" * 43))
        assert journal.get(entry.id) == entry  # unchanged


def test_file_keys_ignore_the_signature_and_staging_dirs_split_identities() -> None:
    a = file_key("https://s3.example/ws/f1/a.png?X-Amz-Signature=1&X-Amz-Date=2")
    b = file_key("https://s3.example/ws/f1/a.png?X-Amz-Signature=9&X-Amz-Date=3")
    assert a == b != file_key("https://s3.example/ws/f2/a.png?X-Amz-Signature=1")
    one = staging_dir("/c", '{"workspace_id":"w1"}')
    assert one.parent == Path("/c/staging")
    assert one != staging_dir("/c", '{"workspace_id":"w2"}')
    with pytest.raises(ConfigError):
        staging_dir("", "x")


def test_a_follower_settles_in_the_transaction_that_finishes_its_first_version(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "journal.db") as journal:
        first = journal.add(Target.append("page-1", "file"), staged_path=tmp_path / "1",
                            name="a.txt", size=1, sha256=None, content_type="text/plain")
        follow = Target.follow(first.id, "page-1", "file")
        assert follow.key == first.target.key  # runs after it, never beside it
        later = _add(journal, follow, "a.txt")
        journal.save(first.but(state="done", result_id="block-9"))
        settled = journal.get(later.id)
        assert settled is not None and settled.target == Target.replace("block-9")
        # Once the first finished, a new follower is journalled settled at once.
        assert _add(journal, follow, "a.txt").target == Target.replace("block-9")
        # A first version that failed for good leaves its followers a file of their own.
        other = journal.add(Target.append("page-2", "file"), staged_path=tmp_path / "2",
                            name="b.txt", size=1, sha256=None, content_type="text/plain")
        waiting = _add(journal, Target.follow(other.id, "page-2", "file"), "b.txt")
        journal.save(other.but(state="failed", last_error="refused"))
        alone = journal.get(waiting.id)
        assert alone is not None and alone.target == Target.append("page-2", "file")
        # A first version the journal no longer holds: the caller must say where it went.
        journal.delete(first.id)
        with pytest.raises(KeyError):
            _add(journal, follow, "a.txt")


def test_property_entry_targets_round_trip_and_share_their_property_key(tmp_path: Path) -> None:
    replace = Target.property_entry("property_replace", "row", "%3Aab", "k" * 32, 2)
    remove = Target.property_entry("property_remove", "row", "%3Aab", "k" * 32)
    with pytest.raises(ValueError):
        Target.property_entry("property", "row", "%3Aab", "k")  # appends name no entry
    with pytest.raises(ValueError):
        Target("property_rename", page_id="row", property_name="p")  # no entry key
    assert replace.key == remove.key == Target.files_property("row", "%3Aab").key
    assert replace.is_property and not Target.trash("b").is_property
    with Journal(tmp_path / "journal.db") as journal:
        _add(journal, replace)
        journal.add(remove, staged_path=None, name="a.png", size=0, sha256=None,
                    content_type=None)
        assert [e.target for e in journal.entries()] == [replace, remove]
    assert entry_key("https://s3.example/ws/f1/a.png?X-Amz-Signature=1") == \
        entry_key("https://other.example/ws/f1/a.png") == entry_key("/ws/f1/a.png")


def _set_schema(path: Path, version: int) -> int:
    """Mark the journal at ``path`` as of schema ``version``; the version it had."""
    conn = sqlite3.connect(path)
    try:
        had: int = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version={version}")
    finally:
        conn.close()
    return had


def _journal_of_schema_1(path: Path) -> Entry:
    """A journal with one entry, as a notionfs before property edits left it."""
    with Journal(path) as journal:
        kept = _add(journal, Target.files_property("row", "Files"))
    _set_schema(path, 1)
    return kept


def test_a_schema_1_journal_is_read_and_marked_2(tmp_path: Path) -> None:
    """What a notionfs before property edits left (schema 1) is finished by this one; a
    journal it marked 2 is refused by a notionfs that reads only 1."""
    path = tmp_path / "journal.db"
    kept = _journal_of_schema_1(path)
    with Journal(path) as journal:
        assert journal.entries() == [kept]
    assert _set_schema(path, 3) == 2
    with pytest.raises(ConfigError, match="journal schema 3, this notionfs reads 2"):
        Journal(path)


def test_reading_entries_read_only_checks_the_schema_and_changes_nothing(tmp_path: Path) -> None:
    """``read_entries`` (``notionfs uploads``) reads what the opener reads and no more: an
    older schema it takes is left unmarked, a newer one or another database refused."""
    path = tmp_path / "journal.db"
    kept = _journal_of_schema_1(path)
    assert read_entries(path) == [kept]
    assert _set_schema(path, 3) == 1  # read-only: not marked
    with pytest.raises(ConfigError, match="journal schema 3, this notionfs reads 2"):
        read_entries(path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ConfigError, match="not a notionfs upload journal"):
        read_entries(other)
    assert read_entries(tmp_path / "absent.db") == []
