"""What the mount keeps on disk between runs, and how it comes back: listings (with their
generated text), probed sizes, titles and the change feed's mark, in the metadata store.

Never kept: the token, signed URLs (a hosted file keeps only scheme, host and path, and comes
back as a URL already expired, so its first read asks Notion for a fresh one), file bytes.
A listing is written behind the fetch that made it, by one thread, after its generated text
is rendered, so the FUSE call that listed the folder never waits on the disk.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .client import NotionClient
from .errors import NotionFSError
from .fileurl import Resolver
from .lister import Found
from .models import FileRef, User
from .nodes import Kind, Node, Role
from .priority import background
from .resolvers import block_file, page_media, property_file
from .store import MetadataStore
from .storefile import (
    HIGH_WATER_STATE,
    StoreIdentity,
    database_files,
    database_name,
    read_info,
)

__all__ = [
    "Persistence", "StoredListing", "identity_of", "offline_identity", "open_store",
    "token_check", "token_matches",
]

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
_EXPIRED = datetime.fromtimestamp(0, UTC)
TOKEN_CHECK_STATE = "token_check"
FEED_MARK_STATE = HIGH_WATER_STATE
TITLES_STATE = "titles"
WORKSPACE_NAME_STATE = "workspace_name"


def token_check(token: str, salt: bytes | None = None) -> dict[str, str]:
    """A salted one-way check of the token that built a cache (never the token itself):
    a cache is served only to a mount with the same token."""
    salt = os.urandom(16) if salt is None else salt
    digest = hmac.new(salt, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return {"salt": salt.hex(), "sha256": digest}


def token_matches(check: Any, token: str) -> bool:
    if not isinstance(check, dict) or not isinstance(check.get("salt"), str):
        return False
    try:
        salt = bytes.fromhex(check["salt"])
    except ValueError:
        return False
    return hmac.compare_digest(token_check(token, salt)["sha256"], str(check.get("sha256")))


def identity_of(api_url: str, version: str, me: User) -> StoreIdentity:
    """The cache a mount with this integration (``me``, from users/me) may use."""
    workspace = me.workspace_id or f"name:{me.workspace_name or ''}"
    return StoreIdentity(api_url, workspace, me.id, version)


def _database_path(root: Path, identity: StoreIdentity) -> Path:
    return root / database_name(identity)


def open_store(
    root: Path, identity: StoreIdentity, token: str, warn: Callable[[str], None]
) -> MetadataStore:
    """The metadata store for ``identity``, served only to the token that built it: a cache
    built with another token (another person's access) is started afresh."""
    store = MetadataStore.open(root, identity, warn=warn)
    check = store.get_state(TOKEN_CHECK_STATE)
    if check is not None and not token_matches(check, token):
        warn("the metadata cache was built with another token; starting it afresh")
        store.close()
        path = _database_path(root, identity)
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            (root / name).unlink(missing_ok=True)
        store = MetadataStore.open(root, identity, warn=warn)
        check = None
    if check is None and store.enabled:
        store.put_state(TOKEN_CHECK_STATE, token_check(token))
    return store


def offline_identity(
    root: Path, api_url: str, version: str, token: str
) -> tuple[StoreIdentity, str] | None:
    """With Notion out of reach: the cache this token built for this API and version, and
    its workspace's name; None when there is none."""
    for path in database_files(root):
        try:
            info = read_info(path)
        except (OSError, sqlite3.Error):
            continue
        identity = info.identity
        if identity.api_url != api_url.rstrip("/") or identity.notion_version != version:
            continue
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
            try:
                rows = conn.execute(
                    "SELECT name, value FROM state WHERE name IN (?, ?)",
                    (TOKEN_CHECK_STATE, WORKSPACE_NAME_STATE),
                ).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            continue
        state = {name: json.loads(value) for name, value in rows}
        if token_matches(state.get(TOKEN_CHECK_STATE), token):
            return identity, str(state.get(WORKSPACE_NAME_STATE) or "workspace")
    return None


def _stored_location(ref: FileRef) -> str:
    """A file URL fit to keep: external URLs whole, hosted (signed) ones without query."""
    if ref.kind == "external":
        return ref.url
    parts = urlsplit(ref.url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _encode_file(ref: FileRef) -> dict[str, Any]:
    return {"kind": ref.kind, "url": _stored_location(ref), "name": ref.name}


def _decode_file(raw: Mapping[str, Any]) -> FileRef:
    kind = "external" if raw.get("kind") == "external" else "file"
    expiry = None if kind == "external" else _EXPIRED  # refreshed before its first use
    return FileRef(
        "external" if kind == "external" else "file", str(raw["url"]), expiry, raw.get("name")
    )


def encode_found(f: Found, size: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": f.kind.value, "key": f.key, "raw": f.raw_name, "order": f.order,
        "id": f.object_id, "ctime": f.ctime_s, "mtime": f.mtime_s, "url": f.notion_url,
        "role": f.role.value, "owner": f.owner_id,
    }  # fmt: skip
    if f.file_ref is not None:
        item["file"] = _encode_file(f.file_ref)
        item["file_key"] = f.file_key
        if size is not None:
            item["size"] = size
    if f.files:
        item["files"] = [_encode_file(ref) for ref in f.files]
    return item


@dataclass(frozen=True)
class StoredListing:
    """A listing as it comes back from disk."""

    found: list[Found]
    generated: tuple[str, bytes] | None
    block_ids: list[str]
    sizes: dict[str, int]  # file key -> size


class Persistence:
    """Writes listings behind their fetch and reads them back at mount time."""

    def __init__(self, store: MetadataStore, client: NotionClient) -> None:
        self.store = store
        self._client = client
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="notionfs-persist"
        )

    def close(self, drain_s: float = 10.0) -> None:
        """Write what is queued, for at most ``drain_s``: a save may render a table that
        asks Notion, and an unmount must not wait on a slow Notion. What is left is dropped
        (the next mount lists those folders again)."""
        try:
            self._writer.submit(lambda: None).result(timeout=drain_s)
        except (concurrent.futures.TimeoutError, RuntimeError):
            logger.info("metadata cache: gave up writing the last listings at unmount")
        self._writer.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    # ---- writing -----------------------------------------------------------------------

    def save_later(
        self,
        folder_key: str,
        found: list[Found],
        children: Mapping[str, Node],
        block_ids: Iterable[str],
    ) -> None:
        """Keep ``folder_key``'s new listing, once its generated text is rendered."""
        fetched_at = time.time()
        ids = list(block_ids)
        try:
            self._writer.submit(self._save_in_background, folder_key, fetched_at, found,
                                children, ids)
        except RuntimeError:  # shutting down: the next mount lists it again
            pass

    def _save_in_background(self, *args: Any) -> None:
        with background():  # rendering may fetch property values: nobody waits for them
            self._save(*args)

    def _save(
        self,
        folder_key: str,
        fetched_at: float,
        found: list[Found],
        children: Mapping[str, Node],
        block_ids: list[str],
    ) -> None:
        try:
            generated = None
            for node in children.values():
                if node.text is not None:
                    text = node.text.content().decode("utf-8")
                    generated = {"name": node.name, "text": text}
            remotes = {n.key: n.remote for n in children.values() if n.remote is not None}
            items = []
            for f in found:
                remote = remotes.get(f.key)
                items.append(encode_found(f, remote.known_size if remote else None))
            payload = {
                "v": PAYLOAD_VERSION, "children": items, "generated": generated,
                "blocks": block_ids,
            }  # fmt: skip
            self.store.put_listing(folder_key, fetched_at, payload)
        except NotionFSError as exc:  # the page text needed Notion, which could not answer now
            logger.info("listing of %s not kept on disk (%s): the next mount lists it again",
                        folder_key, exc)
        except Exception:  # never let the cache break the mount
            logger.exception("could not keep the listing of %s on disk", folder_key)

    def save_size(self, file_key: str, size: int) -> None:
        try:
            self.store.put_size(file_key, size)
        except ValueError as exc:
            logger.info("size of %s not kept: %s", file_key, exc)

    def save_state(self, name: str, value: Any) -> None:
        try:
            self.store.put_state(name, value)
        except ValueError as exc:
            logger.warning("state %s not kept: %s", name, exc)

    def save_mark(self, mark: float) -> None:
        self.save_state(FEED_MARK_STATE, mark)

    def save_titles(self, titles: Mapping[str, str]) -> None:
        self.save_state(TITLES_STATE, dict(titles))

    # ---- reading -----------------------------------------------------------------------

    def mark(self) -> float | None:
        value = self.store.get_state(FEED_MARK_STATE)
        return float(value) if isinstance(value, int | float) else None

    def titles(self) -> dict[str, str]:
        value = self.store.get_state(TITLES_STATE)
        if not isinstance(value, dict):
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def load(self) -> tuple[dict[str, tuple[float, StoredListing]], dict[str, int]]:
        """Every stored listing by folder key (with its fetch time), and the known sizes."""
        sizes = self.store.sizes()
        listings: dict[str, tuple[float, StoredListing]] = {}
        for folder_key, fetched_at, payload in self.store.listings():
            try:
                listings[folder_key] = (fetched_at, self._decode(folder_key, payload, sizes))
            except (KeyError, TypeError, ValueError) as exc:
                logger.info("stored listing of %s unusable (%s); it is listed anew", folder_key,
                            exc)
        return listings, sizes

    def _decode(
        self, folder_key: str, payload: Any, sizes: Mapping[str, int]
    ) -> StoredListing:
        if not isinstance(payload, dict) or payload.get("v") != PAYLOAD_VERSION:
            raise ValueError("another payload version")
        found = [self._decode_found(folder_key, item) for item in payload["children"]]
        generated = None
        raw = payload.get("generated")
        if isinstance(raw, dict):
            generated = (str(raw["name"]), str(raw["text"]).encode("utf-8"))
        known = dict(sizes)
        for item in payload["children"]:
            if "size" in item and item.get("file_key"):
                known.setdefault(str(item["file_key"]), int(item["size"]))
        return StoredListing(found, generated, [str(b) for b in payload.get("blocks", [])], known)

    def _decode_found(self, folder_key: str, item: Mapping[str, Any]) -> Found:
        kind, role = Kind(item["kind"]), Role(item["role"])
        object_id = item.get("id")
        ref = _decode_file(item["file"]) if "file" in item else None
        resolver = None
        if ref is not None:
            resolver = self._resolver(folder_key, role, object_id, ref)
        return Found(
            kind=kind, key=str(item["key"]), raw_name=str(item["raw"]), order=str(item["order"]),
            object_id=object_id, ctime_s=float(item["ctime"]), mtime_s=float(item["mtime"]),
            notion_url=item.get("url"), role=role, file_ref=ref, file_key=item.get("file_key"),
            resolver=resolver, files=tuple(_decode_file(r) for r in item.get("files", ())),
            owner_id=item.get("owner"),
        )  # fmt: skip

    def _resolver(
        self, folder_key: str, role: Role, object_id: str | None, ref: FileRef
    ) -> Resolver:
        """The same owner re-fetch the lister would have given this file."""
        if object_id is None:
            raise ValueError("a stored file without its owner's id")
        if role is Role.BLOCK:
            return block_file(self._client, object_id, ref)
        if role in (Role.COVER, Role.ICON):
            return page_media(self._client, object_id, role.value, ref)
        if role is Role.PROPERTY:
            prop_id = folder_key.rsplit("/prop:", 1)[-1]
            return property_file(self._client, object_id, prop_id, ref)
        raise ValueError(f"a stored file of role {role}")

