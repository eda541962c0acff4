"""Writing one local file and sending its versions to Notion: staged bytes, flushes, versions.

What a program writes lands in the file's staged copy (staging.py) and goes to Notion
through the upload queue (uploadqueue.py) when the file is flushed or fsynced, so
``close()`` sees a failure; a failed upload stays staged and journalled and is retried in
the background. A version written while an earlier one still uploads follows it into the
same block; a version refused because the file changed in Notion meanwhile goes beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import (
    ConflictError,
    NotionFSError,
    NotWritableError,
    UploadFailedError,
    UploadStillRunningError,
)
from .journal import Entry, Target
from .locallayer import LocalFile, LocalLayer, close_staged, remember
from .nodes import Kind, Node
from .propentries import folder_key_of, landed_target, property_folder
from .uploadqueue import UploadQueue, new_block_target
from .workspace import NotionWorkspace

__all__ = ["LocalWrites", "WriteHandle", "check_folder", "dated"]

logger = logging.getLogger(__name__)


def check_folder(folder: Node, name: str) -> None:
    """NotWritableError unless a new file called ``name`` may go into ``folder``."""
    if folder.kind is Kind.FILES_PROPERTY and property_folder(folder.key) is not None:
        return  # a row's files property: the file becomes a new entry
    if folder.kind is not Kind.PAGE or not folder.object_id:
        raise NotWritableError(
            f"{name!r}: new files go into page folders and files properties only "
            f"(this is a {folder.kind.value} folder)"
        )


def dated(name: str, why: str, when: float | None = None) -> str:
    """``NAME (why YYYY-MM-DD HHMM).ext``: a version kept beside another (the local time
    ``when``, by default now)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    return f"{stem} ({why} {time.strftime('%Y-%m-%d %H%M', time.localtime(when))}){dot}{ext}"


class WriteHandle:
    """An open file of the local layer: a Reader with writes. Thread-safe per file."""

    def __init__(self, writes: LocalWrites, local: LocalFile) -> None:
        self._writes = writes
        self.local = local
        self._closed = False

    def read(self, offset: int, size: int) -> bytes:
        return self.local.staged.read(offset, size)

    def read_cached(self, offset: int, size: int) -> bytes:
        return self.local.staged.read(offset, size)

    def write(self, offset: int, data: bytes) -> int:
        return self._writes.write(self.local, offset, data)

    def truncate(self, length: int) -> None:
        self._writes.truncate(self.local, length)

    def flush(self) -> None:
        self._writes.flush(self.local)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writes.release(self.local)


