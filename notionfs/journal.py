"""The upload journal: every pending write-back to Notion, durable across crashes (SQLite).

Why SQLite (the standard library's) rather than JSON lines: each state change is one small
transaction that is durable when it returns (WAL, synchronous=FULL) and atomic whatever
fields it touches, with no hand-made rename-and-compact cycle; entries are read back by
state and due time with a query; the metadata store (store.py) already relies on it.

One process at a time runs a journal: an exclusive flock on ``<journal>.lock`` (released by
the kernel when the process dies, so a crash never leaves it held). The journal never holds
the token or a signed URL: every text it stores is checked (store.check_secret_free), and
file identities are kept as hashes of URL paths (``file_key``), never the URLs themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from notionfs.errors import ConfigError
from notionfs.staging import ensure_private_dir
from notionfs.store import check_secret_free

__all__ = [
    "ACTIONS",
    "STATES",
    "UNFINISHED_STATES",
    "Entry",
    "Journal",
    "PROPERTY_ACTIONS",
    "Target",
    "entry_key",
    "file_key",
    "in_use",
    "read_entries",
    "staging_dir",
]

logger = logging.getLogger(__name__)

# What a row's files property takes: a new entry appended, an entry's file replaced in
# place, an entry removed, an entry renamed. Each rewrites the whole array (Notion's only
# way to change a files property), so entries of one property run one at a time.
PROPERTY_ACTIONS = ("property", "property_replace", "property_remove", "property_rename")
ACTIONS = ("append", "replace", "trash", "follow", *PROPERTY_ACTIONS)
# staged: bytes on disk, nothing sent; uploading: a file upload exists, some parts sent;
# uploaded: Notion has every byte; attaching: the attach request may have been sent (its
# outcome is checked before it is sent again); done; failed: Notion refused it for good.
STATES = ("staged", "uploading", "uploaded", "attaching", "done", "failed")
UNFINISHED_STATES = ("staged", "uploading", "uploaded", "attaching")
# 2: files-property targets that name an entry (replace, remove, rename; ``entry_key``,
# ``entry_index``). The table is unchanged: a version 1 journal is read as it is and marked
# 2, so a notionfs that knows only version 1 refuses it rather than misread a target.
SCHEMA_VERSION = 2
_MIGRATABLE = (1,)
_APPLICATION_ID = 0x6E667575  # "nfuu": a notionfs upload journal

_SCHEMA = (
    "CREATE TABLE entries ("
    " id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, action TEXT NOT NULL,"
    " target TEXT NOT NULL, staged_path TEXT, name TEXT, size INTEGER NOT NULL,"
    " sha256 TEXT, content_type TEXT, state TEXT NOT NULL, upload_id TEXT,"
    " upload_mode TEXT, part_bytes INTEGER, parts_total INTEGER, parts_done TEXT NOT NULL,"
    " upload_created TEXT, checks TEXT NOT NULL, result_id TEXT,"
    " attempts INTEGER NOT NULL, next_attempt_at REAL NOT NULL, last_error TEXT,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL)",
    "CREATE INDEX entries_state ON entries(state, next_attempt_at)",
)


def staging_dir(cache_dir: str, identity: str) -> Path:
    """``<cache_dir>/staging/<hash of identity>``: one staging area and journal per
    workspace and integration (``identity``: e.g. the metadata store's identity JSON)."""
    if not cache_dir:
        raise ConfigError("no cache directory: writes need one to stage their bytes")
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return Path(cache_dir) / "staging" / digest


def file_key(url: str) -> str:
    """A stable identity for a Notion file object: a hash of its URL's host and path. The
    path names the stored object; the query (the signature) changes with every read."""
    parts = urlsplit(url)
    return hashlib.sha256(f"{parts.netloc}{parts.path}".encode()).hexdigest()[:32]


def entry_key(url: str) -> str:
    """A files-property entry's identity: a hash of its URL's path (a bare path is taken as
    it is). The path names the stored file and is what the mount's listing keys an entry by;
    the query (the signature) changes with every read."""
    return hashlib.sha256(urlsplit(url).path.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Target:
    """Where an entry's file goes (or what it removes).

    - ``append``: a new ``block_kind`` block at the end of ``parent_id`` (a page or block);
    - ``replace``: the file of block ``block_id``, in place (same block, same position);
      ``expect_edited``: the block's last_edited_time when the file was opened, to refuse
      overwriting someone else's newer version (ConflictError);
    - ``property``: a new entry at the end of page ``page_id``'s files property
      ``property_name`` (its name or id), the existing entries kept in order;
    - ``property_replace``: the file of the entry ``entry_key`` (``entry_key()`` of its URL)
      of that property, in place (same position); an entry no longer there is a conflict
      (someone changed or removed it), never a silent append;
    - ``property_remove``: the entry ``entry_key`` taken out, the others kept in order;
    - ``property_rename``: the entry ``entry_key`` renamed (to the journal entry's name);
    - ``trash``: block ``block_id`` moved to the trash;
    - ``follow``: a later version of the file entry ``after`` (an ``append`` still under
      way) uploads: it waits for that entry (same key) and becomes, in the transaction that
      finishes it, a ``replace`` of the block it made, or, if it failed for good, an
      ``append`` of its own. Journalled at once, so a crash in between loses neither.

    ``entry_index``: where the entry was when the mount listed it; it only chooses between
    entries that share a URL path.
    """

    action: str
    parent_id: str | None = None
    block_kind: str | None = None
    block_id: str | None = None
    page_id: str | None = None
    property_name: str | None = None
    expect_edited: str | None = None
    after: str | None = None
    entry_key: str | None = None
    entry_index: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        needed = {
            "append": (self.parent_id, self.block_kind),
            "replace": (self.block_id,),
            "property": (self.page_id, self.property_name),
            "property_replace": (self.page_id, self.property_name, self.entry_key),
            "property_remove": (self.page_id, self.property_name, self.entry_key),
            "property_rename": (self.page_id, self.property_name, self.entry_key),
            "trash": (self.block_id,),
            "follow": (self.after, self.parent_id, self.block_kind),
        }[self.action]
        if not all(needed):
            raise ValueError(f"{self.action} target is missing its ids")

    @classmethod
    def append(cls, parent_id: str, block_kind: str) -> Target:
        return cls("append", parent_id=parent_id, block_kind=block_kind)

    @classmethod
    def replace(cls, block_id: str, *, expect_edited: str | None = None) -> Target:
        return cls("replace", block_id=block_id, expect_edited=expect_edited)

    @classmethod
    def files_property(cls, page_id: str, property_name: str) -> Target:
        return cls("property", page_id=page_id, property_name=property_name)

    @classmethod
    def property_entry(cls, action: str, page_id: str, property_name: str, entry_key: str,
                       entry_index: int | None = None) -> Target:
        """A ``property_replace``, ``property_remove`` or ``property_rename`` of one entry."""
        if action not in PROPERTY_ACTIONS[1:]:
            raise ValueError(f"{action!r} names no entry")
        return cls(action, page_id=page_id, property_name=property_name, entry_key=entry_key,
                   entry_index=entry_index)

    @classmethod
    def trash(cls, block_id: str) -> Target:
        return cls("trash", block_id=block_id)

    @classmethod
    def follow(cls, after: str, parent_id: str, block_kind: str) -> Target:
        return cls("follow", after=after, parent_id=parent_id, block_kind=block_kind)

    def settled(self, first: Entry | None) -> Target:
        """A ``follow`` target once its first version ``first`` finished (None: it never
        made a block): a replace of that block, or an append of its own."""
        assert self.action == "follow" and self.parent_id and self.block_kind
        if first is not None and first.state == "done" and first.result_id:
            return Target.replace(first.result_id)
        return Target.append(self.parent_id, self.block_kind)

    @property
    def is_property(self) -> bool:
        return self.action in PROPERTY_ACTIONS

    @property
    def key(self) -> str:
        """What two entries must not change at once: entries with one key run in order."""
        if self.action in ("append", "follow"):
            return f"children:{self.parent_id}"
        if self.is_property:
            return f"property:{self.page_id}:{self.property_name}"
        return f"block:{self.block_id}"

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if v is not None}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Target:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("target is not an object")
        return cls(**data)


@dataclass(frozen=True)
class Entry:
    """One pending write, as the journal holds it. Transitions make new entries
    (``dataclasses.replace``) that ``Journal.save`` persists."""

    id: str
    seq: int
    target: Target
    staged_path: str | None  # None for a trash
    name: str | None
    size: int
    sha256: str | None
    content_type: str | None
    state: str
    created_at: float
    updated_at: float
    upload_id: str | None = None
    upload_mode: str | None = None  # "single_part" | "multi_part"
    part_bytes: int | None = None
    parts_total: int | None = None
    parts_done: tuple[int, ...] = ()
    upload_created: str | None = None  # Notion's created_time of the upload (Notion's clock)
    checks: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    result_id: str | None = None  # the block the file ended in
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def but(self, **changes: Any) -> Entry:
        """A copy with ``changes`` (a transition, before it is saved)."""
        return replace(self, **changes)


class Journal:
    """The durable list of pending writes. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        ensure_private_dir(self.path.parent)
        self._lock_fd = _take_lock(Path(f"{self.path}.lock"))
        try:
            self._conn = _open(self.path)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._closed = False

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
            os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writes ----------------------------------------------------------------------------

    def add(
        self,
        target: Target,
        *,
        staged_path: Path | None,
        name: str | None,
        size: int,
        sha256: str | None,
        content_type: str | None,
    ) -> Entry:
        """A new entry in state ``staged``, durable when this returns."""
        now = self._clock()
        with self._lock:
            if target.action == "follow":
                target = self._follow(target)
            row = self._conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM entries").fetchone()
            entry = Entry(
                id=str(uuid.uuid4()),
                seq=int(row[0]),
                target=target,
                staged_path=None if staged_path is None else str(staged_path),
                name=name,
                size=size,
                sha256=sha256,
                content_type=content_type,
                state="staged",
                created_at=now,
                updated_at=now,
            )
            self._write(entry, insert=True)
        return entry

    def save(self, entry: Entry) -> Entry:
        """Persist ``entry`` (a transition of a journalled one); the saved copy."""
        if entry.state not in STATES:
            raise ValueError(f"unknown state {entry.state!r}")
        saved = entry.but(updated_at=self._clock())
        with self._lock:
            self._write(saved, insert=False)
        return saved

    def _follow(self, target: Target) -> Target:
        """A follow target as it may be journalled now: as is while its first version runs,
        settled if that one already finished. KeyError if the journal no longer holds it
        (tidied away after it landed: the caller knows its block)."""
        self._check_open()
        assert target.after is not None
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE id = ?",
                                  (target.after,)).fetchall()
        if not rows:
            raise KeyError(f"no journal entry {target.after}")
        first = _entry(rows[0])
        return target.settled(first) if first.finished else target

    def _settle_followers(self, first: Entry) -> None:
        """In ``first``'s finishing transaction: its followers become what they now are."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE action = 'follow'"
                                  ).fetchall()
        for row in rows:
            follower = _entry(row)
            if follower.target.after == first.id:
                self._conn.execute(
                    "UPDATE entries SET action = ?, target = ? WHERE id = ?",
                    (*_target_columns(follower.target.settled(first)), follower.id),
                )

    def delete(self, entry_id: str) -> None:
        with self._lock:
            self._check_open()
            with self._conn:
                self._conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))

    # ---- reads -----------------------------------------------------------------------------

    def get(self, entry_id: str) -> Entry | None:
        rows = self._select("WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def entries(self) -> list[Entry]:
        """Every entry, oldest first."""
        return self._select("", ())

    def unfinished(self) -> list[Entry]:
        """Every entry still to run (not done, not failed), oldest first."""
        marks = ",".join("?" * len(UNFINISHED_STATES))
        return self._select(f"WHERE state IN ({marks})", UNFINISHED_STATES)

    # ---- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the journal is closed")

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Entry]:
        with self._lock:
            self._check_open()
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM entries {where} ORDER BY seq",
                                      params).fetchall()
        return [_entry(row) for row in rows]

    def _write(self, entry: Entry, *, insert: bool) -> None:
        self._check_open()
        values = _row(entry)
        for what, value in zip(_COLUMN_NAMES, values, strict=True):
            if isinstance(value, str):
                check_secret_free(value, f"journal field {what}")
        with self._conn:
            if insert:
                marks = ",".join("?" * len(values))
                self._conn.execute(f"INSERT INTO entries ({_COLUMNS}) VALUES ({marks})", values)
            else:
                sets = ",".join(f"{name} = ?" for name in _COLUMN_NAMES[1:])
                done = self._conn.execute(f"UPDATE entries SET {sets} WHERE id = ?",
                                          (*values[1:], entry.id))
                if done.rowcount != 1:
                    raise KeyError(f"no journal entry {entry.id}")
                if entry.finished:
                    self._settle_followers(entry)


