"""UploadQueue: the journal's entries submitted, run in the background, waited on, reported.

The running itself (threads, claiming by key, retries) is ``uploadworkers.UploadWorkers``;
this is the side programs and the overlay speak to.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from notionfs.errors import (
    ConflictError,
    FileTooLargeError,
    NotionFSError,
    UploadFailedError,
    UploadPendingError,
    UploadStillRunningError,
)
from notionfs.filetypes import check_file
from notionfs.journal import Entry, Journal, Target
from notionfs.staging import StagedFile, StagingArea
from notionfs.uploads import UploadEngine
from notionfs.uploadworkers import UploadWorkers

__all__ = ["EntryStatus", "UploadQueue", "due_again", "entry_status", "new_block_target"]

logger = logging.getLogger(__name__)


def new_block_target(parent_id: str, name: str) -> Target:
    """Where a new file called ``name`` in page ``parent_id`` goes: a block of the kind its
    type asks for. Raises UnsupportedFileError for a name Notion refuses."""
    return Target.append(parent_id, check_file(name).block_kind)


@dataclass(frozen=True)
class EntryStatus:
    """One entry's state, for ``user.notionfs.state`` and logs."""

    entry_id: str
    name: str | None
    state: str
    detail: str

    def __str__(self) -> str:
        return f"{self.state}: {self.detail}" if self.detail else self.state


def entry_status(entry: Entry, now: float, *, running: bool = False) -> EntryStatus:
    """``entry``'s state at wall-clock time ``now``: parts sent, the last failure and when
    it is tried again (``running``: an attempt is under way)."""
    detail = ""
    if entry.state == "uploading" and entry.parts_total:
        detail = f"{len(entry.parts_done)}/{entry.parts_total} parts sent"
    if entry.state == "failed":
        detail = entry.last_error or ""
    elif entry.last_error and not entry.finished:
        wait_s = max(0.0, entry.next_attempt_at - now)
        when = "retrying now" if running else f"retry in {wait_s:.0f} s"
        detail = ", ".join(filter(None, [detail, f"attempt {entry.attempts} failed: "
                                         f"{entry.last_error}; {when}"]))
    return EntryStatus(entry.id, entry.name, entry.state, detail)


def due_again(entry: Entry, now: float) -> Entry:
    """``entry`` made due at ``now``, from where it stopped. Where a refused one failed is
    not recorded: it resumes from its upload (the engine asks whether Notion still has it)
    or starts afresh."""
    state = entry.state
    if state == "failed":
        state = "uploading" if entry.upload_id else "staged"
    return entry.but(state=state, next_attempt_at=now)


