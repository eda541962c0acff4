"""UploadQueue: runs the journal's entries in the background, retries them, reports state."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from notionfs.errors import (
    ApiError,
    AuthError,
    ConflictError,
    FileTooLargeError,
    NetworkError,
    NotionFSError,
    RateLimitedError,
    ServerError,
    UnsupportedFileError,
    UploadFailedError,
    UploadPendingError,
)
from notionfs.filetypes import check_file
from notionfs.journal import Entry, Journal, Target
from notionfs.models import MalformedResponse
from notionfs.priority import background
from notionfs.staging import StagedFile, StagingArea
from notionfs.uploads import UploadEngine

__all__ = ["EntryStatus", "UploadQueue", "new_block_target"]

logger = logging.getLogger(__name__)

# Worth trying again later: Notion (or the way to it) failed, or refused for now.
_TRANSIENT = (NetworkError, ServerError, RateLimitedError, AuthError, MalformedResponse)
_RECENT_KEPT = 1000  # finished entries remembered for status after their journal row is gone


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
        self._workers = workers
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._running: set[str] = set()
        self._awaited: dict[str, int] = {}  # entry id -> callers in wait()
        self._progress: dict[str, Entry] = {}  # the latest saved copy of running entries
        self._attempts_seen: dict[str, int] = {}  # entry id -> attempts finished
        self._recent: OrderedDict[str, Entry] = OrderedDict()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        # Called (outside every lock) with each entry that lands, whoever submitted it: a
        # mount re-lists the folder it changed.
        self.on_done: Callable[[Entry], None] = lambda entry: None
        engine.on_saved = self._saved
        self._replay()

    # ---- start and stop ----------------------------------------------------------------------

    def _replay(self) -> None:
        now = self._clock()
        for entry in self.journal.entries():
            if entry.state == "done":  # finished, but the process died before tidying up
                self._tidy(entry)
            elif not entry.finished and entry.next_attempt_at > now:
                self.journal.save(entry.but(next_attempt_at=now))
        pending = self.journal.unfinished()
        if pending:
            logger.info("upload journal: %d unfinished upload(s) to finish", len(pending))

    def start(self) -> None:
        """Run entries in ``workers`` background threads until ``close``."""
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            self.engine.stopping.clear()
            for i in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"notionfs-upload-{i}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the workers (an entry in flight finishes its current request first) and
        close the journal. Unfinished entries stay journalled for the next start."""
        self.engine.stopping.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.journal.close()

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
        self._wake()
        return entry

    def submit_trash(self, block_id: str) -> Entry:
        """Journal moving block ``block_id`` to the trash."""
        entry = self.journal.add(Target.trash(block_id), staged_path=None, name=None, size=0,
                                 sha256=None, content_type=None)
        self._wake()
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
        self._wake()
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

    # ---- running -----------------------------------------------------------------------------

    def run_due(self) -> int:
        """Run every entry due now, once each, in this thread; how many ran."""
        ran = 0
        skipped: set[str] = set()
        while True:
            entry = self._claim(skip=skipped)
            if entry is None:
                return ran
            skipped.add(entry.id)
            self._run(entry)
            ran += 1

    def wait(self, entry_id: str, timeout_s: float) -> Entry:
        """Until ``entry_id`` is done (returned), or raise: UploadFailedError when Notion
        refused it, UploadPendingError when an attempt failed for now or ``timeout_s``
        passed (it stays journalled and is retried in the background). Without started
        workers the entry runs here, in the caller's thread."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            seen = self._attempts_seen.get(entry_id, 0)
            self._awaited[entry_id] = self._awaited.get(entry_id, 0) + 1
        try:
            return self._wait(entry_id, seen, deadline)
        finally:
            with self._cond:
                left = self._awaited.pop(entry_id, 1) - 1
                if left:
                    self._awaited[entry_id] = left

    def _wait(self, entry_id: str, seen: int, deadline: float) -> Entry:
        if not self._threads:
            entry = self._claim(only=entry_id)
            if entry is not None:
                self._run(entry)
        self._wake()
        with self._cond:
            while True:
                finished = self._finished(entry_id)
                if finished is not None:
                    return finished
                entry = self._progress.get(entry_id) or self.journal.get(entry_id)
                if entry is None:
                    raise KeyError(entry_id)
                if self._attempts_seen.get(entry_id, 0) > seen:
                    raise UploadPendingError(
                        f"{entry.name!r} is not uploaded yet ({entry.last_error}); kept and "
                        "retried in the background"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UploadPendingError(
                        f"{entry.name!r} is still uploading ({entry.state}); it continues in "
                        "the background"
                    )
                self._cond.wait(left)

    def _finished(self, entry_id: str) -> Entry | None:
        """The entry if done; raises UploadFailedError if it failed; None otherwise."""
        entry = self._recent.get(entry_id)
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

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            entry = self._claim()
            if entry is not None:
                try:
                    self._run(entry)
                except Exception:  # never let a worker die silently (a closed journal...)
                    logger.exception("upload %s: could not record the outcome", entry.id[:8])
                continue
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(self._idle_wait_s())

    def _idle_wait_s(self) -> float:
        due = [e.next_attempt_at for e in self.journal.unfinished() if e.id not in self._running]
        if not due:
            return 60.0
        return min(60.0, max(0.05, min(due) - self._clock()))

    def _claim(self, *, only: str | None = None, skip: set[str] | None = None) -> Entry | None:
        """The next entry to run now (marked running), or None."""
        now = self._clock()
        with self._cond:
            if self._stopping and only is None:
                return None
            blocked: set[str] = set()
            for entry in self.journal.unfinished():
                key = entry.target.key
                if entry.id in self._running:
                    blocked.add(key)
                    continue
                if key in blocked:
                    continue
                # Whatever happens to this one, later entries of its key wait for it.
                blocked.add(key)
                if only is not None and entry.id != only:
                    continue
                if skip and entry.id in skip:
                    continue
                if entry.next_attempt_at > now and only is None:
                    continue
                self._running.add(entry.id)
                return entry
            return None

    def _run(self, entry: Entry) -> None:
        with self._cond:
            awaited = entry.id in self._awaited
        on_worker = threading.current_thread() in self._threads
        try:
            if on_worker and not awaited:
                with background():
                    self.engine.run(entry)
            else:
                self.engine.run(entry)
        except _TRANSIENT as error:
            self._later(entry.id, error)
        except (UploadFailedError, UnsupportedFileError, FileTooLargeError, ApiError) as error:
            self._fail(entry.id, error)
        except NotionFSError as error:
            self._later(entry.id, error)
        except Exception as error:  # a bug or a local I/O error: keep the entry, retry later
            logger.exception("upload %s: unexpected error", entry.id[:8])
            self._later(entry.id, error)
        finally:
            with self._cond:
                self._running.discard(entry.id)
                self._progress.pop(entry.id, None)
                self._attempts_seen[entry.id] = self._attempts_seen.get(entry.id, 0) + 1
                self._cond.notify_all()

    def _later(self, entry_id: str, error: BaseException) -> None:
        current = self.journal.get(entry_id)
        if current is None:
            return
        attempts = current.attempts + 1
        delay_s = self._backoff_s(attempts, error)
        saved = self.journal.save(current.but(
            attempts=attempts, next_attempt_at=self._clock() + delay_s,
            last_error=_describe(error)))
        logger.warning("upload %s %r: %s stays %s; retry %d in %.1f s", entry_id[:8],
                       saved.name or saved.target.block_id, _describe(error), saved.state,
                       attempts, delay_s)

    def _backoff_s(self, attempts: int, error: BaseException) -> float:
        after = getattr(error, "retry_after_s", None)
        ceiling = min(self._retry_cap_s, self._retry_base_s * 2.0 ** (attempts - 1))
        delay = ceiling * self._rng.uniform(0.5, 1.0)
        return max(delay, after) if isinstance(after, (int, float)) else delay

    def _fail(self, entry_id: str, error: BaseException) -> None:
        current = self.journal.get(entry_id)
        if current is None:
            return
        saved = self.journal.save(current.but(state="failed", attempts=current.attempts + 1,
                                              last_error=_describe(error)))
        logger.error("upload %s %r: failed for good, staged copy kept: %s", entry_id[:8],
                     saved.name or saved.target.block_id, saved.last_error)
        self._saved(saved)

    def _saved(self, entry: Entry) -> None:
        """Every saved transition: remember progress; tidy a finished entry away."""
        with self._cond:
            if entry.finished:
                self._progress.pop(entry.id, None)
                self._recent[entry.id] = entry
                while len(self._recent) > _RECENT_KEPT:
                    self._recent.popitem(last=False)
            else:
                self._progress[entry.id] = entry
            self._cond.notify_all()
        if entry.state == "done":
            self._tidy(entry)
            try:
                self.on_done(entry)
            except Exception:  # noqa: BLE001 (a listener's failure never fails an upload)
                logger.exception("upload %s: on_done failed", entry.id[:8])

    def _tidy(self, entry: Entry) -> None:
        """A done entry: its staged copy and journal row go (in that order: a crash between
        leaves a done row that the next start tidies)."""
        if entry.staged_path is not None:
            self.staging.remove(Path(entry.staged_path))
        self.journal.delete(entry.id)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ---- state and control ------------------------------------------------------------------

    def status(self, entry_id: str) -> EntryStatus | None:
        """The state of one entry (journalled, or recently finished)."""
        with self._cond:
            entry = self._progress.get(entry_id) or self._recent.get(entry_id)
        if entry is None:
            entry = self.journal.get(entry_id)
        return None if entry is None else self._status(entry)

    def statuses(self) -> list[EntryStatus]:
        """Every journalled entry's state, oldest first."""
        return [self._status(self._progress.get(e.id, e)) for e in self.journal.entries()]

    def _status(self, entry: Entry) -> EntryStatus:
        detail = ""
        if entry.state == "uploading" and entry.parts_total:
            detail = f"{len(entry.parts_done)}/{entry.parts_total} parts sent"
        if entry.state == "failed":
            detail = entry.last_error or ""
        elif entry.last_error and not entry.finished:
            wait_s = max(0.0, entry.next_attempt_at - self._clock())
            running = entry.id in self._running
            when = "retrying now" if running else f"retry in {wait_s:.0f} s"
            detail = ", ".join(filter(None, [detail, f"attempt {entry.attempts} failed: "
                                             f"{entry.last_error}; {when}"]))
        return EntryStatus(entry.id, entry.name, entry.state, detail)

    def retry(self, entry_id: str) -> None:
        """Make a failed (or waiting) entry due now, from where it stopped."""
        entry = self.journal.get(entry_id)
        if entry is None or entry.state == "done":
            return
        state = entry.state
        if state == "failed":
            # Where it failed is not recorded: resume from the upload (Notion is asked
            # whether it still has it) or from the start.
            state = "uploading" if entry.upload_id else "staged"
        self.journal.save(entry.but(state=state, next_attempt_at=self._clock()))
        self._wake()

    def discard(self, entry_id: str) -> None:
        """Drop an entry that will not be finished, and its staged copy."""
        entry = self.journal.get(entry_id)
        if entry is None:
            return
        with self._cond:
            if entry_id in self._running:
                raise ValueError(f"entry {entry_id} is running")
        if entry.staged_path is not None:
            self.staging.remove(Path(entry.staged_path))
        self.journal.delete(entry_id)
        logger.warning("upload %s %r: discarded", entry_id[:8], entry.name)


# A URL's query (a signed URL's signature) never reaches the journal or the log.
_URL_QUERY = re.compile(r"(https?://[^\s?#\"'`]+)[?#][^\s\"'`]*")


def _describe(error: BaseException) -> str:
    text = _URL_QUERY.sub(r"\1?…", str(error) or type(error).__name__)
    return f"{type(error).__name__}: {text}"[:500]
