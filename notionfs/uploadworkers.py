"""UploadWorkers: the threads that run the journal's entries, and the outcome of each run.

Entries whose targets share a key (one page's children, one block, one property) run one
at a time in journal order. A transient failure (Notion down, 5xx, 429, a lost answer)
leaves the entry where it stopped and makes it due again after a capped, jittered backoff;
a refusal (Notion will not take it) marks it ``failed`` with the reason, its staged copy
kept. A worker's calls are background calls (priority.background): they take only the
rate budget no program waits for. An entry someone waits on runs with a program's priority.

Lock order: ``UploadWorkers.cond`` guards the tables below (the queue's waiters and status
read them under it too). It may be held while the journal is read (``Journal._lock``,
around one query), never the other way round; never across a run, a journal write or a
call to ``on_done``.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from notionfs.errors import (
    ApiError,
    AuthError,
    FileTooLargeError,
    NetworkError,
    NotionFSError,
    RateLimitedError,
    ServerError,
    UnsupportedFileError,
    UploadFailedError,
)
from notionfs.journal import Entry, Journal
from notionfs.models import MalformedResponse
from notionfs.priority import background
from notionfs.staging import StagingArea
from notionfs.uploads import UploadEngine

__all__ = ["UploadWorkers"]

logger = logging.getLogger(__name__)

# Worth trying again later: Notion (or the way to it) failed, or refused for now.
_TRANSIENT = (NetworkError, ServerError, RateLimitedError, AuthError, MalformedResponse)
_RECENT_KEPT = 1000  # finished entries remembered for status after their journal row is gone


class UploadWorkers:
    """The journal's entries, run by ``workers`` background threads (after ``start``) or by
    ``run_due`` / ``claim`` and ``run`` in the caller's thread. At construction every
    unfinished entry is due at once: what a previous process left (even after ``kill -9``)
    is finished."""

    def __init__(
        self,
        engine: UploadEngine,
        *,
        workers: int,
        retry_base_s: float,
        retry_cap_s: float,
        clock: Callable[[], float],
        rng: random.Random,
        on_done: Callable[[Entry], None],
    ) -> None:
        self.engine = engine
        self.journal: Journal = engine.journal
        self.staging: StagingArea = engine.staging
        self._workers = workers
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._clock = clock
        self._rng = rng
        self._on_done = on_done
        # Guarded by ``cond``:
        self.cond = threading.Condition()
        self.running: set[str] = set()
        self.awaited: dict[str, int] = {}  # entry id -> callers in UploadQueue.wait()
        self.progress: dict[str, Entry] = {}  # the latest saved copy of running entries
        self.attempts_seen: dict[str, int] = {}  # entry id -> attempts finished
        self.recent: OrderedDict[str, Entry] = OrderedDict()
        self.threads: list[threading.Thread] = []
        self._stopping = False
        engine.on_saved = self._saved
        self._replay()

    # ---- start and stop ----------------------------------------------------------------------

    def _replay(self) -> None:
        now = self._clock()
        pending = refused = 0
        for entry in self.journal.entries():
            if entry.state == "done":  # finished, but the process died before tidying up
                self.tidy(entry)
            elif entry.state == "failed":
                refused += 1
            else:
                pending += 1
                if entry.next_attempt_at > now:
                    self.journal.save(entry.but(next_attempt_at=now))
        if pending:
            logger.info("upload journal: %d unfinished upload(s) to finish", pending)
        if refused:
            logger.warning("upload journal: %d upload(s) Notion refused are kept with their "
                           "bytes: `notionfs uploads` lists them, saves their bytes or tries "
                           "them again", refused)

    def start(self) -> None:
        """Run entries in ``workers`` background threads until ``stop``."""
        with self.cond:
            if self.threads:
                return
            self._stopping = False
            self.engine.stopping.clear()
            for i in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"notionfs-upload-{i}",
                                          daemon=True)
                self.threads.append(thread)
                thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop the workers (an entry in flight finishes its current request first)."""
        self.engine.stopping.set()
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
            threads, self.threads = self.threads, []
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- running -----------------------------------------------------------------------------

    def run_due(self) -> int:
        """Run every entry due now, once each, in this thread; how many ran."""
        ran = 0
        skipped: set[str] = set()
        while True:
            entry = self.claim(skip=skipped)
            if entry is None:
                return ran
            skipped.add(entry.id)
            self.run(entry)
            ran += 1

    def _work(self) -> None:
        while True:
            with self.cond:
                if self._stopping:
                    return
            entry = self.claim()
            if entry is not None:
                try:
                    self.run(entry)
                except Exception:  # never let a worker die silently (a closed journal...)
                    logger.exception("upload %s: could not record the outcome", entry.id[:8])
                continue
            with self.cond:
                if self._stopping:
                    return
                self.cond.wait(self._idle_wait_s())

    def _idle_wait_s(self) -> float:
        due = [e.next_attempt_at for e in self.journal.unfinished() if e.id not in self.running]
        if not due:
            return 60.0
        return min(60.0, max(0.05, min(due) - self._clock()))

    def claim(self, *, only: str | None = None, skip: set[str] | None = None) -> Entry | None:
        """The next entry to run now (marked running), or None."""
        now = self._clock()
        with self.cond:
            if self._stopping and only is None:
                return None
            blocked: set[str] = set()
            for entry in self.journal.unfinished():
                key = entry.target.key
                if entry.id in self.running:
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
                self.running.add(entry.id)
                return entry
            return None

    def run(self, entry: Entry) -> None:
        """Run a claimed entry once and record the outcome."""
        with self.cond:
            awaited = entry.id in self.awaited
        on_worker = threading.current_thread() in self.threads
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
            with self.cond:
                self.running.discard(entry.id)
                self.progress.pop(entry.id, None)
                self.attempts_seen[entry.id] = self.attempts_seen.get(entry.id, 0) + 1
                self.cond.notify_all()

    # ---- outcomes ------------------------------------------------------------------------------

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
        with self.cond:
            if entry.finished:
                self.progress.pop(entry.id, None)
                self.recent[entry.id] = entry
                while len(self.recent) > _RECENT_KEPT:
                    self.recent.popitem(last=False)
            else:
                self.progress[entry.id] = entry
            self.cond.notify_all()
        if entry.state == "done":
            self.tidy(entry)
            try:
                self._on_done(entry)
            except Exception:  # noqa: BLE001 (a listener's failure never fails an upload)
                logger.exception("upload %s: on_done failed", entry.id[:8])

    def tidy(self, entry: Entry) -> None:
        """A done entry: its staged copy and journal row go (in that order: a crash between
        leaves a done row that the next start tidies)."""
        if entry.staged_path is not None:
            self.staging.remove(Path(entry.staged_path))
        self.journal.delete(entry.id)

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()


# A URL's query (a signed URL's signature) never reaches the journal or the log.
_URL_QUERY = re.compile(r"(https?://[^\s?#\"'`]+)[?#][^\s\"'`]*")


def _describe(error: BaseException) -> str:
    text = _URL_QUERY.sub(r"\1?…", str(error) or type(error).__name__)
    return f"{type(error).__name__}: {text}"[:500]