class LocalWrites:
    """The writes to local files and the versions they send, from the first byte until
    Notion has the last version (``landed``)."""

    def __init__(
        self,
        workspace: NotionWorkspace,
        queue: UploadQueue,
        layer: LocalLayer,
        *,
        wait_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._ws = workspace
        self._queue = queue
        self._layer = layer
        self._wait_s = wait_s
        self._clock = clock

    def handle(self, local: LocalFile) -> WriteHandle:
        """One more open handle of ``local``."""
        self._layer.opened(local)
        return WriteHandle(self, local)

    def landed(self, entry: Entry) -> None:
        """An upload landed (this mount's, or one an earlier mount left): the folder it
        changed is listed anew on its next access."""
        target = entry.target
        key = None
        if target.action == "append" and target.parent_id:
            key = f"page:{target.parent_id}"
        elif target.is_property:
            key = folder_key_of(target)
        elif target.block_id:
            key = self._ws.folder_of_block(target.block_id)
        local, earlier = self._layer.of_entry(entry.id)
        if key is not None:
            if local is None and earlier is None:
                self._ws.invalidate_key(key)  # an earlier mount's upload: nothing shows it
            else:
                # This mount's file shows from the local layer until a listing fetched
                # after the upload shows Notion's: that listing can come behind the answer.
                self._ws.expire_key(key)
        if earlier is not None:
            # An earlier version landed; the later ones follow it into the same block.
            with earlier.lock:
                if entry.id in earlier.earlier:
                    earlier.earlier.remove(entry.id)
                if entry.result_id:
                    earlier.result_id = entry.result_id
            return
        if local is None:
            return
        # Landed after its program gave up waiting. Not under local.lock: a flush may hold
        # it while it waits for this very entry.
        if entry.result_id:
            local.result_id = entry.result_id
            local.target = landed_target(entry)
        local.following = False
        local.earlier.clear()
        local.done_at = self._clock()
        if local.dirty and local.opens == 0 and not local.scratch:
            # Written again while its first upload was pending: now a replace of its block.
            threading.Thread(target=self._hand_over, args=(local,), daemon=True,
                             name="notionfs-rewrite").start()

    def at_unmount(self, local: LocalFile) -> None:
        """A file changed but never flushed (still open) is journalled, to be uploaded by
        the next mount. (One whose last version Notion refused is journalled already.)"""
        if local.dirty and not local.scratch and not local.handed_over:
            try:
                with local.lock:
                    target, name = self._unmount_target(local)
                    self._queue.submit(local.staged, target, name=name)
                    local.handed_over = True
            except NotionFSError as error:
                logger.warning("%r: not uploaded, its staged copy kept: %s", local.name,
                               error)
                local.handed_over = True  # kept on disk, never deleted unasked

    def _unmount_target(self, local: LocalFile) -> tuple[Target, str]:
        """Where a file changed but not uploaded goes at unmount. Written again while its
        first upload (a new block) is still pending: once that lands, a replace of its
        block; if it does not land in time, beside it under a dated name, journalled like
        any save. Never dropped: the later bytes are what the program wrote last."""
        if local.target is None and local.entry_id is not None:
            try:
                self._settle_previous(local)
            except NotionFSError as exc:
                name = dated(local.name, "later version")
                logger.warning("%r: its first upload is still pending (%s); the later version "
                               "is kept beside it as %r", local.name, exc, name)
                if local.folder_id is None:
                    raise
                return self._new_target(local, name), name
        return local.target or self._new_target(local), local.name

    def _hand_over(self, local: LocalFile) -> None:
        try:
            with local.lock:
                if not local.dirty or local.target is None:
                    return
                entry = self._queue.submit(local.staged, local.target, name=local.name)
                local.entry_id, local.handed_over, local.dirty = entry.id, True, False
        except NotionFSError as error:
            logger.warning("%r: not uploaded, kept locally: %s", local.name, error)

    # ---- the bytes ---------------------------------------------------------------------------

    def write(self, local: LocalFile, offset: int, data: bytes) -> int:
        with local.lock:
            end = offset + len(data)
            if not local.scratch and end > local.staged.size:
                self._queue.check_size(end, what=repr(local.name))
            self._own(local)
            written = local.staged.write(offset, data)
            local.dirty = True
            local.version += 1
            return written

    def truncate(self, local: LocalFile, length: int) -> None:
        with local.lock:
            if not local.scratch and length > local.staged.size:
                self._queue.check_size(length, what=repr(local.name))
            self._own(local)
            local.staged.truncate(length)
            local.dirty = True
            local.version += 1

    def _own(self, local: LocalFile) -> None:
        """Before changing bytes the queue was handed: a fresh staged copy of our own."""
        if not local.handed_over:
            return
        fresh = self._queue.staging.create()
        try:
            offset = 0
            while chunk := local.staged.read(offset, 1 << 20):
                fresh.write(offset, chunk)
                offset += len(chunk)
        except BaseException:
            fresh.discard()
            raise
        local.staged.close()
        local.staged = fresh
        local.handed_over = False
        remember(local)

    # ---- the versions ------------------------------------------------------------------------

    def flush(self, local: LocalFile) -> None:
        """Upload what changed, waiting up to the deadline: a failure reaches close()."""
        with local.lock:
            if local.scratch or not local.dirty or local.removed:
                return
            if local.staged.size == 0 and local.target is None and local.entry_id is None:
                # A new file still empty: a close of one of several descriptors (dd opens
                # its output, then moves it to stdout), or `touch`. The last close hands
                # it over (see release); bytes written before then go up once.
                return
            if local.handed_over and local.entry_id is not None:
                # Flushed again, unchanged, after Notion refused this version: the same
                # entry (and staged copy) tries again, never a second entry over one copy.
                self._queue.retry(local.entry_id)
                entry = self._queue.journal.get(local.entry_id) or self._submit_version(local)
            else:
                entry = self._submit_version(local)
            local.entry_id = entry.id
            local.handed_over = True
            local.dirty = False
            local.done_at = None
        self._await(local, entry)

    def _submit_version(self, local: LocalFile) -> Entry:
        """Journal what ``local`` holds now (under its lock): over the block it has, or a
        new one; written again while its first upload (a new block) still runs, as that
        upload's follower, journalled at once (a replace of the block it makes)."""
        first = self._new_target(local) if local.target is None else None
        if first is not None and first.action != "append" and local.entry_id is not None:
            self._settle_previous(local)  # a property entry: wait for the first to land
        elif local.entry_id is not None and (local.target is None or local.following):
            first = first or self._new_target(local)
            assert first.parent_id is not None and first.block_kind is not None
            follow = Target.follow(local.entry_id, first.parent_id, first.block_kind)
            try:
                entry = self._queue.submit(local.staged, follow, name=local.name)
            except KeyError:  # the first landed and was tidied away: its block is known
                self._settle_previous(local)
            else:
                if entry.target.action == "follow":  # else it already settled
                    local.earlier.append(local.entry_id)
                    local.following = True
                else:
                    local.following = False
                return entry
        return self._queue.submit(local.staged, local.target or self._new_target(local),
                                  name=local.name)

    def _settle_previous(self, local: LocalFile) -> None:
        """A new file flushed again before its first upload finished: wait for that one,
        so the second becomes a replace of its block, never a second block."""
        if local.target is not None or local.entry_id is None:
            return
        done = self._queue.wait(local.entry_id, timeout_s=self._wait_s)
        self.confirmed(local, done)

    def _new_target(self, local: LocalFile, name: str | None = None) -> Target:
        """Where a new file of ``local``'s folder called ``name`` (its own) goes."""
        prop = property_folder(local.folder_key)
        if prop is not None:
            return prop.append()
        if local.folder_id is None:
            raise NotWritableError(f"{local.name!r}: its folder takes no new files")
        return new_block_target(local.folder_id, name or local.name)

    def _await(self, local: LocalFile, entry: Entry) -> None:
        try:
            done = self._queue.wait(entry.id, timeout_s=self._wait_s)
        except ConflictError as conflict:
            self._beside(local, entry, conflict)
            return
        except UploadFailedError:
            with local.lock:
                local.dirty = True  # refused for good: a later flush may try again
            raise
        except UploadStillRunningError as running:
            # A big file on a slow link: nothing failed, the bytes are fsynced and journalled
            # (as safe as on a local disk), and the upload goes on. close() succeeds; a later
            # failure shows in user.notionfs.state and the log.
            logger.info("%s", running)
            return
        with local.lock:
            self.confirmed(local, done)

    def _beside(self, local: LocalFile, failed: Entry, conflict: ConflictError) -> None:
        """The file changed in Notion since it was opened: this version goes beside it, as
        ``NAME (conflict YYYY-MM-DD HHMM).ext``, never over the other person's."""
        name = dated(local.name, "conflict")
        logger.warning("%s; saved beside it as %r", conflict, name)
        with local.lock:
            if local.folder_id is None:
                raise conflict
            # The refused entry's staged copy (kept) goes up under the new name.
            entry = self._queue.submit(local.staged, self._new_target(local, name), name=name)
            self._queue.journal.delete(failed.id)
            local.entry_id = entry.id
            local.target = None
            local.dirty = False
        self._layer.move(local, name, None)
        try:
            done = self._queue.wait(entry.id, timeout_s=self._wait_s)
        except UploadStillRunningError as running:
            logger.info("%s", running)
            return
        with local.lock:
            self.confirmed(local, done)

    def confirmed(self, local: LocalFile, done: Entry) -> None:
        """Notion has ``local``'s version ``done``: where it is, and when it landed."""
        if done.result_id:
            local.result_id = done.result_id
            local.target = landed_target(done)
        if done.id == local.entry_id:
            local.following = False
            local.earlier.clear()
        local.done_at = self._clock()
        self._ws.expire_key(local.folder_key)  # the local layer shows it meanwhile

    def wait_landed(self, local: LocalFile) -> Target | None:
        """Where ``local`` goes once its upload under way (if one is) has landed."""
        if local.entry_id is not None and local.result_id is None:
            done = self._queue.wait(local.entry_id, timeout_s=self._wait_s)
            self.confirmed(local, done)
        return local.target

    def release(self, local: LocalFile) -> None:
        last = self._layer.closed(local)
        if local.removed:
            if last:
                close_staged(local)
            return
        if last and local.dirty and not local.scratch and not local.handed_over:
            # Closed without a flush (a flush that failed before submitting): hand it
            # over now, in the background; the journal keeps it. (A version Notion refused
            # is journalled already, kept as failed with its bytes: `notionfs uploads`.)
            try:
                with local.lock:
                    if not local.dirty:
                        return
                    entry = self._submit_version(local)
                    local.entry_id, local.handed_over, local.dirty = entry.id, True, False
            except NotionFSError as error:
                logger.warning("%r: not uploaded, kept locally: %s", local.name, error)
