"""`notionfs cache info` / `notionfs cache clear`: what they print and remove, offline."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notionfs import cachecmd
from notionfs.store import (
    HIGH_WATER_STATE,
    MetadataStore,
    StoreIdentity,
    database_name,
    set_aside_files,
)

REPO = Path(__file__).resolve().parents[2]
ALPHA = StoreIdentity("https://api.notion.com", "ws-alpha", "bot-alpha", "2025-09-03")
BETA = StoreIdentity("http://127.0.0.1:8123", "ws-beta", "bot-beta", "2022-06-28")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands never touch the network nor need a token."""
    monkeypatch.delenv("NOTION_TOKEN", raising=False)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cache commands opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "nfs-cache"


def _root(cache_dir: Path) -> Path:
    return cache_dir / "metadata"


def _parser() -> argparse.ArgumentParser:
    """Wired as the command line wires it: `notionfs cache ...`."""
    parser = argparse.ArgumentParser(prog="notionfs")
    sub = parser.add_subparsers(dest="command", required=True)
    cachecmd.add_arguments(sub.add_parser("cache"))
    return parser


def _cache(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = _parser().parse_args(["cache", *argv])
    assert args.command == "cache"
    code = cachecmd.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def _make(cache_dir: Path, identity: StoreIdentity, listings: int, sizes: int,
          high_water: str | float | None = None) -> Path:
    store = MetadataStore.open(_root(cache_dir), identity, warn=pytest.fail)
    for i in range(listings):
        store.put_listing(f"folder-{i}", 1_700_000_000.0 + i * 60, {"children": [i]})
    for i in range(sizes):
        store.put_size(f"file-{i}", i)
    if high_water is not None:
        store.put_state(HIGH_WATER_STATE, high_water)
    store.close()
    return _root(cache_dir) / database_name(identity)


@pytest.fixture
def populated(cache_dir: Path) -> Iterator[dict[str, Path]]:
    paths = {
        "alpha": _make(cache_dir, ALPHA, 3, 5, "2024-05-01T10:00:00.000Z"),
        "beta": _make(cache_dir, BETA, 1, 0),
    }
    root = _root(cache_dir)
    paths["junk"] = root / "00ff00ff00ff.sqlite3"
    paths["junk"].write_bytes(os.urandom(3000))
    paths["aside"] = root / f"{database_name(ALPHA)}.corrupt-20240101T000000Z"
    paths["aside"].write_bytes(b"x" * 2048)
    paths["aside_beta"] = root / f"{database_name(BETA)}.old-20240101T000000Z"
    paths["aside_beta"].write_bytes(b"y" * 100)
    yield paths


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mode, p.read_bytes()) for p in sorted(root.iterdir())}


def test_info_lists_every_cache(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    before = _snapshot(_root(cache_dir))
    code, out, err = _cache(capsys, "info", "--cache-dir", str(cache_dir))
    assert code == 0 and err == ""
    assert f"under {_root(cache_dir)}: 3 caches" in out
    alpha = out[out.index(database_name(ALPHA)[:-8]):]
    alpha = alpha[: alpha.index("\n\n")]
    for expected in ("workspace    ws-alpha", "bot user bot-alpha",
                     "https://api.notion.com, Notion-Version 2025-09-03", "folders      3, fetched",
                     "file sizes   5", "seen up to 2024-05-01T10:00:00.000Z"):
        assert expected in alpha, expected
    beta = out[out.index(database_name(BETA)[:-8]):]
    assert "ws-beta" in beta and "folders      1" in beta and "not polled yet" in beta
    assert "00ff00ff00ff  (2.9 KiB)\n  unreadable: file is not a database" in out
    assert "set aside (damaged, outdated or foreign; kept for a look): 2 files" in out
    assert populated["aside"].name in out and populated["aside_beta"].name in out
    # Looking changes nothing: no file made, removed, moved or rewritten.
    assert _snapshot(_root(cache_dir)) == before


def test_info_shows_an_epoch_mark_as_a_time(
    capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    mark = 1_714_557_600.0
    _make(cache_dir, ALPHA, 1, 0, high_water=mark)
    code, out, _err = _cache(capsys, "info", "--cache-dir", str(cache_dir))
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mark))
    assert code == 0 and f"change feed  seen up to {expected}\n" in out


