"""Mount lifecycle through the kernel: clean stop on signals, recovery after kill -9, options."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notionfs import cli, preflight
from notionfs.config import Settings
from notionfs.emulator import samples
from notionfs.emulator.media import pattern_bytes
from notionfs.emulator.model import FileSpec, Page, Workspace, file_block
from notionfs.emulator.server import Emulator
from notionfs.errors import ConfigError

from .mounting import fusermount, mounted, requires_fuse

LARGE_BYTES = 4 << 20


def mount_entry(path: Path) -> dict[str, str] | None:
    """The /proc/self/mountinfo line of the mount at ``path``, as named fields."""
    target = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            front, _, back = line.rstrip("\n").partition(" - ")
            fields, tail = front.split(" "), back.split(" ")
            if _unescape(fields[4]) == target:
                return {
                    "options": fields[5],
                    "fstype": tail[0],
                    "source": _unescape(tail[1]),
                    "super_options": tail[2] if len(tail) > 2 else "",
                }
    return None


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash in mountinfo as octal escapes."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field


def workspace_with_large_file() -> Workspace:
    workspace = samples.nested_files()
    data = pattern_bytes(LARGE_BYTES, "lifecycle")
    large = file_block("file", FileSpec("large.bin", data))
    workspace.pages.append(Page("Large", children=[large]))
    return workspace


def start_mount(
    emulator: Emulator, mountpoint: Path, log_path: Path, *args: str
) -> subprocess.Popen[bytes]:
    """``notionfs mount --foreground`` as a child process against ``emulator``."""
    env = dict(os.environ, NOTION_TOKEN=emulator.token, NOTIONFS_API_URL=emulator.api_url)
    command = [
        sys.executable, "-m", "notionfs", "mount", str(mountpoint), "--foreground",
        "--log-file", str(log_path), "--rate-limit", "100", *args,
    ]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_mounted(proc: subprocess.Popen[bytes], mountpoint: Path, log_path: Path) -> None:
    """Until ``mountpoint`` is a mount served by ``proc`` (fails if ``proc`` exits first)."""
    while mount_entry(mountpoint) is None or not _answers(mountpoint):
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        log = log_path.read_text() if log_path.exists() else ""
        raise AssertionError(f"notionfs exited {proc.returncode}:\n{out}\n{log}")


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll ``predicate`` (for state another process changes: no event to wait on)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _answers(path: Path) -> bool:
    """The mount's server answers (statfs always reaches it; stat may be cached)."""
    try:
        os.statvfs(path)
    except OSError:
        return False
    return True


def lift(mountpoint: Path) -> None:
    """Leave nothing behind whatever happened in a test (a dead mount included)."""
    if mount_entry(mountpoint) is not None:
        subprocess.run([fusermount(), "-u", "-z", str(mountpoint)], check=False, timeout=10)


# ---- clean stop ----------------------------------------------------------------------------


