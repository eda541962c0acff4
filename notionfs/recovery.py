"""Files a mount died writing: saved by the next mount, beside what is there.

A file being written lives in its staged copy, and is journalled (so survives anything)
when it is flushed, closed or the mount stops. A mount killed while a program still had
the file open leaves a staged copy no journal entry names, and beside it the note
``locallayer.remember`` kept of where it was going. The next mount journals each such copy
as a new file of that folder under ``NAME (recovered YYYY-MM-DD HHMM).ext`` (the time of
its last write): the bytes are saved, and never over the file that was there, which may
be the good version of a half-written one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import NotionFSError, NotWritableError
from .journal import Entry, Target
from .localwrites import dated
from .propentries import property_folder
from .uploadqueue import UploadQueue, new_block_target

__all__ = ["recover_unsaved"]

logger = logging.getLogger(__name__)


def recover_unsaved(queue: UploadQueue) -> list[Entry]:
    """Journal every staged copy an earlier mount left unjournalled; the entries made.
    Scratch files and empty copies go; a copy with no readable note, or one Notion would
    refuse, stays on disk (logged with its path)."""
    journal, staging = queue.journal, queue.staging
    known = [Path(e.staged_path) for e in journal.entries() if e.staged_path]
    recovered: list[Entry] = []
    for path in staging.orphans(known):
        try:
            entry = _recover(queue, path)
        except (NotionFSError, OSError, ValueError) as error:
            logger.warning("staged copy %s, left by a mount that died, is kept: %s", path,
                           error)
            continue
        if entry is not None:
            recovered.append(entry)
    staging.sweep_notes()
    return recovered


def _recover(queue: UploadQueue, path: Path) -> Entry | None:
    staging = queue.staging
    note = staging.note_of(path)
    if note is None:
        logger.warning("staged copy %s: left by a mount that died, with no note of where it "
                       "was going; kept", path)
        return None
    name = str(note.get("name") or "")
    st = path.stat()
    if note.get("scratch") or st.st_size == 0:
        logger.info("%r: a %s left by a mount that died; removed", name,
                    "scratch file" if note.get("scratch") else "file still empty")
        staging.remove(path)
        return None
    saved_as = dated(name, "recovered", st.st_mtime)
    target = _target(note, saved_as)
    with staging.open(path) as staged:
        entry = queue.submit(staged, target, name=saved_as)
    logger.warning("%r: the mount died while a program was writing it; the %d bytes it wrote "
                   "are saved beside it as %r", name, st.st_size, saved_as)
    return entry


def _target(note: dict[str, object], name: str) -> Target:
    """Where a recovered file goes: a new entry of its files property, or a new block of
    its page."""
    prop = property_folder(str(note.get("folder_key") or ""))
    if prop is not None:
        return prop.append()
    folder_id = note.get("folder_id")
    if not isinstance(folder_id, str) or not folder_id:
        raise NotWritableError(f"{name!r}: its folder takes no new files")
    return new_block_target(folder_id, name)

