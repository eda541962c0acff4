"""The upload engine: a journalled file goes up with the File Upload API and into its place.

One entry runs through ``staged -> uploading -> uploaded -> attaching -> done``; every step
is saved in the journal before the next begins, so a run that stops anywhere (an error, a
crash) resumes where it stopped:

- upload: ``single_part`` up to 20 MB, ``multi_part`` above it in parts of
  ``part_bytes`` (Notion takes 5-20 MiB; the last part may be smaller), up to
  ``parts_in_flight`` at once. Each part is streamed from the staged file and recorded in
  the journal once Notion has it; a failed part is sent again (by the client's retry
  policy, a part being safe to repeat), never the whole file. An upload Notion no longer
  has (expired an hour after its creation, unattached) is started again.
- attach: a new block appended to a page, a file block's file replaced in place, a row's
  files property extended or one of its entries replaced in place (its entries re-sent, in
  order), or a block trashed. An attach whose answer was lost (connection cut, 5xx, a
  crash) is CHECKED before it is sent again: the page's children, the block or the
  property is read to see whether the file is already there, so a retry never duplicates a
  block or an entry.
- property edits without an upload (an entry removed or renamed) read the page, rewrite
  the array and send it; a retry reads the page again, so it applies the edit at most once.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from notionfs.errors import (
    ApiError,
    AuthError,
    ConflictError,
    FileTooLargeError,
    NetworkError,
    NotFoundError,
    NotionFSError,
    RateLimitedError,
    ServerError,
    UploadFailedError,
)
from notionfs.filetypes import BLOCK_KINDS, check_file
from notionfs.journal import Entry, Journal, Target, entry_key, file_key
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
# Notion's page objects hold at most 25 references per property ("Retrieve a page": use
# Retrieve a page property item for more).
PAGE_OBJECT_REFERENCES = 25
# Errors after which a write may or may not have been applied: check before repeating it.
_AMBIGUOUS = (NetworkError, ServerError)


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

    # ---- one entry ---------------------------------------------------------------------------

    def run(self, entry: Entry) -> Entry:
        """Run ``entry`` to ``done``; raises what stopped it (its progress is saved)."""
        if entry.target.action == "trash":
            return self._trash(entry)
        if entry.target.action in ("property_remove", "property_rename"):
            return self._edit_property(entry)
        if entry.target.action == "follow":
            entry = self._settle(entry)
        staged = self._open_staged(entry)
        try:
            restarted = False
            while True:
                if entry.state in ("staged", "uploading"):
                    entry = self._upload(entry, staged)
                try:
                    return self._attach(entry)
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
        except _AMBIGUOUS:
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

    # ---- the attach ----------------------------------------------------------------------------

    def _attach(self, entry: Entry) -> Entry:
        if entry.state == "attaching" and entry.checks.get("sent"):
            found = self._find_attached(entry)
            if found is not None:
                return self._done(entry, found, "already attached (checked before retrying)")
        checks, send = self._plan(entry)
        entry = self._save(entry.but(state="attaching",
                                     checks=MappingProxyType({**checks, "sent": True})),
                           f"attaching ({entry.target.action})")
        try:
            result_id = send()
        except _AMBIGUOUS as error:
            logger.warning("upload %s: attach answer lost (%s); checking before retrying",
                           entry.id[:8], error)
            found = self._find_attached(entry)
            if found is not None:
                return self._done(entry, found, "attached (checked after a lost answer)")
            raise
        except ApiError as error:
            if isinstance(error, (RateLimitedError, AuthError)):
                raise
            self._check_expired(entry, error)
            raise UploadFailedError(f"Notion refused to attach {entry.name!r}: {error}") \
                from error
        return self._done(entry, result_id, "attached")

    def _plan(self, entry: Entry) -> tuple[dict[str, Any], Callable[[], str]]:
        """What the check after a lost answer will compare against, and the attach call."""
        target = entry.target
        assert entry.upload_id is not None and entry.name is not None
        upload = {"type": "file_upload", "file_upload": {"id": entry.upload_id}}
        if target.action == "append":
            assert target.parent_id is not None and target.block_kind is not None
            kind, parent = target.block_kind, target.parent_id
            payload: dict[str, Any] = dict(upload)
            if kind == "file":
                payload["name"] = entry.name  # file blocks keep their own name
            child = {"object": "block", "type": kind, kind: payload}

            def append() -> str:
                created = self.api.append_children(parent, [child])
                if not created or not isinstance(created[-1].get("id"), str):
                    raise UploadFailedError("append answered no block")
                return str(created[-1]["id"])

            return {}, append
        if target.action == "replace":
            assert target.block_id is not None
            block = self.api.get_block(target.block_id)
            kind = self._replaceable(entry, block)
            old = _file_url(block.get(kind))
            payload = dict(upload)
            if kind == "file":
                payload["name"] = entry.name
            block_id = target.block_id

            def update() -> str:
                answer = self.api.update_block(block_id, {kind: payload})
                return str(answer.get("id", block_id))

            return {"old_key": file_key(old) if old else None}, update
        # A files property: read fresh right before the write, so entries someone added
        # meanwhile are sent back too (Notion replaces the whole array with what is sent).
        assert target.page_id is not None and target.property_name is not None
        name, existing = self._files_now(target.page_id, target.property_name)
        files = [_resend(item) for item in existing]
        new_entry = {**upload, "name": entry.name}
        if target.action == "property_replace":
            index = _locate(existing, target)
            if index is None:
                raise ConflictError(
                    f"{entry.name!r} changed in Notion since it was opened (its file is no "
                    f"longer in property {name!r})"
                )
            files[index] = new_entry
        else:
            files.append(new_entry)
        page_id = target.page_id
        keys = _entry_keys(existing)

        def update_page() -> str:
            answer = self.api.update_page(page_id, {"properties": {name: {"files": files}}})
            return _new_entry(_files_of(answer, name), entry.name, set(keys)) or page_id

        return {"entries": keys}, update_page

    def _replaceable(self, entry: Entry, block: Mapping[str, Any]) -> str:
        kind = str(block.get("type", ""))
        if kind not in BLOCK_KINDS:
            raise UploadFailedError(f"block {entry.target.block_id} is a {kind}, not a file")
        if block.get("in_trash") or block.get("archived"):
            raise UploadFailedError(f"block {entry.target.block_id} is in the trash")
        expected = entry.target.expect_edited
        if expected is not None and block.get("last_edited_time") != expected:
            raise ConflictError(
                f"{entry.name!r} changed in Notion since it was opened "
                f"(edited {block.get('last_edited_time')}, opened at {expected})"
            )
        assert entry.name is not None
        check_file(entry.name, into=kind)
        return kind

    def _find_attached(self, entry: Entry) -> str | None:
        """Where the entry's file already is, if its attach was applied; else None."""
        target = entry.target
        if target.action == "append":
            assert target.parent_id is not None
            since = _parse_time(entry.upload_created)
            found: str | None = None
            for child in self.api.children(target.parent_id):
                if child.get("type") != target.block_kind or child.get("in_trash"):
                    continue
                payload = child.get(str(target.block_kind))
                name = payload.get("name") if isinstance(payload, Mapping) else None
                created = _parse_time(child.get("created_time"))
                if name == entry.name and (since is None or created is None or created >= since):
                    found = str(child.get("id"))  # the last one: appended at the end
            return found
        if target.action == "replace":
            assert target.block_id is not None
            block = self.api.get_block(target.block_id)
            url = _file_url(block.get(str(block.get("type"))))
            now = file_key(url) if url else None
            return target.block_id if now != entry.checks.get("old_key") else None
        assert target.page_id is not None and target.property_name is not None
        _, existing = self._files_now(target.page_id, target.property_name)
        if "entries" in entry.checks:
            return _new_entry(existing, entry.name, set(entry.checks["entries"]))
        # Checks saved by a notionfs before journal schema 2 kept file_key()s of the URLs.
        before = set(entry.checks.get("existing", []))
        for item in existing:
            url = _file_url(item)
            if item.get("name") == entry.name and url and file_key(url) not in before:
                return target.page_id
        return None

    def _files_now(self, page_id: str, wanted: str) -> tuple[str, list[dict[str, Any]]]:
        """(name, entries) of a files property, read now. A page object shows at most 25
        references per property; past that the property is read on its own (Retrieve a
        page property item), so a rewrite never drops the entries a page object left out."""
        page = self.api.get_page(page_id)
        name, existing = _files_property(page, wanted)
        if len(existing) >= PAGE_OBJECT_REFERENCES:
            prop_id = page["properties"][name].get("id")
            items = self.api.client.page_property(page_id, str(prop_id)) if prop_id else []
            full = [f for item in items if isinstance(item.get("files"), list)
                    for f in item["files"] if isinstance(f, dict)]
            if len(full) >= len(existing):
                existing = full
        return name, existing

    def _edit_property(self, entry: Entry) -> Entry:
        """An entry of a files property removed or renamed (no upload): the page read
        fresh, the array rewritten without it or with its new name, sent whole."""
        target = entry.target
        assert target.page_id is not None and target.property_name is not None
        name, existing = self._files_now(target.page_id, target.property_name)
        index = _locate(existing, target)
        removing = target.action == "property_remove"
        if index is None:
            if removing:
                return self._done(entry, target.page_id, "not in the property (already removed)")
            found = None
            if entry.checks.get("sent"):  # renamed by the attempt whose answer was lost?
                found = _new_entry(existing, entry.name, set(entry.checks.get("entries", [])))
            if found is None:
                raise UploadFailedError(
                    f"{entry.name!r}: the file to rename is no longer in property {name!r}"
                )
            return self._done(entry, found, "renamed (checked before retrying)")
        if not removing and existing[index].get("name") == entry.name:
            return self._done(entry, _entry_keys([existing[index]])[0], "already so named")
        files = [_resend(item) for item in existing]
        if removing:
            del files[index]
        else:
            files[index]["name"] = entry.name
        entry = self._save(
            entry.but(state="attaching", checks=MappingProxyType(
                {"sent": True, "entries": _entry_keys(existing)})),
            f"{'removing' if removing else 'renaming'} an entry of property {name!r}",
        )
        try:
            answer = self.api.update_page(target.page_id,
                                          {"properties": {name: {"files": files}}})
        except ApiError as error:
            if isinstance(error, (RateLimitedError, AuthError, ServerError)):
                raise  # tried again later: the page is read anew first
            raise UploadFailedError(f"Notion refused to change property {name!r}: {error}") \
                from error
        if removing:
            return self._done(entry, target.page_id, "removed from the property")
        after = _files_of(answer, name)
        renamed = after[index] if index < len(after) else {}
        keys = _entry_keys([renamed])
        return self._done(entry, keys[0] if keys else target.page_id, "renamed")

    def _trash(self, entry: Entry) -> Entry:
        assert entry.target.block_id is not None
        block_id = entry.target.block_id
        entry = self._save(entry.but(state="attaching", checks=MappingProxyType({"sent": True})),
                           "trashing")
        try:
            self.api.delete_block(block_id)
        except NotFoundError:
            raise UploadFailedError(f"block {block_id} is not there to trash") from None
        except (ApiError, NetworkError) as error:
            if isinstance(error, RateLimitedError):
                raise
            # A lost answer, or "already archived" (a retry of one that was applied).
            block = self.api.get_block(block_id)
            if not (block.get("in_trash") or block.get("archived")):
                if isinstance(error, _AMBIGUOUS):
                    raise
                raise UploadFailedError(f"Notion refused to trash {block_id}: {error}") \
                    from error
        return self._done(entry, block_id, "trashed")

    # ---- saving ----------------------------------------------------------------------------------

    def _done(self, entry: Entry, result_id: str, why: str) -> Entry:
        return self._save(entry.but(state="done", result_id=result_id, last_error=None), why)

    def _save(self, entry: Entry, why: str, *, level: int = logging.INFO) -> Entry:
        saved = self.journal.save(entry)
        logger.log(level, "upload %s %r: %s: %s", entry.id[:8], entry.name or
                   entry.target.block_id, saved.state, why)
        self.on_saved(saved)
        return saved


