"""Command line: `notionfs mount`, `notionfs emulator`; builds Settings and configures logging."""

from __future__ import annotations

import _thread
import argparse
import contextlib
import errno
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_API_URL, SUPPORTED_VERSIONS, Settings
from .errors import AuthError, ConfigError, NetworkError, NotionFSError
from .fusebind import BINDINGS, Binding, load_binding

if TYPE_CHECKING:
    from .client import NotionClient

logger = logging.getLogger("notionfs")

FUSE_INSTALL_HINT = (
    "install FUSE first: `sudo apt-get install fuse libfuse2` (Debian/Ubuntu), "
    "`sudo dnf install fuse fuse-libs` (Fedora), or macFUSE on macOS"
)
DEMO_DATA_DIR = Path.home() / ".cache" / "notionfs" / "demo"
FUSE_CONF = Path("/etc/fuse.conf")
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
# How long a stop waits for files still open on the mount before the process exits anyway.
STOP_GRACE_S = 5.0


# ---- logging: secrets never reach a log line -----------------------------------------------


class RedactingFilter(logging.Filter):
    """Scrubs the token and signed-URL query strings from every record, as a last defence."""

    _QUERY = re.compile(r"(https?://[^\s?\"'<>]+)\?[^\s\"'<>]*")

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def add_secret(self, secret: str) -> None:
        if secret:
            self._secrets.append(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._QUERY.sub(r"\1?<redacted>", message)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "<token>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "<token>")
            record.exc_text = self._QUERY.sub(r"\1?<redacted>", text)
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
        return True


def configure_logging(debug: bool, log_file: str | None = None) -> RedactingFilter:
    redactor = RedactingFilter()
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # httpx logs full URLs (signed query strings included) at INFO: keep it quiet.
    for noisy in ("httpx", "httpcore", "fuse"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor


# ---- the mount command ---------------------------------------------------------------------


def add_mount_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mountpoint", help="an empty directory to mount on")
    p.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground")
    p.add_argument("--api-url", help=f"Notion API base URL (default {DEFAULT_API_URL})")
    p.add_argument("--notion-version", choices=SUPPORTED_VERSIONS, help="Notion-Version header")
    p.add_argument("--cache-size", type=_size, help="block cache bound in bytes (256M, 1G, ...)")
    p.add_argument("--metadata-ttl", type=float, help="seconds listings stay fresh (default 60)")
    p.add_argument("--deadline", type=float, help="seconds any filesystem call may take (30)")
    p.add_argument(
        "--poll-interval", type=float,
        help="seconds between change-feed polls (default 15; 0 turns the feed off, and "
        "listings then expire after --metadata-ttl)",
    )  # fmt: skip
    p.add_argument(
        "--backstop-ttl", type=float,
        help="seconds a listing the feed saw no change in is trusted (default 600)",
    )  # fmt: skip
    p.add_argument(
        "--rate-limit", type=float, help="API requests per second, on average (3, as Notion)"
    )
    p.add_argument("--token-file", help="read the Notion token from this file")
    p.add_argument("--token", help=argparse.SUPPRESS)  # visible to other users: warned about
    p.add_argument("--demo", action="store_true", help="mount the bundled demo workspace")
    p.add_argument("--allow-other", action="store_true", help="let other users see the mount")
    p.add_argument("-o", dest="fuse_options", action="append", default=[], help="FUSE options")
    p.add_argument("--log-file", help="log here (default: stderr, or a file when backgrounded)")
    p.add_argument("--debug", action="store_true", help="debug logging (secrets stay redacted)")
    p.add_argument(
        "--fuse-binding",
        choices=BINDINGS,
        help="fusepy over libfuse 2, or mfusepy over libfuse 3 (default auto: fusepy where "
        "libfuse 2 is installed; env NOTIONFS_FUSE_BINDING)",
    )


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 256M)")
    power = " kmgt".index(match.group(2) or " ")
    return int(match.group(1)) << (10 * power)


def _parse_fuse_options(values: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for value in values:
        for item in filter(None, value.split(",")):
            key, sep, val = item.partition("=")
            options[key.strip()] = val if sep else True
    return options


def _read_token(args: argparse.Namespace) -> str:
    if args.token:
        logger.warning(
            "--token is visible to every user of this machine (ps); use NOTION_TOKEN "
            "or --token-file instead"
        )
        return str(args.token)
    if args.token_file:
        path = Path(args.token_file).expanduser()
        try:
            mode = path.stat().st_mode
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            logger.warning("token file %s is readable by other users: chmod 600 it", path)
        return token
    return os.environ.get("NOTION_TOKEN", "").strip()


def check_fuse_available(binding: str = "auto") -> Binding:
    """The FUSE binding to mount with, loaded; ConfigError says what to install."""
    if not os.path.exists("/dev/fuse") and sys.platform.startswith("linux"):
        raise ConfigError(f"/dev/fuse is missing: this machine has no FUSE; {FUSE_INSTALL_HINT}")
    if sys.platform.startswith("linux") and not (
        shutil.which("fusermount") or shutil.which("fusermount3")
    ):
        raise ConfigError(f"fusermount not found; {FUSE_INSTALL_HINT}")
    try:
        return load_binding(binding)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {FUSE_INSTALL_HINT}") from None


def check_mountpoint(path: Path, *, allow_nonempty: bool = False) -> None:
    """A usable, unmounted, empty directory. A dead mount left by a crash is lifted."""
    if _is_dead_mount(path):
        _recover_dead_mount(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"mountpoint {path} does not exist (mkdir it first)") from None
    except OSError as exc:
        raise ConfigError(f"mountpoint {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"mountpoint {path} is not a directory")
    if os.path.ismount(path):
        unmount = " ".join(unmount_command(path, lazy=False))
        raise ConfigError(f"{path} is already mounted (unmount it: {unmount})")
    if not allow_nonempty and any(path.iterdir()):
        raise ConfigError(
            f"mountpoint {path} is not empty: the mount would hide its files "
            "(use an empty directory, or pass -o nonempty)"
        )


def _is_dead_mount(path: Path) -> bool:
    """A mount whose server died: "Transport endpoint is not connected".

    stat alone may not tell (the kernel answers it from cached attributes); statfs always
    goes to the server, and a live notionfs answers it without touching the network.
    """
    try:
        if not os.path.ismount(path):
            path.stat()
            return False
        os.statvfs(path)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def unmount_command(path: Path, *, lazy: bool) -> list[str]:
    """The command that unmounts ``path``; ``lazy`` detaches it even while files are open."""
    if sys.platform.startswith("linux"):
        tool = shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"
        return [tool, "-u", *(["-z"] if lazy else []), str(path)]
    return ["umount", *(["-f"] if lazy else []), str(path)]


def _recover_dead_mount(path: Path) -> None:
    """"Transport endpoint is not connected": the last mount's process died. Lift it."""
    command = unmount_command(path, lazy=True)
    logger.warning("%s holds a dead mount (its process died); running: %s", path, " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise ConfigError(
            f"{path} holds a dead mount that could not be lifted ({result.stderr.strip()}); "
            f"run: sudo umount -l {path}"
        )


def check_allow_other(fuse_conf: Path = FUSE_CONF) -> None:
    """Users other than root may share a mount only where /etc/fuse.conf allows it."""
    if os.getuid() == 0 or not sys.platform.startswith("linux"):
        return
    try:
        lines = fuse_conf.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    if any(line.split("#", 1)[0].strip() == "user_allow_other" for line in lines):
        return
    raise ConfigError(
        f"--allow-other needs the line 'user_allow_other' in {fuse_conf}; add it as root: "
        f"echo user_allow_other | sudo tee -a {fuse_conf}"
    )


def extra_fuse_options(args: argparse.Namespace) -> dict[str, Any]:
    """The user's -o options and --allow-other, checked before anything is started."""
    extra = _parse_fuse_options(args.fuse_options)
    if args.allow_other:
        extra["allow_other"] = True
    if extra.get("allow_other"):
        check_allow_other()
    return extra


# ---- lifecycle: a signal stops the mount cleanly -------------------------------------------


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
                _exit_now(1)
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
        _exit_now(0)


def _give_up() -> None:
    print("notionfs: interrupted", file=sys.stderr, flush=True)
    _exit_now(130)


def _exit_now(code: int) -> None:
    logging.shutdown()  # flush the log: os._exit skips every other clean-up
    os._exit(code)


def check_token(settings: Settings, client: NotionClient | None = None) -> str:
    """Ask Notion who we are; returns the workspace name. One clear error otherwise.

    Given the mount's own ``client`` (left open), the check counts against the same rate
    limit as the requests that follow it.
    """
    from .client import NotionClient

    if not settings.token:
        raise ConfigError(
            "no Notion token: set NOTION_TOKEN or pass --token-file (see README: "
            "'Using a real workspace')"
        )
    own_client = client is None
    if client is None:
        client = NotionClient(settings)
    try:
        me = client.me()
    except AuthError as exc:
        raise ConfigError(f"Notion rejected the token ({exc.status} {exc.code})") from None
    except NetworkError as exc:
        raise ConfigError(f"cannot reach the Notion API at {settings.api_url}: {exc}") from None
    finally:
        if own_client:
            client.close()
    return me.workspace_name or me.name or "workspace"


@contextlib.contextmanager
def demo_backend(settings_overrides: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Serve the bundled demo workspace in-process and point the settings at it."""
    from .emulator.demo import build_demo
    from .emulator.server import Emulator

    workspace = build_demo(DEMO_DATA_DIR)
    with Emulator(workspace, rate_limit_rps=3.0, rate_limit_burst=30) as emulator:
        overrides = dict(settings_overrides)
        overrides.update(api_url=emulator.api_url, token=emulator.token)
        yield overrides


def mount_command(args: argparse.Namespace) -> int:
    mountpoint = Path(args.mountpoint).expanduser().absolute()
    if not args.foreground:
        return _mount_in_background(args, mountpoint)
    redactor = configure_logging(args.debug, args.log_file)
    lifecycle = StopOnSignal(mountpoint)
    lifecycle.install()  # before any thread starts: every thread inherits the signal mask
    overrides: dict[str, Any] = {
        "api_url": args.api_url,
        "notion_version": args.notion_version,
        "cache_size_bytes": args.cache_size,
        "metadata_ttl_s": args.metadata_ttl,
        "op_deadline_s": args.deadline,
        "poll_interval_s": args.poll_interval,
        "backstop_ttl_s": args.backstop_ttl,
        "rate_limit_rps": args.rate_limit,
        "debug": args.debug,
        "fuse_binding": args.fuse_binding,
    }
    try:
        binding = check_fuse_available(
            args.fuse_binding or Settings.from_env().fuse_binding
        )
        extra = extra_fuse_options(args)
        check_mountpoint(mountpoint, allow_nonempty=bool(extra.get("nonempty")))
        with contextlib.ExitStack() as stack:
            if args.demo:
                overrides = stack.enter_context(demo_backend(overrides))
            else:
                overrides["token"] = _read_token(args)
            settings = Settings.from_env(**overrides)
            redactor.add_secret(settings.token)
            from .client import NotionClient

            client = stack.enter_context(NotionClient(settings))
            workspace_name = check_token(settings, client)
            _serve(binding, settings, client, mountpoint, workspace_name, extra, lifecycle)
    except KeyboardInterrupt:
        print("notionfs: interrupted", file=sys.stderr)
        return 130
    except ConfigError as exc:
        print(f"notionfs: {exc}", file=sys.stderr)
        return 2
    except NotionFSError as exc:
        print(f"notionfs: {exc}", file=sys.stderr)
        return 1
    # Unmounted. Calls still waiting on a slow Notion or file host have nobody left to
    # answer; exit without the interpreter waiting for their threads (minutes, maybe).
    _exit_now(0)
    return 0


def _serve(
    binding: Binding,
    settings: Settings,
    client: NotionClient,
    mountpoint: Path,
    workspace_name: str,
    extra: dict[str, Any],
    lifecycle: StopOnSignal,
) -> None:
    from .fuse_ops import fuse_options, run_fuse
    from .remote import file_host_client
    from .workspace import NotionWorkspace

    options = fuse_options(
        settings, f"notion:{workspace_name}", extra, libfuse_major=binding.libfuse_major
    )
    # File hosts get their own client: the Notion token must never travel to them.
    files_http = file_host_client(settings)
    workspace = NotionWorkspace(client, files_http, settings)
    logger.info(
        "mounting %s (notion:%s) at %s with %s over libfuse %d",
        settings.api_url, workspace_name, mountpoint, binding.name, binding.libfuse_major,
    )  # fmt: skip
    workspace.start_feed()
    try:
        lifecycle.begin_serving()
        run_fuse(
            binding, workspace, settings, str(mountpoint), options, mounted=lifecycle.mounted
        )
    except RuntimeError as exc:  # fusepy's way of saying libfuse could not mount
        raise ConfigError(
            f"could not mount {mountpoint} (libfuse status {exc}; its message is above)"
        ) from None
    finally:
        lifecycle.finished.set()
        workspace.close()
        files_http.close()
    logger.info("unmounted %s", mountpoint)


def _mount_in_background(args: argparse.Namespace, mountpoint: Path) -> int:
    """Run the mount as a detached child and return once it is ready (or say why not)."""
    configure_logging(args.debug)
    env = dict(os.environ)
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
    child = [sys.executable, "-m", "notionfs", *argv, "--foreground"]
    if not args.log_file:
        child += ["--log-file", log_file]
    with open(log_file, "a", encoding="utf-8") as log:
        start = log.tell()
        proc = subprocess.Popen(
            child,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        return _await_mount(proc, mountpoint, log_file, start)
    except KeyboardInterrupt:
        proc.terminate()  # the child stops cleanly on SIGTERM, mounted or not
        print("notionfs: interrupted", file=sys.stderr)
        return 130


def _await_mount(
    proc: subprocess.Popen[bytes], mountpoint: Path, log_file: str, start: int
) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.ismount(mountpoint):
            print(f"notionfs: mounted at {mountpoint} (log: {log_file})")
            print(f"notionfs: unmount with: {' '.join(unmount_command(mountpoint, lazy=False))}")
            return 0
        if proc.poll() is not None:
            with open(log_file, encoding="utf-8", errors="replace") as log:
                log.seek(start)
                tail = [line for line in log.read().splitlines() if line.strip()]
            message = next((ln for ln in reversed(tail) if ln.startswith("notionfs:")), None)
            print(message or f"notionfs: mount failed (see {log_file})", file=sys.stderr)
            return proc.returncode or 1
        time.sleep(0.1)
    proc.terminate()
    print(f"notionfs: the mount did not become ready in time (see {log_file})", file=sys.stderr)
    return 1


def _default_log_file(mountpoint: Path) -> Path:
    directory = Path.home() / ".cache" / "notionfs"
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(mountpoint)).strip("_") or "mount"
    return directory / f"mount-{safe}.log"


# ---- entry point ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notionfs", description="Mount a Notion workspace as a read-only filesystem."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_mount_arguments(sub.add_parser("mount", help="mount a workspace"))
    emulator = sub.add_parser("emulator", help="serve the local Notion emulator (demo workspace)")
    from .emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command == "mount":
        return mount_command(args)
    from .emulator import cli as emulator_cli

    return int(emulator_cli.run(args))


if __name__ == "__main__":
    sys.exit(main())
