"""`notionfs cache info` and `notionfs cache clear`: the metadata caches on disk, offline."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sqlite3
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .preflight import approx_size
from .storefile import DB_SUFFIX, StoreInfo, cache_root, database_files, read_info, set_aside_files

__all__ = ["add_arguments", "run", "holder_pid"]

_SIDE_SUFFIXES = ("-wal", "-shm")
# SQLite's unix VFS locks bytes 120..128 of the -shm file (its WAL locks and the "DMS"
# byte, sqlite3.c: UNIX_SHM_BASE, UNIX_SHM_DMS); every open connection holds a shared lock
# on the DMS byte for as long as it is open.
_SHM_LOCK_START, _SHM_LOCK_LEN = 120, 9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `cache` command's arguments: subcommands `info` and `clear`."""
    sub = parser.add_subparsers(dest="cache_command", required=True, metavar="{info,clear}")
    info = sub.add_parser("info", help="list the metadata caches: workspace, size, contents")
    info.add_argument(
        "databases", nargs="*", metavar="DATABASE",
        help="only these (a name from `cache info`, a unique start of one, or a workspace id)",
    )
    clear = sub.add_parser("clear", help="remove metadata caches (the next mount starts afresh)")
    clear.add_argument(
        "databases", nargs="*", metavar="DATABASE",
        help="the caches to remove (a name from `cache info`, a unique start of one, "
        "or a workspace id)",
    )
    clear.add_argument(
        "--all", action="store_true", help="remove every cache and every set-aside copy"
    )
    for p in (info, clear):
        p.add_argument(
            "--cache-dir",
            help="notionfs's cache directory (default: $NOTIONFS_CACHE_DIR, "
            "$XDG_CACHE_HOME/notionfs or ~/.cache/notionfs); caches sit in its metadata/",
        )


def run(args: argparse.Namespace) -> int:
    """Runs `cache info` or `cache clear`; the exit status (0 done, 1 failed, 2 bad usage)."""
    cache_dir = getattr(args, "cache_dir", None)
    root = cache_root({"NOTIONFS_CACHE_DIR": cache_dir}) if cache_dir else cache_root()
    if args.cache_command == "info":
        return _info(root, args.databases)
    if args.cache_command == "clear":
        return _clear(root, args.databases, everything=args.all)
    raise ValueError(f"unknown cache command {args.cache_command!r}")


# ---- selecting ------------------------------------------------------------------------------


def _stem(path: Path) -> str:
    return path.name[: -len(DB_SUFFIX)]


def _workspace_of(path: Path) -> str | None:
    try:
        return read_info(path).identity.workspace_id
    except (OSError, sqlite3.Error):
        return None


def _select(root: Path, names: Sequence[str]) -> list[Path] | str:
    """The databases ``names`` pick out, or the message saying why not."""
    databases = database_files(root)
    chosen: list[Path] = []
    for name in names:
        wanted = name.removesuffix(DB_SUFFIX)
        exact = [p for p in databases if _stem(p) == wanted]
        # A start of a name must be 4+ characters: "a" matching a 16th of them is a slip.
        by_prefix = [p for p in databases if len(wanted) >= 4 and _stem(p).startswith(wanted)]
        by_workspace = [p for p in databases if _workspace_of(p) == name]
        matches = exact or by_workspace or by_prefix
        if not matches:
            return (
                f"no metadata cache matches {name!r} under {root} "
                "(`notionfs cache info` lists them)"
            )
        if len(matches) > 1 and not by_workspace:
            return f"{name!r} matches {len(matches)} caches; give more of the name"
        chosen.extend(p for p in matches if p not in chosen)
    return chosen


# ---- info -----------------------------------------------------------------------------------


def _info(root: Path, names: Sequence[str]) -> int:
    databases = database_files(root)
    aside = set_aside_files(root)
    if names:
        selected = _select(root, names)
        if isinstance(selected, str):
            print(f"notionfs: {selected}", file=sys.stderr)
            return 2
        databases = selected
        aside = [p for p in aside if any(p.name.startswith(d.name + ".") for d in databases)]
    if not databases and not aside:
        print(f"no metadata cache under {root}")
        return 0
    total = sum(_disk_bytes(p) for p in databases) + sum(_size(p) for p in aside)
    count = f"{len(databases)} cache{'s' if len(databases) != 1 else ''}"
    print(f"metadata caches under {root}: {count}, {approx_size(total)} on disk")
    for path in databases:
        print()
        _print_database(path)
    if aside:
        print()
        print(
            f"set aside (damaged, outdated or foreign; kept for a look): {len(aside)} "
            f"file{'s' if len(aside) != 1 else ''}, {approx_size(sum(_size(p) for p in aside))}"
        )
        for path in aside:
            print(f"  {path.name}  ({approx_size(_size(path))})")
        print("  `notionfs cache clear --all` removes them")
    return 0