# ---- reading Notion's objects ------------------------------------------------------------------


def _file_url(item: Any) -> str | None:
    """The URL of a file object (hosted or external); None when it has none."""
    if not isinstance(item, Mapping):
        return None
    kind = item.get("type")
    inner = item.get(kind) if isinstance(kind, str) else None
    url = inner.get("url") if isinstance(inner, Mapping) else None
    return url if isinstance(url, str) and url else None


def _files_property(page: Mapping[str, Any], wanted: str) -> tuple[str, list[dict[str, Any]]]:
    """(name, entries) of the page's files property named or identified ``wanted``."""
    props = page.get("properties")
    if not isinstance(props, Mapping):
        raise UploadFailedError(f"page {page.get('id')} has no properties")
    for name, prop in props.items():
        if not isinstance(prop, Mapping) or wanted not in (name, prop.get("id")):
            continue
        if prop.get("type") != "files":
            raise UploadFailedError(f"property {name!r} is a {prop.get('type')}, not files")
        files = prop.get("files")
        return str(name), [f for f in files if isinstance(f, dict)] if isinstance(files,
                                                                                   list) else []
    raise UploadFailedError(f"page {page.get('id')} has no property {wanted!r}")


def _files_of(page: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The entries of property ``name`` in a page answer; [] when it does not show them."""
    try:
        return _files_property(page, name)[1]
    except UploadFailedError:
        return []


def _entry_keys(items: list[dict[str, Any]]) -> list[str]:
    """``entry_key()`` of each entry that has a URL."""
    return [entry_key(url) for item in items if (url := _file_url(item))]


def _locate(items: list[dict[str, Any]], target: Target) -> int | None:
    """The position of the target's entry (by its key; among entries that share one, the
    one at ``entry_index`` if it is one of them, else the first); None if it is gone."""
    hits = [i for i, item in enumerate(items)
            if (url := _file_url(item)) and entry_key(url) == target.entry_key]
    if not hits:
        return None
    return target.entry_index if target.entry_index in hits else hits[0]


def _new_entry(items: list[dict[str, Any]], name: str | None, before: set[str]) -> str | None:
    """The key of the last entry named ``name`` whose file was not in ``before``: a file
    this write put there."""
    found = None
    for item in items:
        url = _file_url(item)
        if item.get("name") == name and url and entry_key(url) not in before:
            found = entry_key(url)
    return found


def _resend(item: Mapping[str, Any]) -> dict[str, Any]:
    """An existing files-property entry as a request keeps it: its name and its file by URL
    (Notion re-links a hosted file from the URL it gave; an external one keeps its URL)."""
    kind = str(item.get("type"))
    url = _file_url(item)
    resent: dict[str, Any] = {"type": kind, kind: {"url": url}}
    if isinstance(item.get("name"), str):
        resent["name"] = item["name"]
    return resent


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