@requires_fuse
@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_with_a_read_in_flight_unmounts_and_exits(
    tmp_path: Path, signum: int, fuse_binding: str
) -> None:
    """A reader stuck on a stalled file host does not keep the mount (or the process) alive."""
    with mounted(tmp_path, workspace_with_large_file(), args=("--deadline", "120")) as m:
        large = m.path / "Large" / "large.bin"
        assert large.stat().st_size == LARGE_BYTES  # probed: the head is cached, the rest not
        host = m.emulator.filehost
        host.faults.stall_s = 120.0
        requests = host.counters.requests
        reader = subprocess.Popen(
            ["dd", f"if={large}", "of=/dev/null", "bs=1M", "skip=2", "count=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            assert host.counters.wait_for(lambda c: c.requests > requests, timeout_s=20)
            assert reader.poll() is None, "the read should be in flight"
            m.proc.send_signal(signum)
            assert m.proc.wait(timeout=30) == 0
            assert mount_entry(m.path) is None, "the mount outlived its process"
            assert os.listdir(m.path) == []  # a plain empty directory again, not ENOTCONN
            assert reader.wait(timeout=30) != 0  # its read failed; it did not hang
        finally:
            host.faults.stall_s = 0.0
            if reader.poll() is None:
                reader.kill()
            lift(m.path)
        log = m.log_text()
        assert f"{signal.Signals(signum).name}: unmounting" in log
        assert "Traceback" not in log


@requires_fuse
@pytest.mark.e2e
def test_sigterm_when_idle_ends_the_loop_normally(tmp_path: Path, fuse_binding: str) -> None:
    """No file open: the FUSE loop ends by itself and the normal shutdown runs."""
    with mounted(tmp_path, samples.nested_files(), args=("--allow-other",)) as m:
        entry = mount_entry(m.path)
        assert entry is not None
        assert "allow_other" in entry["super_options"].split(",")
        assert sorted(os.listdir(m.path)) != []
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=30) == 0
        assert mount_entry(m.path) is None
        log = m.log_text()
        assert "SIGTERM: unmounting" in log
        assert "unmounted" in log.split("SIGTERM: unmounting", 1)[1]
        assert "still open" not in log


# ---- crash recovery ------------------------------------------------------------------------


@requires_fuse
@pytest.mark.e2e
def test_mount_after_kill_9_lifts_the_dead_mount(tmp_path: Path, fuse_binding: str) -> None:
    workspace = samples.nested_files()
    with mounted(tmp_path, workspace) as m:
        names = sorted(os.listdir(m.path))
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        try:
            with pytest.raises(OSError) as dead:
                os.listdir(m.path)
            assert dead.value.errno == errno.ENOTCONN  # "Transport endpoint is not connected"

            log_path = tmp_path / "second.log"
            second = start_mount(m.emulator, m.path, log_path)
            try:
                wait_mounted(second, m.path, log_path)
                assert sorted(os.listdir(m.path)) == names
                assert "holds a dead mount" in log_path.read_text()
            finally:
                subprocess.run([fusermount(), "-u", str(m.path)], check=False, timeout=20)
                assert second.wait(timeout=30) == 0
        finally:
            lift(m.path)
        assert mount_entry(m.path) is None


# ---- start-up checks -----------------------------------------------------------------------


@requires_fuse
@pytest.mark.e2e
def test_background_mount_returns_once_mounted(tmp_path: Path) -> None:
    """Without --foreground the command returns when the mount answers, and says how to stop."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log_path = tmp_path / "bg.log"
    with Emulator(samples.nested_files()) as emulator:
        env = dict(os.environ, NOTION_TOKEN=emulator.token, NOTIONFS_API_URL=emulator.api_url)
        command = [sys.executable, "-m", "notionfs", "mount", str(mountpoint),
                   "--log-file", str(log_path)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert f"unmount with: {fusermount()} -u {mountpoint}" in done.stdout
            assert mount_entry(mountpoint) is not None
            assert os.listdir(mountpoint)
        finally:
            subprocess.run([fusermount(), "-u", str(mountpoint)], check=False, timeout=20)
            lift(mountpoint)
        # The detached server ends by itself once unmounted.
        assert wait_until(lambda: "unmounted" in log_path.read_text(encoding="utf-8"))


def test_a_non_empty_mountpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        preflight.check_mountpoint(tmp_path)
    preflight.check_mountpoint(tmp_path, allow_nonempty=True)


def test_allow_other_needs_user_allow_other_for_other_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(sys, "platform", "linux")
    conf = tmp_path / "fuse.conf"
    conf.write_text("# mount_max = 1000\n#user_allow_other\n")
    with pytest.raises(ConfigError, match="user_allow_other"):
        preflight.check_allow_other(conf)
    with pytest.raises(ConfigError, match="user_allow_other"):
        preflight.check_allow_other(tmp_path / "missing.conf")
    conf.write_text("user_allow_other\n")
    preflight.check_allow_other(conf)


def test_root_may_always_allow_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 0)
    preflight.check_allow_other(tmp_path / "missing.conf")


# ---- mount identity and options ------------------------------------------------------------


def mount_options(platform: str, monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict[str, Any]:
    from notionfs import fusebind

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(os, "getuid", lambda: 0)
    args = cli.build_parser().parse_args(["mount", "mnt", *argv])
    extra = preflight.extra_fuse_options(args)
    return dict(fusebind.fuse_options(Settings(), "notion:Field, Notes\\\n", extra))


def fusebind_options(settings: Settings) -> dict[str, Any]:
    from notionfs import fusebind

    return dict(fusebind.fuse_options(settings, "notion:x", {}))


def test_linux_options_name_the_mount_and_share_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    options = mount_options("linux", monkeypatch)
    assert options["fsname"] == "notion:Field Notes"  # no comma, backslash or newline in -o
    assert options["subtype"] == "notionfs"
    assert "ro" not in options  # writable unless --read-only
    assert not {"allow_other", "volname", "noappledouble"} & set(options)
    read_only = dict(fusebind_options(Settings(writable=False)))
    assert read_only["ro"] is True
    # libfuse 2 writes one page per request unless asked for big writes: a save crawls.
    assert (options["big_writes"], options["max_write"]) == (True, 131072)
    assert "big_writes" not in read_only


def test_macos_options_add_the_volume_name(monkeypatch: pytest.MonkeyPatch) -> None:
    options = mount_options("darwin", monkeypatch, "--allow-other", "-o", "nonempty,uid=7")
    assert options["volname"] == "Field Notes"
    assert options["noappledouble"] is True
    assert options["allow_other"] is True
    assert (options["nonempty"], options["uid"]) == (True, "7")


def test_a_signal_before_the_mount_stops_the_start_up(tmp_path: Path) -> None:
    """Ctrl-C while the API keeps us waiting: the command ends, interrupted, and mounts nothing."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = dict(os.environ, NOTION_TOKEN="secret_never_checked")
        proc = subprocess.Popen(
            [sys.executable, "-m", "notionfs", "mount", str(mountpoint), "--foreground",
             "--api-url", url],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the token check is under way
        with connection:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert b"notionfs: interrupted" in out
    assert mount_entry(mountpoint) is None
