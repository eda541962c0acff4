"""The processes the bench drives: the emulator (its own process), notionfs and rclone mounts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVE = Path(__file__).with_name("serve.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def fusermount() -> str:
    return shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"


class EmulatorProcess:
    """``serve.py`` in a child process: the file host never shares the bench's GIL."""

    def __init__(self, workspace: str, data_dir: Path, **options: float) -> None:
        command = [sys.executable, str(SERVE), workspace, "--data-dir", str(data_dir)]
        for name, value in options.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {workspace} emulator did not start")
        self.info: dict[str, Any] = json.loads(line)

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def token(self) -> str:
        return str(self.info["token"])

    def file(self, name: str) -> dict[str, Any]:
        return dict(self.info["files"][name])

    def command(self, line: str) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return dict(json.loads(self._proc.stdout.readline()))

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def reset(self) -> None:
        self.command("reset")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # end of input stops it
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Mount:
    """A FUSE mount served by one process of ours."""

    path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str = "notionfs"
    _closed: bool = field(default=False, repr=False)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the serving process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_bytes(self) -> int:
        """The serving process's resident high-water mark (VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.path.ismount(self.path):
            subprocess.run([fusermount(), "-u", str(self.path)], check=False, timeout=30,
                           capture_output=True)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if os.path.ismount(self.path):
            subprocess.run([fusermount(), "-u", "-z", str(self.path)], check=False, timeout=10,
                           capture_output=True)

    def __enter__(self) -> Mount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_mounted(mount: Mount, timeout_s: float = 60.0) -> Mount:
    deadline = time.monotonic() + timeout_s
    while not os.path.ismount(mount.path):
        if mount.proc.poll() is not None or time.monotonic() > deadline:
            mount.close()
            log = mount.log_path.read_text(errors="replace") if mount.log_path.exists() else ""
            raise RuntimeError(f"{mount.name} did not mount {mount.path}:\n{log[-3000:]}")
        time.sleep(0.02)
    return mount


def mount_notionfs(
    emulator: EmulatorProcess,
    mountpoint: Path,
    log_path: Path,
    *,
    cache_size: str | None = None,
    rate_limit: float | None = 1000.0,
    extra: tuple[str, ...] = (),
    metadata_cache: Path | None = None,
) -> Mount:
    """``python -m notionfs mount --foreground`` against the emulator, rate limit set high
    (``rate_limit=None``: notionfs's own default, Notion's rate). Without the on-disk
    metadata cache unless ``metadata_cache`` names its directory: a fresh mount must list
    what it shows, not remember an earlier run's."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NOTION_TOKEN=emulator.token, NOTIONFS_API_URL=emulator.api_url)
    command = [
        sys.executable, "-m", "notionfs", "mount", str(mountpoint), "--foreground",
        "--log-file", str(log_path), *extra,
    ]
    if metadata_cache is None:
        command.append("--no-metadata-cache")
    else:
        env["NOTIONFS_CACHE_DIR"] = str(metadata_cache)
    if rate_limit is not None:
        command += ["--rate-limit", f"{rate_limit:g}"]
    if cache_size:
        command += ["--cache-size", cache_size]
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _wait_mounted(Mount(mountpoint, proc, log_path))


def mount_rclone(directory_url: str, mountpoint: Path, log_path: Path) -> Mount:
    """rclone's ``:http:`` backend over the file host's unsigned directory, read-only."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    command = [
        "rclone", "mount", ":http:", str(mountpoint), "--http-url", directory_url,
        "--read-only", "--log-file", str(log_path),
    ]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return _wait_mounted(Mount(mountpoint, proc, log_path, name="rclone"))


def mount_thinpipe(url: str, size: int, mountpoint: Path, log_path: Path) -> Mount:
    """The thinnest FUSE file over HTTP (thinpipe.py) serving the file at ``url``, over the
    binding notionfs would choose, its read-ahead raised as notionfs raises its own."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).with_name("thinpipe.py")), str(mountpoint),
               str(size)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=log)
    assert proc.stdin is not None
    proc.stdin.write(url.encode("ascii") + b"\n")
    proc.stdin.close()
    mount = _wait_mounted(Mount(mountpoint, proc, log_path, name="thin pipe"))
    from notionfs.config import Settings
    from notionfs.fusebind import tune_read_ahead

    tune_read_ahead(str(mountpoint), Settings().read_ahead_kb)
    return mount


def drop_caches() -> bool:
    """Empty the kernel's page cache (root only); False when not allowed."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def warm(path: Path) -> None:
    """Read a file once so it sits in the page cache (the host then serves from memory)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
