"""The upload engine: a journalled file goes up with the File Upload API and into its place.

One entry runs through ``staged -> uploading -> uploaded -> attaching -> done``; every step
is saved in the journal before the next begins, so a run that stops anywhere (an error, a
crash) resumes where it stopped:

- upload (here): ``single_part`` up to 20 MB, ``multi_part`` above it in parts of
  ``part_bytes`` (Notion takes 5-20 MiB; the last part may be smaller), up to
  ``parts_in_flight`` at once. Each part is streamed from the staged file and recorded in
  the journal once Notion has it; a failed part is sent again (by the client's retry
  policy, a part being safe to repeat), never the whole file. An upload Notion no longer
  has (expired an hour after its creation, unattached) is started again.
- attach, trash and property edits (attach.py): the file put in its place, checked before
  a retry when an answer was lost, so a retry never duplicates a block or an entry.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import MappingProxyType

from notionfs.attach import AMBIGUOUS, Attacher
from notionfs.errors import ApiError, FileTooLargeError, NotionFSError, UploadFailedError
from notionfs.journal import Entry, Journal
from notionfs.staging import StagedFile, StagingArea
from notionfs.writeapi import WriteApi

__all__ = [
    "MiB",
    "PART_MAX_BYTES",
    "PART_MIN_BYTES",
    "SINGLE_PART_MAX_BYTES",
    "Stopping",
    "UploadEngine",
]

logger = logging.getLogger(__name__)

MiB = 1 << 20
SINGLE_PART_MAX_BYTES = 20_000_000  # "20 MB": the stricter reading of Notion's cap
PART_MIN_BYTES = 5 * MiB
PART_MAX_BYTES = 20 * MiB


class _Expired(NotionFSError):
    """Notion no longer has the entry's upload (expired or unknown): start it again."""


class Stopping(NotionFSError):
    """The engine is stopping: the entry stays where it is, for the next start."""


