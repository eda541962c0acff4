"""The metadata cache's writer: pending writes, the newest per key, committed in batches."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .storefile import BUSY_CODES, describe, error_code

__all__ = ["BatchWriter", "Key", "Row"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One pending write; compared by identity, so a newer write to its key is never lost."""

    fetched_at: float = 0.0
    text: str = ""  # JSON payload (listing, state)
    size: int = 0
    delete: bool = False


Key = tuple[str, str]  # (table, key): ("listing" | "size" | "state", key)


class BatchWriter:
    """The pending writes of one store and the one thread that commits them.

    ``queue`` never waits on the disk. The thread commits every write queued before a moment,
    and none after, in one transaction at most every ``batch_interval_s`` or on ``flush``. A
    write the disk refuses disables the writer with one ``warn`` (from the thread): pending
    writes are dropped and later ones ignored.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path | None,
        *,
        warn: Callable[[str], None],
        batch_interval_s: float,
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._warn = warn
        self._batch_interval_s = batch_interval_s
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[Key, Row] = {}
        self._dirty_since: float | None = None
        self._queued = 0  # writes accepted so far
        self._committed = 0  # of which on disk (or dropped, once disabled)
        self._flush_wanted = False
        self._stopping = False
        self._enabled = True
        self._closed = False
        self._busy_logged = False
        self._thread = threading.Thread(
            target=self._write_loop, name="notionfs-store", daemon=True
        )
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def queue(self, key: Key, row: Row) -> None:
        with self._cond:
            if not self._enabled or self._closed:
                return
            self._pending[key] = row
            self._queued += 1
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
                self._cond.notify_all()

    def pending_rows(self, table: str) -> dict[str, Row]:
        with self._cond:
            return {key: row for (t, key), row in self._pending.items() if t == table}

    def pending_row(self, table: str, key: str) -> Row | None:
        with self._cond:
            return self._pending.get((table, key))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Commit every write made before this call; True once they are on disk.

        False if ``timeout_s`` passed first, or the writer is disabled.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._queued
            if self._committed >= target:
                return self._enabled
            self._flush_wanted = True
            self._cond.notify_all()
            while self._committed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._enabled

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, stop the writer thread and close its connection. Idempotent."""
        with self._cond:
            if self._closed:
                return
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # ---- the writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return  # stopping, all written
                # Gather writes for one batch unless a flush or a close wants them now.
                assert self._dirty_since is not None
                due = self._dirty_since + self._batch_interval_s
                while not (self._flush_wanted or self._stopping):
                    remaining = due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = dict(self._pending)
                upto = self._queued
                self._flush_wanted = False
            try:
                self._commit(batch)
            except sqlite3.Error as exc:
                if error_code(exc) in BUSY_CODES and not self._stopping:
                    self._retry_later(exc)
                    continue
                self._disable(f"cannot write to {self.path} ({describe(exc)})")
                return
            except Exception as exc:  # never leave a flush waiting on a dead thread
                logger.exception("metadata cache writer failed")
                self._disable(f"writing {self.path} failed ({describe(exc)})")
                return
            with self._cond:
                for key, row in batch.items():
                    if self._pending.get(key) is row:
                        del self._pending[key]
                self._committed = max(self._committed, upto)
                self._dirty_since = time.monotonic() if self._pending else None
                self._cond.notify_all()

    def _commit(self, batch: dict[Key, Row]) -> None:
        conn = self._conn
        assert conn is not None
        listings: list[tuple[str, float, str]] = []
        gone: list[tuple[str]] = []
        sizes: list[tuple[str, int]] = []
        states: list[tuple[str, str]] = []
        for (table, key), row in batch.items():
            if table == "listing":
                if row.delete:
                    gone.append((key,))
                else:
                    listings.append((key, row.fetched_at, row.text))
            elif table == "size":
                sizes.append((key, row.size))
            else:
                states.append((key, row.text))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO listings(folder_key, fetched_at, payload) VALUES (?, ?, ?) "
                "ON CONFLICT(folder_key) DO UPDATE SET fetched_at = excluded.fetched_at, "
                "payload = excluded.payload",
                listings,
            )
            conn.executemany("DELETE FROM listings WHERE folder_key = ?", gone)
            conn.executemany(
                "INSERT INTO sizes(file_key, size) VALUES (?, ?) "
                "ON CONFLICT(file_key) DO UPDATE SET size = excluded.size",
                sizes,
            )
            conn.executemany(
                "INSERT INTO state(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                states,
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _retry_later(self, exc: sqlite3.Error) -> None:
        # Another process (a second mount of this workspace) holds the write lock: keep
        # the writes and try again after one more interval.
        if not self._busy_logged:
            self._busy_logged = True
            logger.info("metadata cache %s busy (%s); retrying", self.path, exc)
        with self._cond:
            self._dirty_since = time.monotonic()
            self._cond.wait(self._batch_interval_s)

    def _disable(self, reason: str) -> None:
        with self._cond:
            self._enabled = False
            self._pending.clear()
            self._committed = self._queued
            self._dirty_since = None
            self._cond.notify_all()
        self._warn(
            f"metadata cache disabled: {reason}; the mount goes on without it "
            "(what was written before stays)"
        )