_COLUMN_NAMES = (
    "id", "seq", "action", "target", "staged_path", "name", "size", "sha256", "content_type",
    "state", "upload_id", "upload_mode", "part_bytes", "parts_total", "parts_done",
    "upload_created", "checks", "result_id", "attempts", "next_attempt_at", "last_error",
    "created_at", "updated_at",
)
_COLUMNS = ", ".join(_COLUMN_NAMES)


def _target_columns(target: Target) -> tuple[str, str]:
    return target.action, target.to_json()


def _row(entry: Entry) -> tuple[Any, ...]:
    return (
        entry.id, entry.seq, entry.target.action, entry.target.to_json(), entry.staged_path,
        entry.name, entry.size, entry.sha256, entry.content_type, entry.state, entry.upload_id,
        entry.upload_mode, entry.part_bytes, entry.parts_total,
        json.dumps(sorted(entry.parts_done)), entry.upload_created,
        json.dumps(dict(entry.checks), sort_keys=True, separators=(",", ":")), entry.result_id,
        entry.attempts, entry.next_attempt_at, entry.last_error, entry.created_at,
        entry.updated_at,
    )


def _entry(row: tuple[Any, ...]) -> Entry:
    data = dict(zip(_COLUMN_NAMES, row, strict=True))
    data.pop("action")
    data["target"] = Target.from_json(data["target"])
    data["parts_done"] = tuple(json.loads(data["parts_done"]))
    data["checks"] = MappingProxyType(json.loads(data["checks"]))
    return Entry(**data)