class UploadQueue:
    """The journal's entries, run by ``workers`` background threads (after ``start``) or by
    ``run_due`` in the caller's thread.

    A worker's calls are background calls (priority.background): they take only the rate
    budget no program waits for, so a big upload never delays a listing. An entry someone
    waits on (``wait``, a program's flush) runs with a program's priority.

    Entries whose targets share a key (one page's children, one block, one property) run
    one at a time in journal order. A transient failure (Notion down, 5xx, 429, a lost
    answer) leaves the entry where it stopped and makes it due again after a capped,
    jittered backoff; a refusal (Notion will not take it) marks it ``failed`` with the
    reason, its staged copy kept. At construction every unfinished entry is due at once:
    what a previous process left (even after ``kill -9``) is finished.
    """

    def __init__(
        self,
        engine: UploadEngine,
        *,
        workers: int = 2,
        retry_base_s: float = 2.0,
        retry_cap_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.journal: Journal = engine.journal
        self.staging: StagingArea = engine.staging
        self._clock = clock
        # Called (outside every lock) with each entry that lands, whoever submitted it: a
        # mount re-lists the folder it changed.
        self.on_done: Callable[[Entry], None] = lambda entry: None
        self._workers = UploadWorkers(
            engine, workers=workers, retry_base_s=retry_base_s, retry_cap_s=retry_cap_s,
            clock=clock, rng=rng or random.Random(), on_done=lambda entry: self.on_done(entry),
        )

    def start(self) -> None:
        """Run entries in ``workers`` background threads until ``close``."""
        self._workers.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the workers (an entry in flight finishes its current request first) and
        close the journal. Unfinished entries stay journalled for the next start."""
        self._workers.stop(timeout_s)
        self.journal.close()

    def run_due(self) -> int:
        """Run every entry due now, once each, in this thread; how many ran."""
        return self._workers.run_due()

    # ---- submitting --------------------------------------------------------------------------

    def submit(
        self,
        staged: StagedFile,
        target: Target,
        *,
        name: str,
        content_type: str | None = None,
    ) -> Entry:
        """Journal ``staged`` (fsynced first) for upload to ``target`` under ``name``; it
        then belongs to the queue, which deletes it once Notion has it. Raises at once,
        journalling nothing, for a file Notion would refuse (type, name, size)."""
        if target.action in ("trash", "property_remove", "property_rename"):
            raise ValueError("nothing to upload: use submit_trash or submit_edit")
        file_type = check_file(name, into=target.block_kind if target.action in (
            "append", "follow") else None)
        self.check_size(staged.size, what=repr(name))
        staged.fsync()
        entry = self.journal.add(
            target,
            staged_path=staged.path,
            name=name,
            size=staged.size,
            sha256=staged.sha256(),
            content_type=content_type or file_type.content_type,
        )
        logger.info("upload %s %r: staged (%d bytes) for %s", entry.id[:8], name, entry.size,
                    target.action)
        self._workers.wake()
        return entry

    def submit_trash(self, block_id: str) -> Entry:
        """Journal moving block ``block_id`` to the trash."""
        entry = self.journal.add(Target.trash(block_id), staged_path=None, name=None, size=0,
                                 sha256=None, content_type=None)
        self._workers.wake()
        return entry

    def submit_edit(self, target: Target, *, name: str) -> Entry:
        """Journal a files-property edit without an upload: an entry removed
        (``property_remove``, ``name`` its name) or renamed (``property_rename``, to
        ``name``)."""
        if target.action not in ("property_remove", "property_rename"):
            raise ValueError(f"{target.action} is not a property edit")
        entry = self.journal.add(target, staged_path=None, name=name, size=0, sha256=None,
                                 content_type=None)
        logger.info("upload %s %r: journalled (%s)", entry.id[:8], name, target.action)
        self._workers.wake()
        return entry

    def check_size(self, size: int, *, what: str = "the file") -> None:
        """FileTooLargeError when a file of ``size`` bytes would pass the workspace's upload
        limit (the FUSE layer calls it at the write that would cross it). No limit is
        assumed when Notion does not tell one, nor while it cannot be asked (the engine
        checks again before uploading)."""
        try:
            limit = self.engine.api.max_file_bytes()
        except NotionFSError as error:
            logger.debug("upload limit unknown for now: %s", error)
            return
        if limit is not None and size > limit:
            raise FileTooLargeError(
                f"{what} would be {size} bytes; this workspace takes files up to {limit}"
            )

    # ---- waiting -------------------------------------------------------------------------------

    def wait(self, entry_id: str, timeout_s: float) -> Entry:
        """Until ``entry_id`` is done (returned), or raise: UploadFailedError when Notion
        refused it, UploadPendingError when an attempt failed for now or ``timeout_s``
        passed (it stays journalled and is retried in the background). Without started
        workers the entry runs here, in the caller's thread."""
        deadline = time.monotonic() + timeout_s
        runs = self._workers
        with runs.cond:
            seen = runs.attempts_seen.get(entry_id, 0)
            runs.awaited[entry_id] = runs.awaited.get(entry_id, 0) + 1
        try:
            return self._wait(entry_id, seen, deadline)
        finally:
            with runs.cond:
                left = runs.awaited.pop(entry_id, 1) - 1
                if left:
                    runs.awaited[entry_id] = left

    def _wait(self, entry_id: str, seen: int, deadline: float) -> Entry:
        runs = self._workers
        if not runs.threads:
            entry = runs.claim(only=entry_id)
            if entry is not None:
                runs.run(entry)
        runs.wake()
        with runs.cond:
            while True:
                finished = self._finished(entry_id)
                if finished is not None:
                    return finished
                entry = runs.progress.get(entry_id) or self.journal.get(entry_id)
                if entry is None:
                    raise KeyError(entry_id)
                if runs.attempts_seen.get(entry_id, 0) > seen:
                    raise UploadPendingError(
                        f"{entry.name!r} is not uploaded yet ({entry.last_error}); kept and "
                        "retried in the background"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UploadStillRunningError(
                        f"{entry.name!r} is still uploading ({entry.state}); it continues in "
                        "the background"
                    )
                runs.cond.wait(left)

    def _finished(self, entry_id: str) -> Entry | None:
        """The entry if done; raises UploadFailedError if it failed; None otherwise."""
        entry = self._workers.recent.get(entry_id)
        if entry is None:
            entry = self.journal.get(entry_id)
        if entry is None or not entry.finished:
            return None
        if entry.state == "failed":
            # A conflict stays a conflict for the waiter: it saves the file beside instead.
            conflict = (entry.last_error or "").startswith(f"{ConflictError.__name__}:")
            error = ConflictError if conflict else UploadFailedError
            raise error(f"{entry.name or entry.target.block_id!r}: {entry.last_error}")
        return entry

    # ---- state and control ------------------------------------------------------------------

    def status(self, entry_id: str) -> EntryStatus | None:
        """The state of one entry (journalled, or recently finished)."""
        runs = self._workers
        with runs.cond:
            entry = runs.progress.get(entry_id) or runs.recent.get(entry_id)
        if entry is None:
            entry = self.journal.get(entry_id)
        return None if entry is None else self._status(entry)

    def statuses(self) -> list[EntryStatus]:
        """Every journalled entry's state, oldest first."""
        return [self._status(self._workers.progress.get(e.id, e)) for e in self.journal.entries()]

    def _status(self, entry: Entry) -> EntryStatus:
        return entry_status(entry, self._clock(), running=entry.id in self._workers.running)

    def retry(self, entry_id: str) -> None:
        """Make a failed (or waiting) entry due now, from where it stopped."""
        entry = self.journal.get(entry_id)
        if entry is None or entry.state == "done":
            return
        with self._workers.cond:
            # Its refusal is no longer its outcome: a waiter waits for the new one.
            self._workers.recent.pop(entry_id, None)
            self.journal.save(due_again(entry, self._clock()))
        self._workers.wake()

    def discard(self, entry_id: str) -> None:
        """Drop an entry that will not be finished, and its staged copy."""
        entry = self.journal.get(entry_id)
        if entry is None:
            return
        with self._workers.cond:
            if entry_id in self._workers.running:
                raise ValueError(f"entry {entry_id} is running")
        if entry.staged_path is not None:
            self.staging.remove(Path(entry.staged_path))
        self.journal.delete(entry_id)
        logger.warning("upload %s %r: discarded", entry_id[:8], entry.name)
