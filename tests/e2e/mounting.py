"""Mount a workspace through the kernel for a test: emulator in-process, notionfs as a process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notionfs.emulator.model import Workspace
from notionfs.emulator.server import Emulator

FUSE_MISSING = None
if not os.path.exists("/dev/fuse"):
    FUSE_MISSING = "/dev/fuse is absent: this machine cannot mount FUSE filesystems"
elif shutil.which("fusermount") is None and shutil.which("fusermount3") is None:
    FUSE_MISSING = "fusermount is not installed (scripts/test installs it)"

requires_fuse = pytest.mark.skipif(FUSE_MISSING is not None, reason=FUSE_MISSING or "")


def fusermount() -> str:
    return shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"


@dataclass
class Mount:
    path: Path
    emulator: Emulator
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def unmount(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None and os.path.ismount(self.path):
            subprocess.run([fusermount(), "-u", str(self.path)], check=False, timeout=timeout_s)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if os.path.ismount(self.path):
            subprocess.run([fusermount(), "-u", "-z", str(self.path)], check=False, timeout=10)


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def mounted(
    base: Path,
    workspace: Workspace,
    *,
    version: str = "2025-09-03",
    args: tuple[str, ...] = (),
    rate_limit_rps: float = 100.0,
    env: dict[str, str] | None = None,
    emulator_options: dict[str, Any] | None = None,
    ready_timeout_s: float = 60.0,
) -> Iterator[Mount]:
    """Start an emulator for ``workspace`` and mount it at ``base``/mnt with notionfs.

    The client's rate limit is raised for speed (the emulator's is off unless a test turns it
    on); tests of rate limiting pass Notion's own 3 requests/second. The change feed is off
    unless ``args`` sets ``--poll-interval``: most tests count API calls or test the TTL, and
    the feed's own tests turn it on. Prefetching likewise.
    """
    if "--poll-interval" not in args:
        args = ("--poll-interval", "0", *args)
    if "--prefetch" not in args:
        args = ("--prefetch", "0", *args)
    mountpoint = base / "mnt"
    mountpoint.mkdir(parents=True, exist_ok=True)
    log_path = base / "notionfs.log"
    with Emulator(workspace, **(emulator_options or {})) as emulator:
        child_env = dict(os.environ)
        child_env.update(
            NOTION_TOKEN=emulator.token,
            NOTIONFS_API_URL=emulator.api_url,
            NOTION_VERSION=version,
            # Each test's own metadata cache: never the user's, shared by remounts of ``base``.
            NOTIONFS_CACHE_DIR=str(base / "cache"),
        )
        child_env.update(env or {})
        command = [
            sys.executable, "-m", "notionfs", "mount", str(mountpoint), "--foreground",
            "--log-file", str(log_path), "--rate-limit", str(rate_limit_rps), *args,
        ]
        proc = subprocess.Popen(
            command, env=child_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        mount = Mount(mountpoint, emulator, proc, log_path)
        try:
            deadline = time.monotonic() + ready_timeout_s
            while not os.path.ismount(mountpoint):
                if proc.poll() is not None:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    log = log_path.read_text() if log_path.exists() else ""
                    raise AssertionError(f"notionfs exited {proc.returncode}:\n{out}\n{log}")
                if time.monotonic() > deadline:
                    raise AssertionError("mount did not become ready")
                time.sleep(0.05)
            yield mount
        finally:
            mount.unmount()
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
