"""Where people start a mount: mount(8) with `-t fuse.notionfs`, an fstab line, and the
systemd user unit, against the emulator and through the kernel."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.server import Emulator

from .mounting import fusermount, requires_fuse
from .test_lifecycle import lift, mount_entry, wait_until

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "scripts" / "systemd" / "notionfs.service"
BIN = Path(sys.executable).parent  # the environment's console scripts
FOLDER = "Nested files"

needs_root_namespace = pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("unshare") is None,
    reason="mount(8) runs helpers for root only, and the test needs a private mount namespace "
    "(unshare, as root) to put the helper where mount(8) looks without changing the system",
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(samples.nested_files()) as emu:
        yield emu


@pytest.fixture
def token_file(tmp_path: Path, emulator: Emulator) -> Path:
    path = tmp_path / "token"
    path.touch(mode=0o600)
    path.write_text(emulator.token + "\n")
    return path


def clean_env() -> dict[str, str]:
    """No token and no API URL from the environment: the options must carry them."""
    drop = {"NOTION_TOKEN", "NOTIONFS_API_URL", "NOTION_VERSION", "NOTIFY_SOCKET"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def in_private_namespace(script: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """``script`` in bash in a mount namespace of its own: binds made there (to put a helper
    where mount(8) looks) and the mounts it makes are invisible to the rest of the machine."""
    guarded = "set -euo pipefail\n" + script
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c",
                           guarded], capture_output=True, text=True, timeout=timeout_s,
                          env=clean_env(), stdin=subprocess.DEVNULL)


def check_script(mountpoint: Path, log: Path) -> str:
    """Bash: the mount is ours and answers, then it is unmounted (lazily on any failure)."""
    mnt = shlex.quote(str(mountpoint))
    return f"""
trap 'umount -l {mnt} 2>/dev/null || true' EXIT
findmnt -n -o FSTYPE,SOURCE {mnt}
ls {mnt}
umount {mnt}
for _ in $(seq 100); do grep -q unmounted {shlex.quote(str(log))} && break; sleep 0.1; done
findmnt {mnt} && exit 1
echo unmounted-clean
"""


def assert_mounted_then_clean(done: subprocess.CompletedProcess[str], log: Path,
                              token: str) -> None:
    assert done.returncode == 0, done.stdout + done.stderr + log.read_text()
    lines = done.stdout.splitlines()
    assert lines[0].split(None, 1) == ["fuse.notionfs", "notion:Nested files"]
    assert FOLDER in lines
    assert lines[-1] == "unmounted-clean"
    assert token not in done.stdout + done.stderr + log.read_text()


@requires_fuse
@needs_root_namespace
def test_mount_t_fuse_notionfs_through_mount_fuse(
    tmp_path: Path, emulator: Emulator, token_file: Path
) -> None:
    """No mount.fuse.notionfs installed: mount(8) runs mount.fuse, which runs
    `notionfs SOURCE MOUNTPOINT -o OPTIONS` from the default PATH."""
    if shutil.which("mount.fuse", path="/usr/sbin:/sbin") is None:
        pytest.skip("mount.fuse (package fuse or fuse3) is not installed")
    mountpoint, log = tmp_path / "mnt", tmp_path / "mount.log"
    mountpoint.mkdir()
    local_bin = tmp_path / "local-bin"
    local_bin.mkdir()
    (local_bin / "notionfs").symlink_to(BIN / "notionfs")
    options = f"token_file={token_file},api_url={emulator.api_url},log_file={log},noauto"
    done = in_private_namespace(f"""
test ! -e /usr/sbin/mount.fuse.notionfs
mount --bind {shlex.quote(str(local_bin))} /usr/local/bin
mount -t fuse.notionfs notion {shlex.quote(str(mountpoint))} -o {shlex.quote(options)}
""" + check_script(mountpoint, log))
    assert_mounted_then_clean(done, log, emulator.token)


@requires_fuse
@needs_root_namespace
def test_an_fstab_line_through_mount_fuse_notionfs(
    tmp_path: Path, emulator: Emulator, token_file: Path
) -> None:
    """mount.fuse.notionfs linked into /usr/sbin, as README says; `mount MOUNTPOINT` reads the
    line from fstab (here -T, an fstab of the test's own). The source is the API URL."""
    mountpoint, log = tmp_path / "mnt", tmp_path / "mount.log"
    mountpoint.mkdir()
    extra = tmp_path / "sbin"
    extra.mkdir()
    (extra / "mount.fuse.notionfs").symlink_to(BIN / "mount.fuse.notionfs")
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# <source> <mountpoint> <type> <options> <dump> <pass>\n"
        f"{emulator.api_url} {mountpoint} fuse.notionfs "
        f"token_file={token_file},log_file={log},noauto,nofail,_netdev,x-systemd.automount 0 0\n"
    )
    done = in_private_namespace(f"""
# /usr/sbin plus the link README asks for, seen only in this namespace (a read-only overlay)
mount -t overlay overlay -o lowerdir={shlex.quote(str(extra))}:/usr/sbin /usr/sbin
test -L /sbin/mount.fuse.notionfs
test ! -e /usr/local/bin/notionfs  # so mount.fuse could not have done it
mount -T {shlex.quote(str(fstab))} {shlex.quote(str(mountpoint))}
""" + check_script(mountpoint, log))
    assert_mounted_then_clean(done, log, emulator.token)


