"""MetadataStore: round trips, private modes, damaged and foreign databases, unwritable
disks, refused secrets, concurrent writers, and what survives a process that never closed."""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notionfs.store import (
    HIGH_WATER_STATE,
    KEEP_SET_ASIDE,
    SCHEMA_VERSION,
    MetadataStore,
    StoreIdentity,
    cache_root,
    database_files,
    database_name,
    read_info,
    set_aside_files,
)
from tests.e2e.storecheck import scan_cache

REPO = Path(__file__).resolve().parents[2]
IDENTITY = StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2025-09-03")
OTHER = StoreIdentity("https://api.notion.com", "ws-1", "bot-2", "2025-09-03")
TOKEN = "ntn_" + "a1B2c3D4e5" * 4 + "xyz"
SIGNED_URL = (
    "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/file/a.pdf?"
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101&"
    "X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=0123abcd&"
    "X-Amz-SignedHeaders=host"
)


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
def warns() -> Warnings:
    return Warnings()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "metadata"


@pytest.fixture
def opened(root: Path, warns: Warnings) -> Iterator[Callable[..., MetadataStore]]:
    stores: list[MetadataStore] = []

    def open_store(identity: StoreIdentity = IDENTITY, **kwargs: Any) -> MetadataStore:
        store = MetadataStore.open(root, identity, warn=warns, **kwargs)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def _db(root: Path, identity: StoreIdentity = IDENTITY) -> Path:
    return root / database_name(identity)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- where it lives -------------------------------------------------------------------------


