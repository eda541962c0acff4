"""A test rig for the upload engine: the emulator over loopback HTTP, a journal, a staging
area, the engine and its queue, and a way to "crash" and start again over the same disk."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.journal import Journal
from notionfs.staging import StagedFile, StagingArea
from notionfs.uploadqueue import UploadQueue
from notionfs.uploads import UploadEngine
from notionfs.writeapi import WriteApi
from tests.emulator.conftest import TOKEN, World, children

MiB = 1 << 20
SEND = "POST /v1/file_uploads/{id}/send"
CREATE = "POST /v1/file_uploads"
COMPLETE = "POST /v1/file_uploads/{id}/complete"
APPEND = "PATCH /v1/blocks/{id}/children"
UPDATE_BLOCK = "PATCH /v1/blocks/{id}"
UPDATE_PAGE = "PATCH /v1/pages/{id}"
DELETE_BLOCK = "DELETE /v1/blocks/{id}"


def random_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ per seed (os.urandom is fast; the seed only varies
    the head, so two files of one test never compare equal)."""
    return seed.to_bytes(8, "big") + os.urandom(max(0, size - 8)) if size >= 8 else \
        os.urandom(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Rig:
    world: World
    root: Path
    settings: Settings
    client: NotionClient
    api: WriteApi
    journal: Journal
    staging: StagingArea
    engine: UploadEngine
    queue: UploadQueue
    _old: list[Any] = field(default_factory=list)

    @property
    def counters(self) -> Any:
        return self.world.emulator.counters

    def stage(self, data: bytes, chunk: int = MiB) -> StagedFile:
        staged = self.staging.create()
        for offset in range(0, len(data), chunk):
            staged.write(offset, data[offset : offset + chunk])
        return staged

    def restart(self, **queue_options: Any) -> Rig:
        """What a new process after ``kill -9`` sees: the same journal and staging files,
        new objects (the old journal's lock released, nothing tidied)."""
        self.journal.close()
        self._old.append(self.queue)
        fresh = build_rig(self.world, self.root, self.settings, client=self.client,
                          **queue_options)
        fresh._old = self._old
        return fresh

    def drain(self, timeout_s: float = 20.0) -> None:
        """Run the journal's entries here until none is unfinished (past any retry backoff
        an outage left), or fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.journal.unfinished() and time.monotonic() < deadline:
            if self.queue.run_due() == 0:
                time.sleep(0.05)
        assert self.journal.unfinished() == [], self.journal.unfinished()

    def block_bytes(self, block_id: str) -> bytes:
        block = self.world.client().get(f"/v1/blocks/{block_id}").json()
        kind = block["type"]
        return self.world.download(block[kind]["file"]["url"])

    def children(self, page_id: str) -> list[dict[str, Any]]:
        return children(self.world.client(), page_id)


def build_rig(
    world: World,
    root: Path,
    settings: Settings | None = None,
    *,
    client: NotionClient | None = None,
    staging_max_bytes: int = 1024 * MiB,
    part_bytes: int = 10 * MiB,
    parts_in_flight: int = 3,
    **queue_options: Any,
) -> Rig:
    settings = settings or Settings(
        token=TOKEN,
        api_url=world.emulator.api_url,
        rate_limit_rps=1000.0,
        rate_limit_burst=1000,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        op_deadline_s=20.0,
    )
    client = client or NotionClient(settings)
    api = WriteApi(client)
    journal = Journal(root / "journal.db")
    staging = StagingArea(root, staging_max_bytes)
    engine = UploadEngine(api, journal, staging, part_bytes=part_bytes,
                          parts_in_flight=parts_in_flight)
    queue_options.setdefault("retry_base_s", 0.05)
    queue_options.setdefault("retry_cap_s", 0.2)
    queue = UploadQueue(engine, **queue_options)
    return Rig(world, root, settings, client, api, journal, staging, engine, queue)


def handed_over(source: Any, folder: Any, name: str, timeout_s: float = 10.0) -> Any:
    """The node ``name`` in ``folder`` once a listing fetched after its upload shows
    Notion's file (with a change feed the folder is re-listed behind its next answer,
    the local layer showing the file meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        node = {n.name: n for n in source.listdir(folder)}[name]
        if not node.key.startswith("local:") or time.monotonic() > deadline:
            return node
        time.sleep(0.02)