def _print_database(path: Path) -> None:
    try:
        info = read_info(path)
    except (OSError, sqlite3.Error) as exc:
        print(f"{_stem(path)}  ({approx_size(_disk_bytes(path))})")
        print(f"  unreadable: {exc} (the next mount of its workspace sets it aside)")
        return
    print(f"{_stem(path)}  ({approx_size(info.bytes_on_disk)})")
    for label, value in _rows(info):
        print(f"  {label:<13}{value}")
    pid = holder_pid(path)
    if pid is not None:
        print(f"  {'in use':<13}by process {pid} (a running mount)")


def _rows(info: StoreInfo) -> list[tuple[str, str]]:
    identity = info.identity
    listings = f"{info.listings}"
    if info.oldest_fetched_at is not None and info.newest_fetched_at is not None:
        listings += (
            f", fetched {_when(info.oldest_fetched_at)} to {_when(info.newest_fetched_at)}"
        )
    rows = [
        ("workspace", identity.workspace_id or "(unknown)"),
        ("integration", f"bot user {identity.bot_id}" if identity.bot_id else "(unknown)"),
        ("API", f"{identity.api_url}, Notion-Version {identity.notion_version}"),
        ("folders", listings),
        ("file sizes", str(info.sizes)),
        ("change feed", "not polled yet" if info.high_water is None
         else f"seen up to {_short(info.high_water)}"),
    ]
    if isinstance(info.created_at, int | float):
        rows.append(("created", _when(float(info.created_at))))
    return rows


def holder_pid(path: Path) -> int | None:
    """The id of a process that has ``path``'s database open, if one does (Linux); else None.

    Asks the kernel which process holds SQLite's locks on the -shm file; a process that was
    killed holds none, so its leftover -wal does not count. Never call it from a process
    that has the database open: closing the descriptor used for the question drops every
    POSIX lock this process holds on that file (fcntl(2)), SQLite's too.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(f"{path}-shm", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        # struct flock on Linux: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid.
        layout = "hhqqi"
        probe = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, _SHM_LOCK_START, _SHM_LOCK_LEN, 0)
        probe += b"\0" * 16  # room for the kernel's larger struct, whatever its padding
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        l_type, _whence, _start, _len, pid = struct.unpack_from(layout, answer)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(pid) if l_type != fcntl.F_UNLCK and pid > 0 else None


# ---- clear ----------------------------------------------------------------------------------


def _clear(root: Path, names: Sequence[str], *, everything: bool) -> int:
    if everything and names:
        print("notionfs: give either --all or cache names, not both", file=sys.stderr)
        return 2
    if not everything and not names:
        print(
            "notionfs: say what to clear: --all, or names from `notionfs cache info`",
            file=sys.stderr,
        )
        return 2
    if everything:
        databases = database_files(root)
        aside = set_aside_files(root)
    else:
        selected = _select(root, names)
        if isinstance(selected, str):
            print(f"notionfs: {selected}", file=sys.stderr)
            return 2
        databases = selected
        aside = [p for p in set_aside_files(root)
                 if any(p.name.startswith(d.name + ".") for d in databases)]
    if not databases and not aside:
        print(f"no metadata cache under {root}: nothing to clear")
        return 0
    freed, failures = 0, 0
    for path in databases:
        label = _stem(path)
        workspace = _workspace_of(path)
        pid = holder_pid(path)
        size = _disk_bytes(path)
        errors = _remove([path, *(Path(f"{path}{s}") for s in _SIDE_SUFFIXES)])
        if errors:
            failures += 1
            print(f"notionfs: could not remove {label}: {'; '.join(errors)}", file=sys.stderr)
            continue
        freed += size
        about = f" (workspace {workspace})" if workspace else ""
        print(f"removed {label}{about}, {approx_size(size)}")
        if pid is not None:
            print(
                f"  process {pid} (a running mount) still has it open: it keeps its own copy "
                "until it is unmounted"
            )
    if aside:
        sizes = sum(_size(p) for p in aside)
        errors = _remove(aside)
        if errors:
            failures += 1
            print(f"notionfs: could not remove: {'; '.join(errors)}", file=sys.stderr)
        else:
            freed += sizes
            print(f"removed {len(aside)} set-aside file{'s' if len(aside) != 1 else ''}, "
                  f"{approx_size(sizes)}")
    print(f"freed {approx_size(freed)} under {root}")
    return 1 if failures else 0


def _remove(paths: Sequence[Path]) -> list[str]:
    errors = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors.append(f"{path.name}: {exc.strerror}")
    return errors


# ---- formatting -----------------------------------------------------------------------------


def _size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.stat().st_size
    return 0


def _disk_bytes(path: Path) -> int:
    return _size(path) + sum(_size(Path(f"{path}{s}")) for s in _SIDE_SUFFIXES)


def _when(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def _short(value: Any) -> str:
    """A high-water mark as a person reads it: an epoch time as local time, else its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _when(float(value))
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