def test_info_for_one_cache(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    code, out, _err = _cache(capsys, "info", "ws-beta", "--cache-dir", str(cache_dir))
    assert code == 0
    assert "1 cache," in out and "ws-beta" in out and "ws-alpha" not in out
    assert populated["aside_beta"].name in out and populated["aside"].name not in out
    code, _out, err = _cache(capsys, "info", "nothing-like-it", "--cache-dir", str(cache_dir))
    assert code == 2 and "no metadata cache matches 'nothing-like-it'" in err


def test_info_of_an_empty_or_missing_root(
    capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    code, out, _err = _cache(capsys, "info", "--cache-dir", str(cache_dir))
    assert code == 0 and out == f"no metadata cache under {_root(cache_dir)}\n"
    assert not cache_dir.exists()  # info creates nothing


def test_default_cache_dir_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _make(cache_dir, ALPHA, 1, 0)
    monkeypatch.setenv("NOTIONFS_CACHE_DIR", str(cache_dir))
    code, out, _err = _cache(capsys, "info")
    assert code == 0 and "ws-alpha" in out
    monkeypatch.delenv("NOTIONFS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    code, out, _err = _cache(capsys, "info")
    assert out == f"no metadata cache under {tmp_path / 'xdg' / 'notionfs' / 'metadata'}\n"


def test_clear_needs_a_target(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    before = sorted(os.listdir(_root(cache_dir)))
    code, _out, err = _cache(capsys, "clear", "--cache-dir", str(cache_dir))
    assert code == 2 and "--all, or names" in err
    code, _out, err = _cache(capsys, "clear", "--all", "ws-alpha", "--cache-dir", str(cache_dir))
    assert code == 2 and "not both" in err
    code, _out, err = _cache(capsys, "clear", "ws-gamma", "--cache-dir", str(cache_dir))
    assert code == 2 and "no metadata cache matches 'ws-gamma'" in err
    assert sorted(os.listdir(_root(cache_dir))) == before


def test_clear_one_workspace(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    code, out, err = _cache(capsys, "clear", "ws-alpha", "--cache-dir", str(cache_dir))
    assert code == 0 and err == ""
    assert f"removed {database_name(ALPHA)[:-8]} (workspace ws-alpha)" in out
    assert "removed 1 set-aside file" in out and "freed" in out
    assert not populated["alpha"].exists() and not populated["aside"].exists()
    assert populated["beta"].exists() and populated["aside_beta"].exists()
    assert populated["junk"].exists()
    # The next mount of that workspace starts afresh, without a warning.
    store = MetadataStore.open(_root(cache_dir), ALPHA, warn=pytest.fail)
    assert list(store.listings()) == []
    store.close()


def test_clear_by_name_and_by_start_of_name(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    code, _out, _err = _cache(capsys, "clear", populated["junk"].name, "--cache-dir",
                              str(cache_dir))
    assert code == 0 and not populated["junk"].exists()
    start = database_name(BETA)[:6]
    code, out, _err = _cache(capsys, "clear", start, "--cache-dir", str(cache_dir))
    assert code == 0 and "workspace ws-beta" in out
    assert not populated["beta"].exists() and populated["alpha"].exists()
    # Too short a start matches nothing rather than a random cache.
    code, _out, err = _cache(capsys, "clear", database_name(ALPHA)[:3], "--cache-dir",
                             str(cache_dir))
    assert code == 2 and populated["alpha"].exists()


def test_an_ambiguous_start_of_name_clears_nothing(
    capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    root = _root(cache_dir)
    root.mkdir(parents=True)
    for name in ("abcd1111.sqlite3", "abcd2222.sqlite3"):
        (root / name).write_bytes(b"")
    code, _out, err = _cache(capsys, "clear", "abcd", "--cache-dir", str(cache_dir))
    assert code == 2 and "matches 2 caches" in err
    assert len(list(root.iterdir())) == 2


def test_clear_all(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, populated: dict[str, Path]
) -> None:
    # A killed mount's -wal and -shm go too.
    (_root(cache_dir) / f"{database_name(ALPHA)}-wal").write_bytes(b"w" * 10)
    (_root(cache_dir) / f"{database_name(ALPHA)}-shm").write_bytes(b"s" * 10)
    code, out, err = _cache(capsys, "clear", "--all", "--cache-dir", str(cache_dir))
    assert code == 0 and err == ""
    assert out.count("\nremoved ") + out.startswith("removed ") == 4  # 3 caches + set-aside
    assert "removed 2 set-aside files" in out
    assert list(_root(cache_dir).iterdir()) == []
    assert set_aside_files(_root(cache_dir)) == []
    code, out, _err = _cache(capsys, "clear", "--all", "--cache-dir", str(cache_dir))
    assert code == 0 and "nothing to clear" in out
    code, out, _err = _cache(capsys, "info", "--cache-dir", str(cache_dir))
    assert out.startswith("no metadata cache under")


_HOLD_OPEN = """
    import sys
    from pathlib import Path
    from notionfs.store import MetadataStore, StoreIdentity
    identity = StoreIdentity("https://api.notion.com", "ws-alpha", "bot-alpha", "2025-09-03")
    store = MetadataStore.open(Path(sys.argv[1]), identity, warn=print)
    store.put_size("held", 1)
    assert store.flush()
    print("ready", flush=True)
    sys.stdin.readline()
    store.close()
"""


def test_a_cache_held_open_by_a_mount_is_shown_in_use(
    capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    _make(cache_dir, ALPHA, 1, 0)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLD_OPEN), str(_root(cache_dir))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert cachecmd.holder_pid(_root(cache_dir) / database_name(ALPHA)) == proc.pid
        code, out, _err = _cache(capsys, "info", "--cache-dir", str(cache_dir))
        assert code == 0 and f"in use       by process {proc.pid}" in out
        # Looking left the mount's files and locks alone.
        db = _root(cache_dir) / database_name(ALPHA)
        assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
        assert cachecmd.holder_pid(db) == proc.pid
        code, out, _err = _cache(capsys, "clear", "--all", "--cache-dir", str(cache_dir))
        assert code == 0 and f"process {proc.pid} (a running mount) still has it open" in out
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(10)
    # Once the mount is gone nobody holds it.
    assert cachecmd.holder_pid(_root(cache_dir) / database_name(ALPHA)) is None
