"""A mount's life: signals stop it cleanly, readiness is announced (to the background command
and systemd), and the background command reports success only for its own answering mount."""

from __future__ import annotations

import _thread
import argparse
import contextlib
import logging
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logsetup import configure_logging
from .preflight import unmount_command

if TYPE_CHECKING:
    pass

logger = logging.getLogger("notionfs")


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

# How long a stop waits for files still open on the mount before the process exits anyway.
STOP_GRACE_S = 5.0

class StopOnSignal:
    """Turns SIGINT, SIGTERM and SIGHUP into a clean stop that leaves no mount behind.

    libfuse's own handlers end its loop, then wait for every callback still running in
    Python (a read stalled on a file host waits out its deadline) while the mount stays in
    place. So the signals are blocked in every thread (``install`` runs before any thread
    starts, and threads inherit the mask) and one thread waits for them. Before the mount
    is made a signal interrupts the start-up (or, if the main thread is stuck in a call,
    exits after ``grace_s``). After, the mount is unmounted lazily, which
    detaches it at once even with files open; the FUSE loop then ends by itself, and if
    files are still open after ``grace_s`` the process exits, which ends their calls with
    ENOTCONN. A second signal exits at once.
    """

    def __init__(self, mountpoint: Path, grace_s: float = STOP_GRACE_S) -> None:
        self.mountpoint = mountpoint
        self.grace_s = grace_s
        self.mounted = threading.Event()  # the kernel finished the FUSE handshake
        self.finished = threading.Event()  # the FUSE loop returned
        self._serving = False
        self._stopping = False
        self._lock = threading.Lock()

    def install(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        threading.Thread(target=self._watch, name="notionfs-signals", daemon=True).start()

    def begin_serving(self) -> None:
        """Called just before the FUSE loop; KeyboardInterrupt if a stop came first."""
        with self._lock:
            if self._stopping:
                raise KeyboardInterrupt
            self._serving = True

    def _watch(self) -> None:
        while True:
            name = signal.Signals(signal.sigwait(STOP_SIGNALS)).name
            with self._lock:
                again, self._stopping = self._stopping, True
                serving = self._serving
            if again:
                logger.warning("%s again: exiting now", name)
                exit_now(1)
            elif serving:
                threading.Thread(
                    target=self._stop, args=(name,), name="notionfs-stop", daemon=True
                ).start()
            else:
                logger.info("%s: stopping before the mount is made", name)
                _thread.interrupt_main()
                # The main thread may be blocked in a call (a slow API answer): don't wait.
                timer = threading.Timer(self.grace_s, _give_up)
                timer.daemon = True
                timer.start()

    def _stop(self, name: str) -> None:
        logger.info("%s: unmounting %s", name, self.mountpoint)
        self.mounted.wait(self.grace_s)  # a mount being made is finished first, then lifted
        command = unmount_command(self.mountpoint, lazy=True)
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        if result.returncode != 0 and not self.finished.is_set():
            logger.warning("%s failed: %s", " ".join(command), result.stderr.strip())
        if self.finished.wait(self.grace_s):
            return
        logger.warning(
            "files on %s still open %g s after unmounting; exiting", self.mountpoint, self.grace_s
        )
        exit_now(0)

def _give_up() -> None:
    print("notionfs: interrupted", file=sys.stderr, flush=True)
    exit_now(130)

def exit_now(code: int) -> None:
    logging.shutdown()  # flush the log: os._exit skips every other clean-up
    os._exit(code)

def announce_when_mounted(lifecycle: StopOnSignal, ready_fd: int | None) -> None:
    """Once the kernel talks to this process's mount, say so: on ``ready_fd`` (the
    background command waits on it) and to systemd (``Type=notify``), as rclone and sshfs
    do. A process that dies first never says it, so nobody is told "mounted" for it."""
    if ready_fd is not None:
        os.set_inheritable(ready_fd, False)  # not to fusermount or any other child
    notify_socket = os.environ.get("NOTIFY_SOCKET")
    if ready_fd is None and not notify_socket:
        return

    def announce() -> None:
        lifecycle.mounted.wait()
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"mounted\n")
            with contextlib.suppress(OSError):
                os.close(ready_fd)
        if notify_socket:
            sd_notify(notify_socket, f"READY=1\nSTATUS=mounted at {lifecycle.mountpoint}")

    threading.Thread(target=announce, name="notionfs-ready", daemon=True).start()

def sd_notify(notify_socket: str, message: str) -> None:
    """systemd's readiness protocol: one datagram to $NOTIFY_SOCKET (sd_notify(3))."""
    address = "\0" + notify_socket[1:] if notify_socket.startswith("@") else notify_socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8"), address)
    except OSError as exc:
        logger.warning("could not notify systemd at %s: %s", notify_socket, exc)

