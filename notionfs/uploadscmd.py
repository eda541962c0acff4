"""`notionfs uploads`: what the upload journals hold, offline: list, save the bytes, retry.

Every byte a program wrote into a writable mount is either in Notion or on this disk, in
a staging area (one per workspace and integration, under ``<cache dir>/staging``) with its
journal entry. Most entries finish on their own, in the mount or the next one; the ones
Notion refused for good (state ``failed``: the page was deleted meanwhile, the integration
lost access, a file Notion will not take) wait for a person. This command shows every
entry and unsaved copy, copies an entry's bytes out (also while a mount runs: it only
reads), and, with no mount of that workspace running, makes a failed entry due again for
the next mount or drops it with its bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import ConfigError
from .journal import Entry, Journal, in_use, read_entries
from .preflight import approx_size
from .staging import StagingArea
from .uploadqueue import due_again, entry_status

__all__ = ["add_arguments", "run"]

_COPY_CHUNK = 1 << 20
# A staging area's StagingArea is opened here only to remove files: any bound will do.
_NO_BOUND = 1 << 62


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="uploads_command", metavar="{list,save,retry,discard}")
    listing = sub.add_parser("list", help="every journalled upload and unsaved copy (default)")
    save = sub.add_parser("save", help="copy an upload's bytes to a file (works while mounted)")
    save.add_argument("entry", metavar="ID", help="an entry id from `uploads list` (or its start)")
    save.add_argument("dest", metavar="DEST", help="a new file, or a directory to put it in")
    retry = sub.add_parser("retry", help="make a failed upload due again (for the next mount)")
    retry.add_argument("entry", metavar="ID")
    discard = sub.add_parser("discard", help="drop an upload and its bytes for good")
    discard.add_argument("entry", metavar="ID")
    for p in (parser, listing, save, retry, discard):
        p.add_argument(
            "--cache-dir", default=argparse.SUPPRESS,
            help="notionfs's cache directory (default: $NOTIONFS_CACHE_DIR, "
            "$XDG_CACHE_HOME/notionfs or ~/.cache/notionfs); staging areas sit in its staging/",
        )


def run(args: argparse.Namespace) -> int:
    """The exit status: 0 done, 1 failed, 2 bad usage (no such entry, an ambiguous id)."""
    cache_dir = getattr(args, "cache_dir", None) or Settings.from_env().cache_dir
    root = Path(cache_dir) / "staging"
    command = getattr(args, "uploads_command", None) or "list"
    try:
        if command == "list":
            return _list(root)
        found = _find(root, args.entry)
        if command == "save":
            return _save(found, Path(args.dest))
        if command == "retry":
            return _retry(found)
        return _discard(found)
    except _UsageError as error:
        print(f"notionfs uploads: {error}", file=sys.stderr)
        return 2
    except (ConfigError, OSError, sqlite3.Error) as error:
        print(f"notionfs uploads: {error}", file=sys.stderr)
        return 1


class _UsageError(Exception):
    pass


@dataclass(frozen=True)
class _Found:
    area: Path  # the staging area's directory
    entry: Entry


def _areas(root: Path) -> Iterator[Path]:
    if root.is_dir():
        for area in sorted(root.iterdir()):
            if (area / "journal.db").is_file():
                yield area


def _list(root: Path) -> int:
    rows = []
    for area in _areas(root):
        entries = read_entries(area / "journal.db")
        now = time.time()
        for e in entries:
            rows.append((e.id[:12], e.state, approx_size(e.size), _shown(e.name or ""), _where(e),
                         _shown(entry_status(e, now).detail)))
        staging = StagingArea(area, _NO_BOUND)
        mounted = in_use(area / "journal.db")
        for path in staging.orphans(Path(e.staged_path) for e in entries if e.staged_path):
            note = staging.note_of(path) or {}
            if mounted:  # a file a program is writing now
                state, where = "writing", "journalled when the program closes or syncs it"
            else:
                state = "unsaved"
                where = "saved by the next --writable mount" if note else str(path)
            rows.append(("-", state, approx_size(path.stat().st_size),
                         _shown(str(note.get("name", ""))), where, ""))
    if not rows:
        print("no uploads waiting: everything written is in Notion")
        return 0
    header = ("ID", "STATE", "SIZE", "NAME", "WHERE", "DETAIL")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(5)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[5])
    return 0


def _find(root: Path, wanted: str) -> _Found:
    wanted = wanted.strip().lower()
    if not wanted:
        raise _UsageError("no entry id given")
    matches = [_Found(area, e) for area in _areas(root)
               for e in read_entries(area / "journal.db") if e.id.startswith(wanted)]
    if not matches:
        raise _UsageError(f"no upload {wanted!r} (see `notionfs uploads list`)")
    if len(matches) > 1:
        raise _UsageError(f"{wanted!r} names {len(matches)} uploads: give more of its id")
    return matches[0]


def _save(found: _Found, dest: Path) -> int:
    entry = found.entry
    if entry.staged_path is None:
        raise _UsageError(f"upload {entry.id[:12]} ({entry.target.action}) carries no bytes")
    if dest.is_dir():
        # Only the last component of the name: never a path out of DEST.
        name = Path(entry.name or "").name
        dest = dest / (name if name not in ("", ".", "..") else f"{entry.id[:12]}.bin")
    digest = hashlib.sha256()
    copied = 0
    with open(entry.staged_path, "rb") as source:
        # O_EXCL: never over an existing file.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                copied += len(chunk)
    if entry.sha256 and digest.hexdigest() != entry.sha256:
        print(f"notionfs uploads: {dest}: the staged copy no longer matches what was "
              "journalled (changed on disk?)", file=sys.stderr)
        return 1
    print(f"{dest}: {copied} bytes")
    return 0


@contextlib.contextmanager
def _journal(found: _Found) -> Iterator[Journal]:
    try:
        journal = Journal(found.area / "journal.db")
    except ConfigError as error:
        raise ConfigError(f"{error}; unmount it first (`uploads save` works while mounted)"
                          ) from None
    try:
        yield journal
    finally:
        journal.close()


def _retry(found: _Found) -> int:
    with _journal(found) as journal:
        entry = journal.get(found.entry.id)
        if entry is None or entry.state == "done":
            print(f"upload {found.entry.id[:12]} is finished: nothing to retry")
            return 0
        entry = due_again(entry, time.time())
        journal.save(entry)
    print(f"upload {entry.id[:12]} {entry.name or ''}: due again; the next --writable mount "
          "of its workspace sends it")
    return 0


def _discard(found: _Found) -> int:
    with _journal(found) as journal:
        entry = journal.get(found.entry.id)
        if entry is None:
            return 0
        if entry.staged_path is not None:
            StagingArea(found.area, _NO_BOUND).remove(Path(entry.staged_path))
        journal.delete(entry.id)
    print(f"upload {entry.id[:12]} {entry.name or ''}: discarded with its bytes")
    return 0


def _where(entry: Entry) -> str:
    t = entry.target
    if t.action in ("append", "follow"):
        return f"new {t.block_kind or 'file'} block in page {t.parent_id}"
    if t.is_property:
        return f"{t.action.replace('_', ' ')} of {t.property_name!r} in page {t.page_id}"
    return f"{t.action} block {t.block_id}"


def _shown(text: str) -> str:
    """``text`` with control characters escaped: a name never drives the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
