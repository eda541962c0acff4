"""The metadata cache's files: where and whose they are, private modes, checks, set-aside copies."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import Settings

__all__ = [
    "APPLICATION_ID",
    "BUSY_CODES",
    "DB_SUFFIX",
    "HIGH_WATER_STATE",
    "KEEP_SET_ASIDE",
    "SCHEMA_VERSION",
    "StoreIdentity",
    "StoreInfo",
    "cache_root",
    "check_secret_free",
    "database_files",
    "database_name",
    "describe",
    "error_code",
    "open_connections",
    "query_info",
    "read_info",
    "set_aside_files",
]

SCHEMA_VERSION = 1
# PRAGMA application_id: marks a file as ours ("nfsm"), so a foreign SQLite file is told apart.
APPLICATION_ID = 0x6E66736D
DB_SUFFIX = ".sqlite3"
# The state name under which the change feed keeps its high-water mark (shown by `cache info`).
HIGH_WATER_STATE = "feed.high_water"
# Set-aside files kept per database (newest first); older ones are removed when one is added.
KEEP_SET_ASIDE = 3
# How long a write transaction waits for another process's (a second mount of the same
# workspace); it runs on the writer thread, never on a caller's.
_WRITE_BUSY_TIMEOUT_MS = 5000
_READ_BUSY_TIMEOUT_MS = 2000

_SIDE_SUFFIXES = ("-wal", "-shm")
_SET_ASIDE = re.compile(
    r"^(?P<db>[0-9a-f]+\.sqlite3)\.(?P<kind>corrupt|old)-[0-9TZ]+(-\d+)?(-wal|-shm)?$"
)

# Last defence against credentials reaching the disk (the caller never stores them): a signed
# URL's query (S3's X-Amz-* fields, Notion's own file URLs' `signature=`), also URL-encoded,
# and Notion tokens (internal integrations: `secret_` or, since 2024, `ntn_`, then 40+ chars).
_SIGNED_QUERY = re.compile(
    r"(?:signature|x-amz-credential|x-amz-security-token)(?:=|%3d)", re.IGNORECASE
)
_TOKEN = re.compile(r"(?:secret_|ntn_)[A-Za-z0-9]{20}")

# SQLite primary result codes (sqlite3.h) that mean "this disk cannot take writes here".
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26
_CORRUPT_CODES = frozenset({_SQLITE_CORRUPT, _SQLITE_NOTADB})
BUSY_CODES = frozenset({_SQLITE_BUSY, _SQLITE_LOCKED})

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE listings (folder_key TEXT PRIMARY KEY, fetched_at REAL NOT NULL,"
    " payload TEXT NOT NULL)",
    "CREATE TABLE sizes (file_key TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """Where the metadata databases live: ``<notionfs cache dir>/metadata``.

    The cache dir is ``$NOTIONFS_CACHE_DIR``, else ``$XDG_CACHE_HOME/notionfs``, else
    ``~/.cache/notionfs`` (``env`` defaults to the process environment, read by config).
    """
    return Path(Settings.from_env(env).cache_dir) / "metadata"


@dataclass(frozen=True)
class StoreIdentity:
    """What a cache belongs to: served only to a mount with the same four values."""

    api_url: str
    workspace_id: str
    bot_id: str  # the integration's bot user: another integration sees other pages
    notion_version: str  # listings parsed under one version are not valid under another

    def __post_init__(self) -> None:
        # "https://api.notion.com/" and "https://api.notion.com" are one API.
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StoreIdentity:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("identity is not an object")
        fields = ("api_url", "workspace_id", "bot_id", "notion_version")
        if set(data) != set(fields) or not all(isinstance(data[f], str) for f in fields):
            raise ValueError("identity has unexpected fields")
        return cls(**{f: data[f] for f in fields})


def database_name(identity: StoreIdentity) -> str:
    """The file name of ``identity``'s database: a hash, so no identity shares another's file."""
    digest = hashlib.sha256(identity.to_json().encode()).hexdigest()
    return digest[:32] + DB_SUFFIX


@dataclass(frozen=True)
class StoreInfo:
    path: Path | None  # None for a no-op store
    identity: StoreIdentity
    enabled: bool  # False: a no-op store (nothing read, nothing written)
    bytes_on_disk: int  # the database and its -wal and -shm
    listings: int
    sizes: int
    oldest_fetched_at: float | None
    newest_fetched_at: float | None
    high_water: Any  # get_state(HIGH_WATER_STATE), None if unset
    created_at: float | None
    schema_version: int


def check_secret_free(text: str, what: str) -> None:
    """ValueError if ``text`` holds what looks like a Notion token or a signed URL's query.

    The message never quotes ``text``: it may be the very secret.
    """
    if _TOKEN.search(text):
        raise ValueError(f"refusing to store {what}: it holds what looks like a Notion token")
    if _SIGNED_QUERY.search(text):
        raise ValueError(f"refusing to store {what}: it holds what looks like a signed URL")



# ---- files and modes ------------------------------------------------------------------------


def _ensure_private_dir(root: Path) -> None:
    """``root`` exists and is ours, readable by us alone whatever the umask.

    A new directory is made 0700; an existing one loses any group and other bits, but keeps
    its owner bits (a directory its owner made read-only stays so: the store then keeps
    nothing).
    """
    existed = root.is_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = root.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{root} is not a directory")
    if st.st_uid != os.geteuid():
        raise PermissionError(f"{root} belongs to another user")
    mode = stat.S_IMODE(st.st_mode)
    if not existed and mode != 0o700:
        os.chmod(root, 0o700)
    elif mode & 0o077:
        os.chmod(root, mode & 0o700)


def _ensure_private_file(path: Path) -> None:
    """``path`` exists, is a regular file of ours, readable by us alone (no symlink followed).

    A new file is made 0600; an existing one loses any group and other bits. An existing
    database is never opened here: closing any descriptor of a file drops every POSIX lock
    this process holds on it (fcntl(2)), SQLite's included, so another connection to it in
    this process would lose its locks (and a second process could then delete its WAL).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
        finally:
            os.close(fd)
    for name in (str(path), *(f"{path}{suffix}" for suffix in _SIDE_SUFFIXES)):
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            if name == str(path):
                raise
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise PermissionError(f"{name} is not a regular file of ours")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(name, stat.S_IMODE(st.st_mode) & 0o700)