class UploadEngine:
    """Runs journal entries against Notion, saving each transition.

    ``part_slots`` bounds the parts in flight across every entry running at once, so the
    bytes held are at most that many httpx chunks (64 KiB each), whatever the file size.
    """

    def __init__(
        self,
        api: WriteApi,
        journal: Journal,
        staging: StagingArea,
        *,
        part_bytes: int = 10 * MiB,
        parts_in_flight: int = 3,
    ) -> None:
        if not PART_MIN_BYTES <= part_bytes <= PART_MAX_BYTES:
            raise ValueError(f"part_bytes must be {PART_MIN_BYTES}..{PART_MAX_BYTES}")
        if parts_in_flight < 1:
            raise ValueError("parts_in_flight must be at least 1")
        self.api = api
        self.journal = journal
        self.staging = staging
        self.part_bytes = part_bytes
        self.parts_in_flight = parts_in_flight
        self._part_slots = threading.BoundedSemaphore(parts_in_flight)
        # Called after every saved transition (the queue reports state from it).
        self.on_saved: Callable[[Entry], None] = lambda entry: None
        # Set to stop between requests: a part in flight finishes, no new one starts.
        self.stopping = threading.Event()
        self._attacher = Attacher(api, save=self._save, check_expired=self._check_expired)

    # ---- one entry ---------------------------------------------------------------------------

    def run(self, entry: Entry) -> Entry:
        """Run ``entry`` to ``done``; raises what stopped it (its progress is saved)."""
        if entry.target.action == "trash":
            return self._attacher.trash(entry)
        if entry.target.action in ("property_remove", "property_rename"):
            return self._attacher.edit_property(entry)
        if entry.target.action == "follow":
            entry = self._settle(entry)
        staged = self._open_staged(entry)
        try:
            restarted = False
            while True:
                if entry.state in ("staged", "uploading"):
                    entry = self._upload(entry, staged)
                try:
                    return self._attacher.attach(entry)
                except _Expired:
                    if restarted:
                        raise
                    restarted = True
                    entry = self._restart(entry, "the upload expired before it was attached")
        finally:
            staged.close()

    def _settle(self, entry: Entry) -> Entry:
        """A later version whose first is journalled: the journal settles it when the first
        finishes, and entries of one key run in order, so this runs only if that first
        version's row vanished unfinished (removed by hand): then it is a file of its own."""
        assert entry.target.after is not None
        first = self.journal.get(entry.target.after)
        if first is not None and not first.finished:
            raise NotionFSError(f"upload {entry.id[:8]} waits for its first version")
        return self._save(entry.but(target=entry.target.settled(first)),
                          "its first version finished")

    def upload(self, entry: Entry, staged: StagedFile) -> Entry:
        """Only the upload half: the entry ends ``uploaded`` (its file_upload id set)."""
        return self._upload(entry, staged)

    # ---- the upload ----------------------------------------------------------------------------

    def _open_staged(self, entry: Entry) -> StagedFile:
        if entry.staged_path is None or entry.name is None or entry.content_type is None:
            raise UploadFailedError(f"journal entry {entry.id} names no staged file")
        try:
            staged = self.staging.open(Path(entry.staged_path))
        except FileNotFoundError:
            raise UploadFailedError(f"the staged copy of {entry.name!r} is gone") from None
        if staged.size != entry.size:
            staged.close()
            raise UploadFailedError(
                f"the staged copy of {entry.name!r} is {staged.size} bytes, the journal says "
                f"{entry.size}"
            )
        return staged

    def _upload(self, entry: Entry, staged: StagedFile) -> Entry:
        for _ in range(3):  # at most two restarts of an upload Notion dropped
            try:
                return self._upload_once(entry, staged)
            except _Expired:
                entry = self._restart(self.journal.get(entry.id) or entry,
                                      "Notion no longer has the upload")
        raise UploadFailedError(f"{entry.name!r}: the upload expired again and again")

    def _upload_once(self, entry: Entry, staged: StagedFile) -> Entry:
        assert entry.name is not None and entry.content_type is not None
        if entry.upload_id is not None:
            info = self.api.get_upload(entry.upload_id)
            if info is None or info.status in ("expired", "failed"):
                raise _Expired()
            if info.status == "uploaded":
                return self._save(entry.but(state="uploaded"), "Notion has every byte")
        else:
            limit = self.api.max_file_bytes()
            if limit is not None and entry.size > limit:
                raise FileTooLargeError(
                    f"{entry.name!r} is {entry.size} bytes; this workspace takes files up to "
                    f"{limit} bytes"
                )
            entry = self._create(entry)
        if entry.upload_mode == "single_part":
            self._send_whole(entry, staged)
        else:
            entry = self._send_parts(entry, staged)
            self._complete(entry)
        return self._save(entry.but(state="uploaded"), "Notion has every byte")

    def _create(self, entry: Entry) -> Entry:
        assert entry.name is not None and entry.content_type is not None
        if entry.size <= SINGLE_PART_MAX_BYTES:
            info = self.api.create_upload(filename=entry.name, content_type=entry.content_type)
            mode, parts, part_bytes = "single_part", 1, entry.size
        else:
            parts = math.ceil(entry.size / self.part_bytes)
            info = self.api.create_upload(filename=entry.name, content_type=entry.content_type,
                                          parts=parts)
            mode, part_bytes = "multi_part", self.part_bytes
        return self._save(
            entry.but(state="uploading", upload_id=info.id, upload_mode=mode,
                      part_bytes=part_bytes, parts_total=parts, parts_done=(),
                      upload_created=info.created_time),
            f"{mode} upload {info.id} created ({parts} part{'s' if parts != 1 else ''})",
        )

    def _send_whole(self, entry: Entry, staged: StagedFile) -> None:
        assert entry.upload_id is not None and entry.name and entry.content_type
        try:
            with self._part_slots:
                self.api.send(entry.upload_id, staged.reader(), filename=entry.name,
                              content_type=entry.content_type)
        except ApiError as error:
            self._check_expired(entry, error)
            raise

    def _send_parts(self, entry: Entry, staged: StagedFile) -> Entry:
        assert entry.upload_id and entry.parts_total and entry.part_bytes
        upload_id, part_bytes = entry.upload_id, entry.part_bytes
        missing = [n for n in range(1, entry.parts_total + 1) if n not in entry.parts_done]
        lock = threading.Lock()
        state = {"entry": entry}
        stop = threading.Event()

        def send(number: int) -> None:
            if self.stopping.is_set():
                raise Stopping("stopping: the remaining parts wait for the next start")
            if stop.is_set():
                return
            reader = staged.reader((number - 1) * part_bytes, part_bytes)
            with self._part_slots:
                if stop.is_set():
                    return
                assert entry.name and entry.content_type
                self.api.send(upload_id, reader, filename=entry.name,
                              content_type=entry.content_type, part_number=number)
            with lock:
                current = state["entry"]
                done = tuple(sorted({*current.parts_done, number}))
                state["entry"] = self._save(
                    current.but(parts_done=done),
                    f"part {number} sent ({len(done)}/{current.parts_total})",
                    level=logging.DEBUG,
                )

        with ThreadPoolExecutor(max_workers=self.parts_in_flight,
                                thread_name_prefix="notionfs-part") as pool:
            # Each part runs in a copy of this context: a background run stays background.
            futures: list[Future[None]] = [
                pool.submit(contextvars.copy_context().run, send, n) for n in missing
            ]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in finished if f.exception() is not None),
                           None)
            if failure is not None:
                stop.set()
                for future in futures:
                    future.cancel()
        if failure is not None:
            if isinstance(failure, ApiError):
                self._check_expired(state["entry"], failure)
            raise failure
        return state["entry"]

    def _complete(self, entry: Entry) -> None:
        assert entry.upload_id is not None
        try:
            self.api.complete(entry.upload_id)
        except AMBIGUOUS:
            # The answer was lost: Notion may have completed it already.
            info = self.api.get_upload(entry.upload_id)
            if info is not None and info.status == "uploaded":
                return
            raise
        except ApiError as error:
            self._check_expired(entry, error)
            raise

    def _check_expired(self, entry: Entry, error: ApiError) -> None:
        """After a refusal (400): _Expired if Notion no longer has the upload usable."""
        if error.status != 400 or entry.upload_id is None:
            return
        info = self.api.get_upload(entry.upload_id)
        if info is None or info.status in ("expired", "failed"):
            raise _Expired() from error

    def _restart(self, entry: Entry, why: str) -> Entry:
        return self._save(
            entry.but(state="staged", upload_id=None, upload_mode=None, part_bytes=None,
                      parts_total=None, parts_done=(), upload_created=None,
                      checks=MappingProxyType({})),
            f"{why}; starting it again",
            level=logging.WARNING,
        )

    # ---- saving ----------------------------------------------------------------------------------

    def _save(self, entry: Entry, why: str, *, level: int = logging.INFO) -> Entry:
        saved = self.journal.save(entry)
        logger.log(level, "upload %s %r: %s: %s", entry.id[:8], entry.name or
                   entry.target.block_id, saved.state, why)
        self.on_saved(saved)
        return saved