def test_cache_root_follows_xdg_and_the_override(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert cache_root({"HOME": home}) == Path(home, ".cache", "notionfs", "metadata")
    assert cache_root({"HOME": home, "XDG_CACHE_HOME": "/var/c"}) == Path(
        "/var/c/notionfs/metadata"
    )
    # The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored.
    assert cache_root({"HOME": home, "XDG_CACHE_HOME": "rel"}) == Path(
        home, ".cache", "notionfs", "metadata"
    )
    assert cache_root(
        {"HOME": home, "XDG_CACHE_HOME": "/var/c", "NOTIONFS_CACHE_DIR": "/srv/nfs"}
    ) == Path("/srv/nfs/metadata")


def test_identity_decides_the_file(root: Path, opened: Callable[..., MetadataStore]) -> None:
    names = {
        database_name(IDENTITY),
        database_name(OTHER),
        database_name(StoreIdentity("https://api.notion.com", "ws-2", "bot-1", "2025-09-03")),
        database_name(StoreIdentity("http://127.0.0.1:1", "ws-1", "bot-1", "2025-09-03")),
        database_name(StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2022-06-28")),
    }
    assert len(names) == 5
    assert database_name(IDENTITY) == database_name(StoreIdentity(**vars(IDENTITY)))
    assert database_name(IDENTITY) == database_name(
        StoreIdentity("https://api.notion.com/", "ws-1", "bot-1", "2025-09-03")
    )
    a, b = opened(IDENTITY), opened(OTHER)
    a.put_state("x", "a")
    b.put_state("x", "b")
    assert a.flush() and b.flush()
    assert a.path != b.path and a.get_state("x") == "a" and b.get_state("x") == "b"
    assert database_files(root) == sorted([_db(root), _db(root, OTHER)])


# ---- round trips ----------------------------------------------------------------------------


def test_round_trip_before_and_after_flush_and_reopen(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    payload = {"children": [{"id": "p1", "title": "Ünïcode ✓", "edited": "2024-01-01"}], "n": 2}
    store = opened()
    assert store.enabled and store.path == _db(root)
    store.put_listing("folder-a", 1000.5, payload)
    store.put_listing("folder-b", 2000.0, [1, 2, 3])
    store.put_size("file-1", 123_456_789_012)
    store.put_size("file-2", 0)
    store.put_state(HIGH_WATER_STATE, {"time": "2024-01-01T00:00:00.000Z", "ids": ["a"]})
    store.put_state("titles", {"p1": "One"})
    # Pending writes are visible at once, before the writer commits them.
    assert store.get_listing("folder-a") == (1000.5, payload)
    assert store.flush()
    assert store.get_listing("folder-a") == (1000.5, payload)
    assert store.get_listing("missing") is None
    assert store.get_state("missing") is None
    store.close()
    again = opened()
    assert again.get_listing("folder-a") == (1000.5, payload)
    assert sorted(again.listings()) == [
        ("folder-a", 1000.5, payload),
        ("folder-b", 2000.0, [1, 2, 3]),
    ]
    assert again.sizes() == {"file-1": 123_456_789_012, "file-2": 0}
    assert again.get_state(HIGH_WATER_STATE)["ids"] == ["a"]
    assert again.get_state("titles") == {"p1": "One"}
    assert warns.messages == []


def test_overwrite_delete_and_pending_merge(opened: Callable[..., MetadataStore]) -> None:
    store = opened(batch_interval_s=60.0)  # nothing reaches the disk without a flush
    store.put_listing("a", 1.0, "old")
    store.put_listing("b", 1.0, "b")
    assert store.flush()
    store.put_listing("a", 2.0, "new")
    store.delete_listing("b")
    store.put_listing("c", 3.0, None)
    store.put_size("s", 5)
    store.put_size("s", 6)
    # Reads merge the pending writes over what is on disk.
    assert store.get_listing("a") == (2.0, "new")
    assert store.get_listing("b") is None
    assert sorted(store.listings()) == [("a", 2.0, "new"), ("c", 3.0, None)]
    assert store.sizes() == {"s": 6}
    assert store.flush()
    assert sorted(store.listings()) == [("a", 2.0, "new"), ("c", 3.0, None)]
    info = store.info()
    assert (info.listings, info.sizes) == (2, 1)
    store.delete_listing("never-there")
    assert store.flush()


def test_writes_are_batched_off_the_caller(
    opened: Callable[..., MetadataStore], root: Path
) -> None:
    store = opened(batch_interval_s=1.0)
    for i in range(50):
        store.put_listing(f"f{i}", float(i), {"i": i})
    # Not on disk yet: the writer waits for the batch interval.
    assert read_info(_db(root)).listings == 0
    deadline = time.monotonic() + 5
    while read_info(_db(root)).listings < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_info(_db(root)).listings == 50  # one batch, without a flush


def test_a_busy_database_never_blocks_a_put(
    opened: Callable[..., MetadataStore], root: Path
) -> None:
    """Another process holding the write lock delays the writer thread, never the caller."""
    store = opened(batch_interval_s=0.05)
    store.put_state("ready", True)
    assert store.flush()
    blocker = sqlite3.connect(_db(root), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        done = threading.Event()

        def puts() -> None:
            for i in range(200):
                store.put_size(f"k{i}", i)
            done.set()

        threading.Thread(target=puts, daemon=True).start()
        assert done.wait(2), "a put waited on the locked database"
        assert not store.flush(timeout_s=0.3)  # the writer is stuck behind the lock
        assert store.sizes()["k199"] == 199  # yet reads see the writes
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.flush(timeout_s=15)
    assert read_info(_db(root)).sizes == 200


def test_info(opened: Callable[..., MetadataStore], root: Path) -> None:
    store = opened()
    info = store.info()
    assert (info.listings, info.sizes, info.high_water) == (0, 0, None)
    assert info.oldest_fetched_at is None and info.enabled and info.path == _db(root)
    store.put_listing("a", 100.0, {})
    store.put_listing("b", 300.0, {})
    store.put_listing("c", 200.0, {})
    store.put_size("s", 1)
    store.put_state(HIGH_WATER_STATE, "2024-05-01T10:00:00.000Z")
    info = store.info()  # flushes first
    assert (info.listings, info.sizes) == (3, 1)
    assert (info.oldest_fetched_at, info.newest_fetched_at) == (100.0, 300.0)
    assert info.high_water == "2024-05-01T10:00:00.000Z"
    assert info.identity == IDENTITY and info.schema_version == SCHEMA_VERSION
    assert info.bytes_on_disk >= _db(root).stat().st_size > 0
    assert info.created_at is not None and abs(info.created_at - time.time()) < 60


def test_a_deleted_listing_leaves_nothing_on_disk(
    root: Path, opened: Callable[..., MetadataStore]
) -> None:
    """A trashed page's listing is zeroed on deletion, not kept in a free page."""
    store = opened()
    title = "Quarterly layoffs plan " + "z" * 300
    store.put_listing("trashed", 1.0, {"children": [{"title": title}]})
    store.put_listing("kept", 1.0, {"children": []})
    assert store.flush()
    store.delete_listing("trashed")
    store.close()  # checkpoints the WAL into the database and removes it
    assert title.encode() not in _db(root).read_bytes()


def test_bad_arguments_are_refused(opened: Callable[..., MetadataStore]) -> None:
    store = opened()
    with pytest.raises(ValueError):
        store.put_listing("", 1.0, {})
    with pytest.raises(ValueError):
        store.put_listing("a", float("nan"), {})
    with pytest.raises(ValueError):
        store.put_listing("a", 1.0, {"x": object()})
    with pytest.raises(ValueError):
        store.put_listing("a", 1.0, float("inf"))
    with pytest.raises(ValueError):
        store.put_size("a", -1)
    with pytest.raises(ValueError):
        store.put_size("a", True)
    assert store.flush()
    assert list(store.listings()) == [] and store.sizes() == {}


# ---- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"url": SIGNED_URL},
        [{"files": [{"name": "a.pdf", "url": SIGNED_URL}]}],
        {"query": "X-Amz-Signature=deadbeef"},
        {"query": "x-amz-credential=AKIA"},
        {"u": "https://x.example/a?X-Amz-Security-Token=abc"},
        {"u": "https://file.notion.so/f/f/ws/id/a.pdf?table=block&expirationTimestamp=1&signature=Zz"},
        {"u": "https://proxy.example/?to=https%3A%2F%2Fs3%2Fa%3FX-Amz-Signature%3Dabc"},
        {"token": TOKEN},
        {"token": "secret_" + "Q" * 43},
        {"text": f"Authorization: Bearer {TOKEN}"},
        {TOKEN: "as a key"},
    ],
)
def test_secret_looking_payloads_are_refused(
    payload: Any, opened: Callable[..., MetadataStore], root: Path
) -> None:
    store = opened()
    for put in (
        lambda: store.put_listing("folder", 1.0, payload),
        lambda: store.put_state("name", payload),
    ):
        with pytest.raises(ValueError, match="refusing") as caught:
            put()
        assert TOKEN not in str(caught.value) and "Signature=" not in str(caught.value)
    assert store.flush()
    store.close()
    assert read_info(_db(root)).listings == 0
    data = b"".join(p.read_bytes() for p in root.iterdir())
    assert TOKEN.encode() not in data and b"deadbeef" not in data


@pytest.mark.parametrize("key", [TOKEN, "folder?X-Amz-Signature=1"])
def test_secret_looking_keys_are_refused(key: str, opened: Callable[..., MetadataStore]) -> None:
    store = opened()
    with pytest.raises(ValueError, match="refusing"):
        store.put_listing(key, 1.0, {})
    with pytest.raises(ValueError, match="refusing"):
        store.put_size(key, 1)
    with pytest.raises(ValueError, match="refusing"):
        store.put_state(key, 1)


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "Top secret_plans", "url": "https://example.com/a.png?w=200"},
        {"title": "ntn_short", "note": "secret_"},
        {"title": "Digital signatures", "url": "https://example.com/sig"},
        {"external": "https://images.unsplash.com/photo-1?ixlib=rb-4.0.3&q=80"},
    ],
)
def test_ordinary_titles_and_urls_are_kept(
    payload: Any, opened: Callable[..., MetadataStore]
) -> None:
    store = opened()
    store.put_listing("f", 1.0, payload)
    assert store.flush()
    assert store.get_listing("f") == (1.0, payload)


