"""The mount's files: one RemoteFile per file identity, and their size probes."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable

import httpx

from .blockcache import BlockCache
from .config import Settings
from .errors import NotionFSError
from .fileurl import Resolver
from .models import FileRef
from .remote import RemoteFile
from .resolvers import location_of

__all__ = ["RemoteFiles"]

logger = logging.getLogger(__name__)


class RemoteFiles:
    """Owns the block cache, the fetch and probe pools, and the RemoteFile of every file a
    listing refers to (shared by the synced copies of a block across pages; forgotten once
    no node holds it, so a long mount over a changing workspace does not grow)."""

    def __init__(
        self,
        http: httpx.Client,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_size: Callable[[str, int], None] | None = None,
    ) -> None:
        self._http = http
        self._on_size = on_size  # told each size a probe learns (kept on disk)
        self._settings = settings
        self._clock = clock
        self.cache = BlockCache(settings.cache_size_bytes, settings.block_size_bytes)
        self._fetch_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.fetch_workers, thread_name_prefix="notionfs-fetch"
        )
        self._probe_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.probe_workers, thread_name_prefix="notionfs-probe"
        )
        self._lock = threading.Lock()  # guards the two tables below; no I/O under it
        self._remotes: weakref.WeakValueDictionary[str, RemoteFile] = (
            weakref.WeakValueDictionary()
        )
        self._probe_failed_at: dict[str, float] = {}  # file key -> when its probe last failed

    def close(self) -> None:
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        self._fetch_pool.shutdown(wait=False, cancel_futures=True)

    def remote_for(
        self, file_key: str, ref: FileRef, resolver: Resolver, known_size: int | None = None
    ) -> RemoteFile:
        """The RemoteFile for ``file_key``; one already held adopts the listing's newer URL,
        so an expiry costs no API call of its own. ``known_size``: kept from an earlier
        mount (a file's identity includes its version, so its size cannot have changed)."""
        with self._lock:
            remote = self._remotes.get(file_key)
            if remote is None:
                remote = RemoteFile(
                    file_key,
                    resolver,
                    self._http,
                    self.cache,
                    self._settings,
                    executor=self._fetch_pool,
                    known_size=known_size,
                )
                self._remotes[file_key] = remote
                return remote
        remote.offer(location_of(ref))
        return remote

    def known_sizes(self) -> dict[str, int]:
        """Every size known now, by file key."""
        with self._lock:
            remotes = list(self._remotes.items())
        return {key: r.known_size for key, r in remotes if r.known_size is not None}

    def probe(self, remotes: Iterable[RemoteFile]) -> None:
        """Probe every file's size in parallel; the probe also brings the file's first bytes.
        A probe under way is not asked again, nor one that failed within the metadata TTL
        (a later stat still tries, and says why it fails)."""
        now = self._clock()
        for remote in remotes:
            if remote.known_size is not None or remote.probing:
                continue
            with self._lock:
                failed_at = self._probe_failed_at.get(remote.key)
            if failed_at is not None and now - failed_at < self._settings.metadata_ttl_s:
                continue
            self._probe_pool.submit(self._probe_quietly, remote)

    def _probe_quietly(self, remote: RemoteFile) -> None:
        failed = True
        try:
            size = remote.size()
            failed = False
            if self._on_size is not None:
                self._on_size(remote.key, size)
        except NotionFSError as exc:
            logger.info("size probe failed for %s: %s", remote.key, exc)
        except Exception:
            logger.exception("size probe failed for %s", remote.key)
        with self._lock:
            if failed:
                self._probe_failed_at[remote.key] = self._clock()
            else:
                self._probe_failed_at.pop(remote.key, None)