def _set_aside(path: Path, kind: str) -> Path:
    """Move ``path`` (and its -wal/-shm) to ``<name>.<kind>-<UTC time>``; the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{kind}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{kind}-{stamp}-{n}")
    # The -wal first: a main file without its WAL is read as it was at the last checkpoint,
    # while a WAL left behind would be replayed into the fresh database made next.
    for suffix in _SIDE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    os.replace(path, target)
    _prune_set_aside(path)
    return target


def _prune_set_aside(path: Path) -> None:
    """Keep the newest KEEP_SET_ASIDE set-aside copies of ``path``'s database."""
    mains = sorted(
        (p for p in set_aside_files(path.parent)
         if p.name.startswith(path.name + ".") and not p.name.endswith(_SIDE_SUFFIXES)),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    for old in mains[KEEP_SET_ASIDE:]:
        for victim in (old, *(Path(f"{old}{s}") for s in _SIDE_SUFFIXES)):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()


def database_files(root: Path) -> list[Path]:
    """The databases under ``root`` (by name; sorted), not their -wal/-shm or set-aside copies."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return sorted(
        p for p in entries
        if p.name.endswith(DB_SUFFIX) and re.fullmatch(r"[0-9a-f]+", p.name[: -len(DB_SUFFIX)])
    )


def set_aside_files(root: Path) -> list[Path]:
    """Files that a corrupt, foreign or outdated database was moved to (with their -wal/-shm)."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if _SET_ASIDE.match(p.name))


def _disk_bytes(path: Path) -> int:
    total = 0
    for name in (str(path), *(f"{path}{s}" for s in _SIDE_SUFFIXES)):
        with contextlib.suppress(OSError):
            total += os.stat(name).st_size
    return total


# ---- SQLite ---------------------------------------------------------------------------------


def error_code(exc: sqlite3.Error) -> int:
    """``exc``'s SQLite primary result code (0 if it carries none)."""
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF


def _is_corruption(exc: sqlite3.Error) -> bool:
    if error_code(exc) in _CORRUPT_CODES:
        return True
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE), never
    # implicitly by the module, so a read never holds one open.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


class _Unusable(Exception):
    """The database is corrupt, foreign or outdated: set aside as ``kind``, for ``why``."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.why = why


def _check_and_prepare(conn: sqlite3.Connection, identity: StoreIdentity) -> None:
    """Ready ``conn``'s database for ``identity`` (creating the schema in an empty file)."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        raise _Unusable("corrupt", "fails its integrity check")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Checked inside the write lock: two mounts opening one new file create it once.
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if empty and _pragma(conn, "user_version") == 0 and _pragma(conn, "application_id") == 0:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('identity', ?), ('created_at', ?)",
                (identity.to_json(), json.dumps(time.time())),
            )
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    if _pragma(conn, "application_id") != APPLICATION_ID:
        raise _Unusable("old", "is not a notionfs metadata cache")
    version = _pragma(conn, "user_version")
    if version != SCHEMA_VERSION:
        raise _Unusable("old", f"has schema version {version}, this notionfs uses {SCHEMA_VERSION}")
    stored = _stored_identity(conn)
    if stored != identity:
        raise _Unusable("old", "belongs to another workspace, integration, API or version")
    # WAL: readers never wait for the writer; NORMAL sync: a power cut may lose the last
    # batch, never the database's consistency (enough for a cache).
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL (journal mode stays {mode})")
    conn.execute("PRAGMA synchronous=NORMAL")
    # A deleted listing (a trashed page's titles) is zeroed, not left in a free page.
    conn.execute("PRAGMA secure_delete=ON")


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def _stored_identity(conn: sqlite3.Connection) -> StoreIdentity | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        return StoreIdentity.from_json(row[0]) if row else None
    except (sqlite3.DatabaseError, ValueError, TypeError):
        return None