@requires_fuse
def test_the_helper_run_as_mount8_runs_it(
    tmp_path: Path, emulator: Emulator, token_file: Path
) -> None:
    mountpoint, log = tmp_path / "mnt", tmp_path / "mount.log"
    mountpoint.mkdir()
    helper = str(BIN / "mount.fuse.notionfs")
    try:
        done = subprocess.run(
            [helper, "notion", str(mountpoint), "-n", "-o",
             f"rw,token_file={token_file},api_url={emulator.api_url},log_file={log},nofail"],
            capture_output=True, text=True, timeout=120, env=clean_env())
        assert done.returncode == 0, done.stderr
        entry = mount_entry(mountpoint)
        assert entry is not None and entry["fstype"] == "fuse.notionfs"
        assert "rw" in entry["options"].split(",")  # writable unless the options say ro
        assert FOLDER in os.listdir(mountpoint)
    finally:
        subprocess.run([fusermount(), "-u", str(mountpoint)], check=False, timeout=20)
        lift(mountpoint)


def test_the_helper_refuses_a_token_in_the_options(tmp_path: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    done = subprocess.run([str(BIN / "mount.fuse.notionfs"), "notion", str(mountpoint), "-o",
                           "token=secret_in_plain_sight"],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 2
    assert "token_file" in done.stderr and "Traceback" not in done.stderr
    assert mount_entry(mountpoint) is None


# ---- the systemd user unit ----------------------------------------------------------------------


def unit_home(tmp_path: Path, token: str) -> Path:
    """A HOME laid out as README's install leaves it: the venv and the token file."""
    home = tmp_path / "home"
    venv_bin = home / ".venvs" / "notionfs" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "notionfs").symlink_to(BIN / "notionfs")
    config = home / ".config" / "notionfs"
    config.mkdir(parents=True)
    (config / "token").touch(mode=0o600)
    (config / "token").write_text(token + "\n")
    return home


def verify(unit: Path, home: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    env = dict(clean_env(), HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    return subprocess.run(["systemd-analyze", "--user", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (package systemd): cannot verify")
def test_the_user_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    home = unit_home(tmp_path, "secret_unused")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = verify(UNIT, home, runtime)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip() == ""  # not even a warning (verify exits 0 on those)
    # The check can fail: the unit with a misspelt setting warns; with a missing program fails.
    broken = tmp_path / "notionfs.service"
    broken.write_text(UNIT.read_text().replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in verify(broken, home, runtime).stderr
    broken.write_text(UNIT.read_text().replace("bin/notionfs ", "bin/notionfs-missing "))
    assert verify(broken, home, runtime).returncode != 0


def unit_commands(home: Path) -> dict[str, list[str]]:
    """ExecStartPre and ExecStart of the unit, %h expanded as systemd does for a user."""
    commands = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ExecStartPre", "ExecStart", "Type", "NotifyAccess"):
            commands[key] = shlex.split(value.replace("%h", str(home)))
    return commands


@requires_fuse
def test_the_user_unit_mounts_says_ready_and_unmounts_on_stop(
    tmp_path: Path, emulator: Emulator
) -> None:
    """What systemd does with the unit: ExecStartPre, ExecStart with $NOTIFY_SOCKET (Type=notify
    waits for READY=1), and SIGTERM to stop."""
    home = unit_home(tmp_path, emulator.token)
    commands = unit_commands(home)
    assert commands["Type"] == ["notify"] and commands["NotifyAccess"] == ["main"]
    subprocess.run(commands["ExecStartPre"], check=True, timeout=30)
    mountpoint = home / "Notion"
    assert mountpoint.is_dir()
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(60)
        env = dict(clean_env(), HOME=str(home), NOTIFY_SOCKET=str(notify_path),
                   NOTIONFS_API_URL=emulator.api_url)
        proc = subprocess.Popen(commands["ExecStart"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            message = notify.recv(4096).decode()
            assert "READY=1" in message.splitlines()
            # Ready means mounted and answering, at that very moment.
            entry = mount_entry(mountpoint)
            assert entry is not None and entry["fstype"] == "fuse.notionfs"
            assert FOLDER in os.listdir(mountpoint)
            proc.send_signal(signal.SIGTERM)  # systemctl --user stop, or logging out
            assert proc.wait(timeout=20) == 0  # within the unit's TimeoutStopSec
            assert mount_entry(mountpoint) is None
            out = proc.stdout.read().decode() if proc.stdout else ""
            assert "SIGTERM: unmounting" in out and emulator.token not in out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            lift(mountpoint)
    assert wait_until(lambda: mount_entry(mountpoint) is None, timeout_s=5)