def read_entries(path: Path) -> list[Entry]:
    """Every entry of the journal at ``path``, oldest first, read-only: no lock taken, so
    also while a mount runs it (SQLite's WAL lets a reader see its last commit)."""
    if not Path(path).is_file():
        return []
    conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        _readable_version(conn, path)
        rows = conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [_entry(row) for row in rows]


def in_use(path: Path) -> bool:
    """Whether a process runs the journal at ``path`` now (holds its lock)."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it if it was ours
    return False


def _take_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"the upload journal {path.parent} is in use by another notionfs mount of this "
            "workspace (one mount at a time saves into a workspace)"
        ) from None
    return fd


def _readable_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of the journal ``conn`` has open: ConfigError unless it is one
    this notionfs reads (its own, or one it takes as its own)."""
    if conn.execute("PRAGMA application_id").fetchone()[0] != _APPLICATION_ID:
        raise ConfigError(f"{path} is not a notionfs upload journal")
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (SCHEMA_VERSION, *_MIGRATABLE):
        raise ConfigError(f"{path}: journal schema {version}, this notionfs reads "
                          f"{SCHEMA_VERSION}; finish its uploads with that version first")
    return version


def _open(path: Path) -> sqlite3.Connection:
    new = not path.exists()
    if new:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)  # no connection has it open yet: no SQLite lock to lose
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application_id == 0 and tables == 0:
            with conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        version = _readable_version(conn, path)
        if version in _MIGRATABLE:
            with conn:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            logger.info("upload journal %s: schema %d read as %d", path, version,
                        SCHEMA_VERSION)
        # Every commit reaches the disk before it returns: a journalled upload is a promise.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        # SQLite makes -wal and -shm with the database's mode; keep them private anyway.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
    except BaseException:
        conn.close()
        raise
    logger.debug("upload journal %s open", path)
    return conn