# ---- modes ----------------------------------------------------------------------------------


def test_private_modes_under_umask_000(root: Path, opened: Callable[..., MetadataStore]) -> None:
    old = os.umask(0)
    try:
        store = opened()
        store.put_listing("a", 1.0, {"x": 1})
        assert store.flush()
        db = _db(root)
        assert _mode(root) == 0o700
        sides = [Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in sides)  # WAL mode, the store still open
        for path in [db, *sides]:
            assert _mode(path) == 0o600, path.name
    finally:
        os.umask(old)


def test_looser_modes_are_tightened(root: Path, opened: Callable[..., MetadataStore]) -> None:
    opened().close()
    db = _db(root)
    os.chmod(root, 0o755)
    os.chmod(db, 0o644)
    store = opened()
    assert (_mode(root), _mode(db)) == (0o700, 0o600)
    assert store.enabled


def test_a_symlinked_database_is_not_followed(
    root: Path, tmp_path: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    root.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    _db(root).symlink_to(elsewhere)
    store = opened()
    assert not store.enabled and len(warns.messages) == 1
    assert elsewhere.read_text() == "keep me"


# ---- damaged, outdated and foreign databases ------------------------------------------------


def _fill(opened: Callable[..., MetadataStore], n: int = 200) -> None:
    store = opened()
    for i in range(n):
        store.put_listing(f"f{i}", float(i), {"children": ["x" * 200] * 5})
    store.close()


def _assert_set_aside(
    root: Path, warns: Warnings, store: MetadataStore, kind: str, words: str
) -> None:
    assert store.enabled
    assert list(store.listings()) == [] and store.info().listings == 0
    assert len(warns.messages) == 1, warns.messages
    assert words in warns.messages[0] and "fresh" in warns.messages[0]
    aside = set_aside_files(root)
    assert [p.name.split(".")[2].split("-")[0] for p in aside] == [kind]
    assert aside[0].name in warns.messages[0]
    store.put_listing("new", 1.0, {"ok": True})
    assert store.flush()
    assert store.path is not None and read_info(store.path).listings == 1


def test_random_bytes_are_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    root.mkdir(parents=True)
    junk = os.urandom(50_000)
    _db(root).write_bytes(junk)
    store = opened()
    _assert_set_aside(root, warns, store, "corrupt", "damaged")
    assert set_aside_files(root)[0].read_bytes() == junk  # kept as it was, for a look


def test_a_truncated_database_is_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    _fill(opened)
    db = _db(root)
    data = db.read_bytes()
    assert len(data) > 16 * 4096
    db.write_bytes(data[: len(data) // 3])
    warns.messages.clear()
    store = opened()
    _assert_set_aside(root, warns, store, "corrupt", "damaged")


def test_a_damaged_page_is_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    _fill(opened)
    db = _db(root)
    with open(db, "r+b") as f:
        f.seek(4096 * 2 + 8)  # inside the second b-tree page's header and cell pointers
        f.write(os.urandom(2000))
    warns.messages.clear()
    store = opened()
    _assert_set_aside(root, warns, store, "corrupt", "damaged")


def test_another_schema_version_is_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    _fill(opened, 3)
    conn = sqlite3.connect(_db(root))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    store = opened()
    _assert_set_aside(root, warns, store, "old", f"schema version {SCHEMA_VERSION + 1}")


def test_a_foreign_identity_is_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    _fill(opened, 3)
    # Another integration's database under this one's name (copied, or a hash collision).
    os.replace(_db(root), _db(root, OTHER))
    store = opened(OTHER)
    _assert_set_aside(root, warns, store, "old", "another workspace, integration")


def test_a_foreign_sqlite_file_is_set_aside(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    root.mkdir(parents=True)
    conn = sqlite3.connect(_db(root))
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    store = opened()
    _assert_set_aside(root, warns, store, "old", "not a notionfs metadata cache")


def test_an_empty_file_is_just_initialised(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    root.mkdir(parents=True)
    _db(root).touch()
    store = opened()
    store.put_size("a", 1)
    assert store.flush() and store.enabled
    assert warns.messages == [] and set_aside_files(root) == []


def test_a_damaged_database_with_a_wal_keeps_a_few_copies(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    for round_ in range(KEEP_SET_ASIDE + 2):
        _kill_after_flush(root, n=round_ + 1)
        db = _db(root)
        assert Path(f"{db}-wal").stat().st_size > 0  # what the killed process committed
        with open(db, "r+b") as f:
            f.write(b"garbage!" * 16)  # the header: not a database any more
        store = opened()
        # The old WAL went with the damaged file (SQLite folds it in when it closes the
        # file, or it is moved along): none of it is replayed into the fresh database.
        assert store.enabled and store.info().listings == 0
        store.close()
        mains = [p for p in set_aside_files(root) if not p.name.endswith(("-wal", "-shm"))]
        assert len(mains) == min(round_ + 1, KEEP_SET_ASIDE)
        time.sleep(0.01)  # distinct mtimes: the newest are kept
    assert len(warns.messages) == KEEP_SET_ASIDE + 2


# ---- disks that cannot be written -----------------------------------------------------------


def _without_dac_override() -> None:
    """In the child before exec: root loses the right to ignore file modes (CAP_DAC_*)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


_UNWRITABLE = """
    import json, os, sys
    from pathlib import Path
    from notionfs.store import MetadataStore, StoreIdentity
    identity = StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2025-09-03")
    root = Path(sys.argv[1])
    warnings = []
    store = MetadataStore.open(root, identity, warn=warnings.append)
    store.put_listing("a", 1.0, {"x": 1})
    store.put_size("s", 1)
    store.put_state("t", 1)
    flushed = store.flush(timeout_s=5)
    out = dict(enabled=store.enabled, warnings=warnings, flushed=flushed,
               listing=store.get_listing("a"), sizes=store.sizes(),
               info_enabled=store.info().enabled)
    store.close()
    print(json.dumps(out))
"""


def _run_unprivileged(code: str, *args: str) -> dict[str, Any]:
    preexec = _without_dac_override if os.geteuid() == 0 else None
    return _run_with_args(code, args, preexec_fn=preexec)


def _run_with_args(code: str, args: tuple[str, ...], **kwargs: Any) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO, **kwargs,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def _assert_noop(outcome: dict[str, Any]) -> None:
    assert outcome["enabled"] is False and outcome["info_enabled"] is False
    assert len(outcome["warnings"]) == 1, outcome["warnings"]
    assert "metadata cache disabled" in outcome["warnings"][0]
    assert outcome["flushed"] is False  # nothing kept, and it says so
    assert outcome["listing"] is None and outcome["sizes"] == {}


def test_read_only_directory_gives_a_noop_store(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        _assert_noop(_run_unprivileged(_UNWRITABLE, str(parent / "metadata")))
    finally:
        parent.chmod(0o700)
    assert list(parent.iterdir()) == []


def test_read_only_existing_cache_gives_a_noop_store(
    root: Path, opened: Callable[..., MetadataStore]
) -> None:
    _fill(opened, 3)
    before = _db(root).read_bytes()
    root.chmod(0o500)
    try:
        _assert_noop(_run_unprivileged(_UNWRITABLE, str(root)))
    finally:
        root.chmod(0o700)
    assert _db(root).read_bytes() == before
    assert set_aside_files(root) == []  # unwritable is not damaged: nothing moved


def test_a_cache_dir_that_is_a_file_gives_a_noop_store(tmp_path: Path, warns: Warnings) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = MetadataStore.open(blocker / "metadata", IDENTITY, warn=warns)
    store.put_listing("a", 1.0, {})
    assert not store.enabled and not store.flush() and len(warns.messages) == 1
    store.close()


_DISK_FULL = """
    import json, os, resource, signal, sys
    from pathlib import Path
    from notionfs.store import MetadataStore, StoreIdentity
    identity = StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2025-09-03")
    root = Path(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    warnings = []
    store = MetadataStore.open(root, identity, warn=warnings.append)
    store.put_listing("small", 1.0, {"x": 1})
    first = store.flush()
    limit = os.path.getsize(store.path) + 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for i in range(200):
        store.put_listing(f"big{i}", 1.0, {"x": "y" * 10000})
    second = store.flush(timeout_s=10)
    after_full = list(warnings)
    store.put_listing("later", 1.0, {})  # dropped without a word
    store.close()
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    warnings2 = []
    full_at_open = MetadataStore.open(root / "fresh", identity, warn=warnings2.append)
    print(json.dumps(dict(first=first, second=second, enabled=store.enabled,
                          warnings=after_full, final_warnings=warnings,
                          open_enabled=full_at_open.enabled, open_warnings=warnings2)))
"""


def test_full_disk_disables_the_store_with_one_warning(root: Path) -> None:
    outcome = _run_with_args(_DISK_FULL, (str(root),))
    assert outcome["first"] is True
    assert outcome["second"] is False and outcome["enabled"] is False
    assert len(outcome["warnings"]) == 1 and "metadata cache disabled" in outcome["warnings"][0]
    assert outcome["final_warnings"] == outcome["warnings"]
    assert outcome["open_enabled"] is False and len(outcome["open_warnings"]) == 1
    # What was committed before the disk filled stays readable and consistent.
    info = read_info(_db(root))
    assert info.listings >= 1
    fresh = MetadataStore.open(root, IDENTITY, warn=pytest.fail)
    assert fresh.get_listing("small") == (1.0, {"x": 1})
    assert fresh.get_listing("later") is None
    fresh.close()


# ---- threads, close and crashes -------------------------------------------------------------


def test_eight_concurrent_writers(root: Path, opened: Callable[..., MetadataStore]) -> None:
    store = opened(batch_interval_s=0.02)
    per_thread = 300
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.put_listing(f"t{t}-f{i}", float(i), {"t": t, "i": i})
                store.put_size(f"t{t}-s{i}", t * 10_000 + i)
                store.put_state("shared", [t, i])
                if i % 50 == 0:
                    assert store.get_listing(f"t{t}-f{i}") == (float(i), {"t": t, "i": i})
                    store.flush()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.flush()
    store.close()
    again = opened()
    listings = {key: (at, payload) for key, at, payload in again.listings()}
    assert len(listings) == 8 * per_thread
    assert listings["t7-f299"] == (299.0, {"t": 7, "i": 299})
    sizes = again.sizes()
    assert len(sizes) == 8 * per_thread and sizes["t3-s17"] == 30_017
    assert again.get_state("shared") in [[t, per_thread - 1] for t in range(8)]


def test_close_flushes(root: Path, opened: Callable[..., MetadataStore]) -> None:
    store = opened(batch_interval_s=60.0)
    for i in range(100):
        store.put_size(f"s{i}", i)
    store.close()
    assert read_info(_db(root)).sizes == 100
    assert sorted(p.name for p in root.iterdir()) == [_db(root).name]  # no -wal/-shm left
    store.put_size("after", 1)  # ignored, no error
    store.close()


def test_an_abandoned_store_keeps_what_was_flushed(
    root: Path, opened: Callable[..., MetadataStore]
) -> None:
    first = opened(batch_interval_s=60.0)
    first.put_listing("flushed", 1.0, {"a": 1})
    assert first.flush()
    first.put_listing("unflushed", 2.0, {"b": 2})
    second = MetadataStore.open(root, IDENTITY, warn=pytest.fail)  # first never closed
    assert second.get_listing("flushed") == (1.0, {"a": 1})
    assert second.get_listing("unflushed") is None
    second.close()


_KILLED = """
    import json, os, sys
    from pathlib import Path
    from notionfs.store import MetadataStore, StoreIdentity
    identity = StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2025-09-03")
    store = MetadataStore.open(Path(sys.argv[1]), identity, warn=print,
                               batch_interval_s=60.0)
    for i in range(int(sys.argv[2])):
        store.put_listing(f"flushed-{i}", 1.0, {"i": i})
    store.put_state("feed.high_water", "2024-01-01T00:00:00.000Z")
    assert store.flush()
    store.put_listing("unflushed", 1.0, {})
    print(json.dumps({}), flush=True)
    os._exit(0)  # no close, no atexit: as if killed
"""


def _kill_after_flush(root: Path, n: int) -> None:
    _run_with_args(_KILLED, (str(root), str(n)))


def test_a_killed_process_keeps_what_was_flushed(
    root: Path, opened: Callable[..., MetadataStore], warns: Warnings
) -> None:
    _kill_after_flush(root, 20)
    assert Path(f"{_db(root)}-wal").exists()  # the WAL was never checkpointed
    store = opened()
    assert warns.messages == []
    assert {key for key, _at, _p in store.listings()} == {f"flushed-{i}" for i in range(20)}
    assert store.get_state(HIGH_WATER_STATE) == "2024-01-01T00:00:00.000Z"
    assert store.info().high_water == "2024-01-01T00:00:00.000Z"


_TWO_IN_ONE_PROCESS = """
    import sys
    from pathlib import Path
    from notionfs.store import MetadataStore, StoreIdentity
    identity = StoreIdentity("https://api.notion.com", "ws-1", "bot-1", "2025-09-03")
    root = Path(sys.argv[1])
    first = MetadataStore.open(root, identity, warn=print)
    first.put_size("first", 1)
    assert first.flush()
    second = MetadataStore.open(root, identity, warn=print)  # the first stays open
    second.put_size("second", 2)
    assert second.flush()
    print("ready", flush=True)
    sys.stdin.readline()
    first.put_size("later", 3)
    assert first.flush()
    first.close()
    second.close()
    print("done", flush=True)
"""


def _locks_of(pid: int) -> set[int]:
    """Inodes on which ``pid`` holds a POSIX lock (/proc/locks: "... PID MAJ:MIN:INODE ...")."""
    inodes = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "POSIX" in fields and str(pid) in fields:
            inodes.add(int(fields[fields.index(str(pid)) + 1].split(":")[2]))
    return inodes


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_other_connections_keep_their_locks(
    root: Path, opened: Callable[..., MetadataStore]
) -> None:
    """Opening a database never drops the locks another connection holds on it.

    Closing any descriptor of a file drops every POSIX lock the process holds on it; a
    process that lost SQLite's shared lock lets another believe it is the last user and
    delete the WAL under it.
    """
    opened().close()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_TWO_IN_ONE_PROCESS), str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        db = _db(root)
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        inodes = {p.stat().st_ino for p in files if p.exists()}
        assert {db.stat().st_ino, Path(f"{db}-shm").stat().st_ino} <= _locks_of(proc.pid)
        # Another user comes and goes (a `cache info`, a second mount): the WAL stays.
        assert read_info(db).sizes == 2
        visitor = opened()
        assert visitor.sizes() == {"first": 1, "second": 2}
        visitor.close()
        assert all(p.exists() for p in files)
        assert {p.stat().st_ino for p in files} == inodes
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(10)
    assert proc.stdout.read().strip() == "done"
    assert read_info(_db(root)).sizes == 3


def test_noop_store_is_harmless() -> None:
    store = MetadataStore.noop(IDENTITY)
    store.put_listing("a", 1.0, {})
    store.put_size("s", 1)
    store.put_state("x", 1)
    store.delete_listing("a")
    assert not store.flush()
    assert store.get_listing("a") is None and list(store.listings()) == []
    assert store.sizes() == {} and store.get_state("x") is None
    info = store.info()
    assert not info.enabled and info.path is None and info.listings == 0
    store.close()
    # Secrets are refused even by a store that keeps nothing: the caller learns at once.
    with pytest.raises(ValueError):
        store.put_state("x", TOKEN)


# ---- the secrets scan the end-to-end tests use ----------------------------------------------


def test_scan_cache_is_clean_for_ordinary_contents(
    root: Path, opened: Callable[..., MetadataStore]
) -> None:
    store = opened()
    store.put_listing("f", 1.0, {"files": [{"name": "a.pdf", "url": "https://example.com/a"}]})
    assert store.flush()
    store.close()
    assert scan_cache(root, TOKEN) == []


def test_scan_cache_finds_planted_secrets(root: Path, opened: Callable[..., MetadataStore]) -> None:
    """The scan the secrets test relies on finds what the store's guard would have refused."""
    opened().close()
    db = _db(root)
    conn = sqlite3.connect(db)
    # Past the guard, straight into the tables, and one string long enough to straddle
    # overflow pages (a byte search cannot see it whole).
    conn.execute("INSERT INTO state VALUES ('t', ?)", (json.dumps(TOKEN),))
    conn.execute("INSERT INTO listings VALUES ('f', 1.0, ?)", (json.dumps(SIGNED_URL),))
    long = "x" * 4090 + TOKEN + "y" * 9000
    conn.execute("INSERT INTO state VALUES ('long', ?)", (json.dumps(long),))
    conn.commit()
    conn.close()
    hits = scan_cache(root, TOKEN)
    found = {(h.what, h.where.split()[0]) for h in hits}
    assert ("the token", "row") in found and ("the token", "byte") in found
    assert ("X-Amz-Signature", "byte") in found and ("X-Amz-Signature", "row") in found
    assert ("X-Amz-Credential", "row") in found
    assert all(TOKEN not in str(h) for h in hits)
    rows = [h for h in hits if h.what == "the token" and h.where.startswith("row")]
    assert len(rows) == 2  # the plain one and the one split across overflow pages
    (root / "stray.log").write_text(f"Authorization: Bearer {TOKEN}")
    assert any(h.path.name == "stray.log" for h in scan_cache(root, TOKEN))