def query_info(
    conn: sqlite3.Connection, path: Path, identity: StoreIdentity
) -> StoreInfo:
    """Counts and size on disk of the database ``conn`` reads (at ``path``)."""
    listings, oldest, newest = conn.execute(
        "SELECT count(*), min(fetched_at), max(fetched_at) FROM listings"
    ).fetchone()
    sizes = conn.execute("SELECT count(*) FROM sizes").fetchone()[0]
    row = conn.execute("SELECT value FROM state WHERE name = ?", (HIGH_WATER_STATE,)).fetchone()
    created = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
    return StoreInfo(
        path=path,
        identity=identity,
        enabled=True,
        bytes_on_disk=_disk_bytes(path),
        listings=int(listings),
        sizes=int(sizes),
        oldest_fetched_at=oldest,
        newest_fetched_at=newest,
        high_water=_loads(row[0]) if row else None,
        created_at=_loads(created[0]) if created else None,
        schema_version=_pragma(conn, "user_version"),
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _connect_query_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write; it leaves no -wal/-shm behind where it can help it.

    A read-only (mode=ro) connection to a WAL database makes a -wal and -shm it cannot
    remove when it closes; a read-write one removes them when it is the last to close, as
    any SQLite user does. So read-write with writes disabled, read-only where the directory
    cannot be written.
    """
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path, _READ_BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA query_only=1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        if error_code(exc) not in (_SQLITE_CANTOPEN, _SQLITE_READONLY, _SQLITE_PERM):
            raise
    conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={_READ_BUSY_TIMEOUT_MS}")
    return conn


def read_info(path: Path) -> StoreInfo:
    """What a database holds, read without writing anything (``notionfs cache info``).

    Raises OSError or sqlite3.DatabaseError when it cannot be read or is not a store of
    this schema version.
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    conn = _connect_query_only(path)
    try:
        if _pragma(conn, "application_id") != APPLICATION_ID:
            raise sqlite3.DatabaseError("not a notionfs metadata cache")
        version = _pragma(conn, "user_version")
        if version != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} (this notionfs reads {SCHEMA_VERSION})"
            )
        identity = _stored_identity(conn)
        if identity is None:
            raise sqlite3.DatabaseError("no identity recorded")
        return query_info(conn, path, identity)
    finally:
        conn.close()


def open_connections(
    path: Path, identity: StoreIdentity, warn: Callable[[str], None]
) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """A checked writer and a reader of ``identity``'s database at ``path`` (made if absent).

    A corrupt, foreign or outdated database is set aside (``warn`` says where) and a fresh
    one made. Raises OSError or sqlite3.Error when the directory or the disk cannot be used.
    """
    _ensure_private_dir(path.parent)
    writer = _open_writer(path, identity, warn)
    try:
        reader = _connect(path, _READ_BUSY_TIMEOUT_MS)
    except BaseException:
        writer.close()
        raise
    return writer, reader


def _open_writer(
    path: Path, identity: StoreIdentity, warn: Callable[[str], None]
) -> sqlite3.Connection:
    for _attempt in range(3):
        _ensure_private_file(path)
        conn = _connect(path, _WRITE_BUSY_TIMEOUT_MS)
        try:
            _check_and_prepare(conn, identity)
            _ensure_private_file(path)  # the -wal and -shm just made (by path only)
            return conn
        except _Unusable as exc:
            problem = exc
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                conn.close()
                raise
            problem = _Unusable("corrupt", f"is damaged ({exc})")
        except BaseException:
            conn.close()
            raise
        conn.close()
        moved = _set_aside(path, problem.kind)
        warn(
            f"metadata cache {path} {problem.why}: moved it to {moved.name} and "
            "started a fresh one"
        )
    raise sqlite3.DatabaseError(f"{path} stays unusable after being set aside")


def describe(exc: BaseException) -> str:
    """A short reason for a warning: an OSError's strerror, else the message or the type."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
