"""Persistent metadata cache: a SQLite database per workspace and integration, batched writes."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .storefile import (
    APPLICATION_ID,
    DB_SUFFIX,
    HIGH_WATER_STATE,
    KEEP_SET_ASIDE,
    SCHEMA_VERSION,
    StoreIdentity,
    StoreInfo,
    cache_root,
    check_secret_free,
    database_files,
    database_name,
    describe,
    open_connections,
    query_info,
    read_info,
    set_aside_files,
)
from .storewriter import BatchWriter, Key, Row

__all__ = [
    "APPLICATION_ID",
    "DB_SUFFIX",
    "HIGH_WATER_STATE",
    "KEEP_SET_ASIDE",
    "SCHEMA_VERSION",
    "MetadataStore",
    "StoreIdentity",
    "StoreInfo",
    "cache_root",
    "check_secret_free",
    "database_name",
    "database_files",
    "read_info",
    "set_aside_files",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_INTERVAL_S = 0.5


def _dump(value: Any, what: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot store {what}: not JSON ({exc})") from None
    check_secret_free(text, what)
    return text


def _check_key(key: str, what: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what} must be a non-empty string")
    check_secret_free(key, what)


class MetadataStore:
    """Listings, sizes and small state on disk for one workspace and integration.

    Writes from any thread land in an in-memory table of pending writes (the newest per
    key) at once; one writer thread (``storewriter.BatchWriter``) commits them in a
    transaction at most every ``batch_interval_s`` or on ``flush()``, so a caller never
    waits on the disk. Each commit writes every write made before a moment, and none after,
    so the database always holds the caller's state as of some moment (a high-water mark is
    never ahead of the listings it covers). Reads see pending writes first, then the database.

    A store that cannot be written degrades to a no-op store (``enabled`` False) with one
    warning: puts are dropped and reads find nothing. ``warn`` may be called from the
    writer thread.
    """

    def __init__(
        self,
        identity: StoreIdentity,
        *,
        path: Path | None = None,
        writer: sqlite3.Connection | None = None,
        reader: sqlite3.Connection | None = None,
        warn: Callable[[str], None] | None = None,
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    ) -> None:
        """Use ``open`` or ``noop``; this wires already-checked connections."""
        self.identity = identity
        self.path = path
        self._reader = reader
        self._read_lock = threading.Lock()
        self._batch: BatchWriter | None = None
        if writer is not None and reader is not None:
            self._batch = BatchWriter(
                writer, path,
                warn=warn or (lambda message: logger.warning("%s", message)),
                batch_interval_s=batch_interval_s,
            )

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: Path,
        identity: StoreIdentity,
        *,
        warn: Callable[[str], None],
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    ) -> MetadataStore:
        """The store for ``identity`` under ``root``; never raises for the disk's sake.

        A corrupt, foreign or outdated database is set aside (with a warning) and a fresh
        one made; a directory or disk that cannot be written gives a no-op store.
        """
        path = Path(root) / database_name(identity)
        try:
            writer, reader = open_connections(path, identity, warn)
        except (OSError, sqlite3.Error) as exc:
            warn(
                f"metadata cache disabled: cannot use {path} ({describe(exc)}); "
                "the mount works without it, starting from Notion each time"
            )
            return cls.noop(identity)
        return cls(
            identity, path=path, writer=writer, reader=reader, warn=warn,
            batch_interval_s=batch_interval_s,
        )

    @classmethod
    def noop(cls, identity: StoreIdentity) -> MetadataStore:
        """A store that keeps nothing (no cache wanted, or none possible)."""
        return cls(identity)

    # ---- state ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._batch is not None and self._batch.enabled

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writes (never wait on the disk) ----------------------------------------------------

    def put_listing(self, folder_key: str, fetched_at: float, payload: Any) -> None:
        """Remember ``payload`` as ``folder_key``'s listing, fetched at ``fetched_at`` (epoch s)."""
        _check_key(folder_key, "a listing's folder key")
        if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float) or not (
            math.isfinite(fetched_at)
        ):
            raise ValueError("fetched_at must be a finite number of seconds")
        text = _dump(payload, "a listing")
        self._queue(("listing", folder_key), Row(fetched_at=float(fetched_at), text=text))

    def delete_listing(self, folder_key: str) -> None:
        _check_key(folder_key, "a listing's folder key")
        self._queue(("listing", folder_key), Row(delete=True))

    def put_size(self, file_key: str, size: int) -> None:
        _check_key(file_key, "a file key")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("a size must be a non-negative int")
        self._queue(("size", file_key), Row(size=size))

    def put_state(self, name: str, value: Any) -> None:
        _check_key(name, "a state name")
        self._queue(("state", name), Row(text=_dump(value, f"state {name!r}")))

    def _queue(self, key: Key, row: Row) -> None:
        if self._batch is not None:
            self._batch.queue(key, row)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Commit every write made before this call; True once they are on disk.

        False if ``timeout_s`` passed first, or the store keeps nothing (no-op or disabled).
        """
        return False if self._batch is None else self._batch.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, stop the writer thread and close the database. Idempotent."""
        if self._batch is not None:
            self._batch.close(timeout_s)
        with self._read_lock:
            if self._reader is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._reader.close()
            self._reader = None

    # ---- reads ------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._read_lock:
            if self._reader is None or not self.enabled:
                return []
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                logger.warning("metadata cache %s: read failed (%s)", self.path, describe(exc))
                return []

    def _pending_rows(self, table: str) -> dict[str, Row]:
        return {} if self._batch is None else self._batch.pending_rows(table)

    def _pending_row(self, table: str, key: str) -> Row | None:
        return None if self._batch is None else self._batch.pending_row(table, key)

    def get_listing(self, folder_key: str) -> tuple[float, Any] | None:
        """``(fetched_at, payload)`` of ``folder_key``'s listing, or None."""
        row = self._pending_row("listing", folder_key)
        if row is not None:
            return None if row.delete else (row.fetched_at, json.loads(row.text))
        found = self._read(
            "SELECT fetched_at, payload FROM listings WHERE folder_key = ?", (folder_key,)
        )
        if not found:
            return None
        payload = _loads_or_missing(found[0][1])
        return None if payload is _MISSING else (float(found[0][0]), payload)

    def listings(self) -> Iterator[tuple[str, float, Any]]:
        """Every listing as ``(folder_key, fetched_at, payload)`` (to load at mount)."""
        pending = self._pending_rows("listing")
        for key, fetched_at, text in self._read(
            "SELECT folder_key, fetched_at, payload FROM listings"
        ):
            if key in pending:
                continue
            payload = _loads_or_missing(text)
            if payload is not _MISSING:
                yield key, float(fetched_at), payload
        for key, row in pending.items():
            if not row.delete:
                yield key, row.fetched_at, json.loads(row.text)

    def sizes(self) -> dict[str, int]:
        pending = self._pending_rows("size")
        found = {key: int(size) for key, size in self._read("SELECT file_key, size FROM sizes")}
        found.update((key, row.size) for key, row in pending.items())
        return found

    def get_state(self, name: str) -> Any:
        """The value last put under ``name``, or None."""
        row = self._pending_row("state", name)
        if row is not None:
            return json.loads(row.text)
        found = self._read("SELECT value FROM state WHERE name = ?", (name,))
        if not found:
            return None
        value = _loads_or_missing(found[0][0])
        return None if value is _MISSING else value

    def info(self) -> StoreInfo:
        """Counts and size on disk; flushes first (so not for a filesystem call's thread)."""
        if self.enabled and self.path is not None:
            self.flush()
            with self._read_lock:
                if self._reader is not None and self.enabled:
                    try:
                        return query_info(self._reader, self.path, self.identity)
                    except sqlite3.Error as exc:
                        logger.warning("metadata cache %s: %s", self.path, describe(exc))
        return StoreInfo(
            path=self.path if self.enabled else None,
            identity=self.identity,
            enabled=self.enabled,
            bytes_on_disk=0,
            listings=0,
            sizes=0,
            oldest_fetched_at=None,
            newest_fetched_at=None,
            high_water=None,
            created_at=None,
            schema_version=SCHEMA_VERSION,
        )


_MISSING = object()


def _loads_or_missing(text: str) -> Any:
    """A stored payload; _MISSING if it does not parse (the caller re-fetches it then)."""
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING

