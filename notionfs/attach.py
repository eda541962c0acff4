"""Attaching an uploaded file into its place, checked when an outcome is unknown; trash; edits.

- attach: a new block appended to a page, a file block's file replaced in place, a row's
  files property extended or one of its entries replaced in place (its entries re-sent, in
  order), or a block trashed. An attach whose answer was lost (connection cut, 5xx, a
  crash) is CHECKED before it is sent again: the page's children, the block or the
  property is read to see whether the file is already there, so a retry never duplicates a
  block or an entry.
- property edits without an upload (an entry removed or renamed) read the page, rewrite
  the array and send it; a retry reads the page again, so it applies the edit at most once.

Every transition is saved through the engine (uploads.py), which owns the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from notionfs.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UploadFailedError,
)
from notionfs.filesarray import (
    added_entry,
    entry_keys,
    file_url,
    files_now,
    files_of,
    locate,
    resend,
)
from notionfs.filetypes import BLOCK_KINDS, check_file
from notionfs.journal import Entry, file_key
from notionfs.writeapi import WriteApi

__all__ = ["AMBIGUOUS", "Attacher"]

logger = logging.getLogger(__name__)

# Errors after which a write may or may not have been applied: check before repeating it.
AMBIGUOUS = (NetworkError, ServerError)


class Attacher:
    """The second half of an entry's run, and the runs that upload nothing: each call
    ends the entry ``done`` or raises what stopped it, its progress saved by ``save``.
    ``check_expired`` raises the engine's restart signal after a refusal that means
    Notion no longer has the upload."""

    def __init__(
        self,
        api: WriteApi,
        *,
        save: Callable[[Entry, str], Entry],
        check_expired: Callable[[Entry, ApiError], None],
    ) -> None:
        self.api = api
        self._save = save
        self._check_expired = check_expired

    def attach(self, entry: Entry) -> Entry:
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
        except AMBIGUOUS as error:
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
            old = file_url(block.get(kind))
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
        name, existing = files_now(self.api, target.page_id, target.property_name)
        files = [resend(item) for item in existing]
        new_entry = {**upload, "name": entry.name}
        if target.action == "property_replace":
            index = locate(existing, target)
            if index is None:
                raise ConflictError(
                    f"{entry.name!r} changed in Notion since it was opened (its file is no "
                    f"longer in property {name!r})"
                )
            files[index] = new_entry
        else:
            files.append(new_entry)
        page_id = target.page_id
        keys = entry_keys(existing)

        def update_page() -> str:
            answer = self.api.update_page(page_id, {"properties": {name: {"files": files}}})
            return added_entry(files_of(answer, name), entry.name, set(keys)) or page_id

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
            url = file_url(block.get(str(block.get("type"))))
            now = file_key(url) if url else None
            return target.block_id if now != entry.checks.get("old_key") else None
        assert target.page_id is not None and target.property_name is not None
        _, existing = files_now(self.api, target.page_id, target.property_name)
        if "entries" in entry.checks:
            return added_entry(existing, entry.name, set(entry.checks["entries"]))
        # Checks saved by a notionfs before journal schema 2 kept file_key()s of the URLs.
        before = set(entry.checks.get("existing", []))
        for item in existing:
            url = file_url(item)
            if item.get("name") == entry.name and url and file_key(url) not in before:
                return target.page_id
        return None

    def edit_property(self, entry: Entry) -> Entry:
        """An entry of a files property removed or renamed (no upload): the page read
        fresh, the array rewritten without it or with its new name, sent whole."""
        target = entry.target
        assert target.page_id is not None and target.property_name is not None
        name, existing = files_now(self.api, target.page_id, target.property_name)
        index = locate(existing, target)
        removing = target.action == "property_remove"
        if index is None:
            if removing:
                return self._done(entry, target.page_id, "not in the property (already removed)")
            found = None
            if entry.checks.get("sent"):  # renamed by the attempt whose answer was lost?
                found = added_entry(existing, entry.name, set(entry.checks.get("entries", [])))
            if found is None:
                raise UploadFailedError(
                    f"{entry.name!r}: the file to rename is no longer in property {name!r}"
                )
            return self._done(entry, found, "renamed (checked before retrying)")
        if not removing and existing[index].get("name") == entry.name:
            return self._done(entry, entry_keys([existing[index]])[0], "already so named")
        files = [resend(item) for item in existing]
        if removing:
            del files[index]
        else:
            files[index]["name"] = entry.name
        entry = self._save(
            entry.but(state="attaching", checks=MappingProxyType(
                {"sent": True, "entries": entry_keys(existing)})),
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
        after = files_of(answer, name)
        renamed = after[index] if index < len(after) else {}
        keys = entry_keys([renamed])
        return self._done(entry, keys[0] if keys else target.page_id, "renamed")

    def trash(self, entry: Entry) -> Entry:
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
                if isinstance(error, AMBIGUOUS):
                    raise
                raise UploadFailedError(f"Notion refused to trash {block_id}: {error}") \
                    from error
        return self._done(entry, block_id, "trashed")

    def _done(self, entry: Entry, result_id: str, why: str) -> Entry:
        return self._save(entry.but(state="done", result_id=result_id, last_error=None), why)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