def mount_in_background(args: argparse.Namespace, mountpoint: Path) -> int:
    """Run the mount as a detached child and return once its mount answers (or say why not)."""
    configure_logging(args.debug)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)  # a service manager is told by the child it started
    argv = list(args.argv)
    if args.token:
        # Hand the token over through the environment, not the child's command line.
        env["NOTION_TOKEN"] = args.token
        i = argv.index("--token") if "--token" in argv else -1
        if i >= 0:
            argv = argv[:i] + argv[i + 2 :]
        else:
            argv = [a for a in argv if not a.startswith("--token=")]
    log_file = args.log_file or str(_default_log_file(mountpoint))
    ready_read, ready_write = os.pipe()
    child = [sys.executable, "-m", "notionfs", *argv, "--foreground", "--ready-fd",
             str(ready_write)]
    if not args.log_file:
        child += ["--log-file", log_file]
    mounts_before = {mount_id for mount_id, _, _ in mounts_at(mountpoint)}
    try:
        with open(log_file, "a", encoding="utf-8") as log:
            start = log.tell()
            proc = subprocess.Popen(
                child,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                pass_fds=(ready_write,),
            )
    finally:
        os.close(ready_write)  # the child holds the only write end: its exit means EOF
    try:
        with os.fdopen(ready_read, "rb", buffering=0) as ready:
            code = _await_mount(proc, mountpoint, ready, mounts_before, log_file, start)
    except KeyboardInterrupt:
        proc.terminate()  # the child stops cleanly on SIGTERM, mounted or not
        print("notionfs: interrupted", file=sys.stderr)
        return 130
    if code == 0 and not args.quiet_success:
        print(f"notionfs: mounted at {mountpoint} (log: {log_file})")
        print(f"notionfs: unmount with: {' '.join(unmount_command(mountpoint, lazy=False))}")
    return code

def _await_mount(
    proc: subprocess.Popen[bytes],
    mountpoint: Path,
    ready: Any,
    mounts_before: set[int],
    log_file: str,
    start: int,
    timeout_s: float = 120.0,
) -> int:
    """0 once the child says its mount is made and the mountpoint shows that mount answering;
    otherwise the child's own error, and its exit status."""
    deadline = time.monotonic() + timeout_s
    said_ready = False
    while time.monotonic() < deadline:
        readable, _, _ = select.select([ready], [], [], 0.25)
        if readable:
            said_ready = bool(ready.read(64))
            break  # the child said it, or closed the pipe by exiting
    if not said_ready:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            _forward_log(log_file, start)
            print(f"notionfs: the mount did not become ready in "
                  f"{timeout_s:g} s (see {log_file})", file=sys.stderr)
            return 1
        error = _forward_log(log_file, start)
        print(error or f"notionfs: mount failed (see {log_file})", file=sys.stderr)
        return proc.returncode or 1
    problem = _own_mount_problem(proc, mountpoint, mounts_before)
    _forward_log(log_file, start)
    if problem is not None:
        print(f"notionfs: {mountpoint} {problem} (see {log_file})", file=sys.stderr)
        if proc.poll() is None:
            proc.terminate()
        return 1
    return 0

def _own_mount_problem(
    proc: subprocess.Popen[bytes], mountpoint: Path, mounts_before: set[int]
) -> str | None:
    """None when the mount on top of ``mountpoint`` is a notionfs mount made after we
    started (so the child's), the child lives and the mount answers; else what is wrong."""
    if proc.poll() is not None:
        return f"was mounted, but its process exited ({proc.returncode})"
    if sys.platform.startswith("linux"):
        mounts = mounts_at(mountpoint)
        if not mounts:
            return "is not mounted"
        mount_id, fstype, source = mounts[-1]  # the last mount made on a path is the one seen
        if mount_id in mounts_before or fstype != "fuse.notionfs":
            return f"shows another filesystem ({fstype} {source}), not this mount"
    elif not os.path.ismount(mountpoint):
        return "is not mounted"
    try:
        os.statvfs(mountpoint)  # statfs always reaches the server; stat may be cached
        if not stat.S_ISDIR(mountpoint.stat().st_mode):
            return "does not show a folder"
    except OSError as exc:
        return f"does not answer ({exc.strerror})"
    return None

def mounts_at(path: Path) -> list[tuple[int, str, str]]:
    """(mount id, fstype, source) of each mount at ``path``, oldest first (Linux; [] elsewhere)."""
    target = str(path)
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                front, _, back = line.rstrip("\n").partition(" - ")
                fields, tail = front.split(" "), back.split(" ")
                if len(fields) > 4 and len(tail) > 1 and _unescape_mount(fields[4]) == target:
                    found.append((int(fields[0]), tail[0], _unescape_mount(tail[1])))
    except OSError:
        return []
    return found

def _unescape_mount(field: str) -> str:
    """The kernel writes space, tab, newline and backslash in mountinfo as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) [\w.]+: (.*)$")

def _forward_log(log_file: str, start: int) -> str | None:
    """Print on the terminal the warnings the child logged since ``start`` (they would
    otherwise sit in a log nobody reads); return its last "notionfs: ..." line, its error."""
    try:
        with open(log_file, encoding="utf-8", errors="replace") as log:
            log.seek(start)
            lines = log.read().splitlines()
    except OSError:
        return None
    error = None
    for line in lines:
        match = _LOG_LINE.match(line)
        if match:
            level = "warning" if match.group(1) == "WARNING" else "error"
            print(f"notionfs: {level}: {match.group(2)}", file=sys.stderr)
        elif line.startswith("notionfs:"):
            error = line
    return error

def _default_log_file(mountpoint: Path) -> Path:
    directory = Path.home() / ".cache" / "notionfs"
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(mountpoint)).strip("_") or "mount"
    return directory / f"mount-{safe}.log"
