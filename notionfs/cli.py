"""Command line: `notionfs mount`, `notionfs emulator`, the mount(8) helper; builds Settings."""

from __future__ import annotations

import _thread
import argparse
import contextlib
import errno
import logging
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import __version__
from .config import DEFAULT_API_URL, DEFAULT_NOTION_VERSION, SUPPORTED_VERSIONS, Settings
from .errors import ApiError, ConfigError, NetworkError, NotionFSError
from .fusebind import BINDINGS, Binding, load_binding

if TYPE_CHECKING:
    from .client import NotionClient
    from .models import User
    from .store import StoreIdentity

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


MOUNT_DESCRIPTION = """\
Mount a Notion workspace at MOUNTPOINT as a read-only filesystem. The command returns once the
mount answers (add --foreground to keep it in the terminal; Ctrl-C then unmounts).

The integration token is read from the NOTION_TOKEN environment variable, or from the file
given with --token-file (chmod 600 it). Never put it on a command line: other users see those.
"""
MOUNT_EPILOG = """\
environment:
  NOTION_TOKEN       the integration token (ntn_... or secret_...)
  NOTIONFS_API_URL   like --api-url
  NOTION_VERSION     like --notion-version

unmount with: fusermount -u MOUNTPOINT (macOS: umount MOUNTPOINT)
"""


def add_mount_arguments(p: argparse.ArgumentParser) -> None:
    defaults = Settings()
    p.description = MOUNT_DESCRIPTION
    p.epilog = MOUNT_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("mountpoint", help="an empty directory to mount on")
    p.add_argument(
        "--foreground", "-f", action="store_true",
        help="stay in the foreground; Ctrl-C unmounts (default: return once mounted)",
    )
    p.add_argument(
        "--api-url", metavar="URL",
        help=f"Notion API base URL, without /v1 (default: {DEFAULT_API_URL})",
    )
    p.add_argument(
        "--notion-version", choices=SUPPORTED_VERSIONS, metavar="VERSION",
        help=f"Notion-Version header: {', '.join(SUPPORTED_VERSIONS)} "
        f"(default: {DEFAULT_NOTION_VERSION})",
    )
    p.add_argument(
        "--cache-size", type=_size, metavar="SIZE",
        help=f"bound of the in-memory block cache: 64M, 1G, ... "
        f"(default: {human_size(defaults.cache_size_bytes)})",
    )
    p.add_argument(
        "--metadata-ttl", type=float, metavar="SECONDS",
        help="seconds a listing stays fresh without a change feed "
        f"(default: {defaults.metadata_ttl_s:g})",
    )
    p.add_argument(
        "--deadline", type=float, metavar="SECONDS",
        help=f"seconds any filesystem call may take (default: {defaults.op_deadline_s:g})",
    )
    p.add_argument(
        "--no-metadata-cache", action="store_true",
        help="keep no listings on disk between mounts (default: kept under "
        "$XDG_CACHE_HOME/notionfs/metadata, without tokens, signed URLs or file bytes)",
    )
    p.add_argument(
        "--poll-interval", type=float, metavar="SECONDS",
        help=f"seconds between change-feed polls (default: {defaults.poll_interval_s:g}; "
        "0 turns the feed off, and listings then expire after --metadata-ttl)",
    )
    p.add_argument(
        "--backstop-ttl", type=float, metavar="SECONDS",
        help="seconds a listing the feed reported no change in is trusted "
        f"(default: {defaults.backstop_ttl_s:g})",
    )
    p.add_argument(
        "--rate-limit", type=float, metavar="RPS",
        help=f"API requests per second, on average "
        f"(default: {defaults.rate_limit_rps:g}, as Notion)",
    )
    p.add_argument(
        "--token-file", metavar="PATH",
        help="read the Notion token from this file (default: $NOTION_TOKEN)",
    )
    p.add_argument("--token", help=argparse.SUPPRESS)  # visible to other users: warned about
    p.add_argument(
        "--demo", action="store_true",
        help="mount the bundled demo workspace, no token needed (default: off)",
    )
    p.add_argument(
        "--allow-other", action="store_true",
        help="let other users see the mount (default: only you)",
    )
    p.add_argument(
        "-o", dest="fuse_options", action="append", default=[], metavar="OPTIONS",
        help="FUSE mount options, comma-separated (default: none)",
    )
    p.add_argument(
        "--log-file", metavar="PATH",
        help="log here (default: stderr with --foreground, else "
        "~/.cache/notionfs/mount-<mountpoint>.log)",
    )
    p.add_argument(
        "--debug", action="store_true",
        help="debug logging; secrets stay redacted (default: off)",
    )
    p.add_argument(
        "--fuse-binding", choices=BINDINGS,
        help="fusepy over libfuse 2, or mfusepy over libfuse 3; env NOTIONFS_FUSE_BINDING "
        "(default: auto, fusepy where libfuse 2 is installed)",
    )
    # The background command's child says on this descriptor when its mount answers.
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    # mount(8) helpers are silent on success (`mount -a` at boot prints nothing).
    p.add_argument("--quiet-success", action="store_true", help=argparse.SUPPRESS)


def human_size(n_bytes: int) -> str:
    """256M for 268435456: the largest binary unit that divides the size exactly."""
    for power, suffix in ((4, "T"), (3, "G"), (2, "M"), (1, "K")):
        if n_bytes and n_bytes % (1 << (10 * power)) == 0:
            return f"{n_bytes >> (10 * power)}{suffix}"
    return str(n_bytes)


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


class NotionUnreachable(ConfigError):
    """Notion could not be reached to check the token (a cache may still serve)."""


def check_token(settings: Settings, client: NotionClient | None = None) -> str:
    """Ask Notion who we are; returns the workspace name. One clear error otherwise."""
    me = identify(settings, client)
    return me.workspace_name or me.name or "workspace"


def identify(settings: Settings, client: NotionClient | None = None) -> User:
    """Ask Notion who we are (users/me). One clear error otherwise; NotionUnreachable when
    it cannot be reached at all.

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
    except ApiError as exc:
        raise ConfigError(_explain_api_error(settings.api_url, exc)) from None
    except NetworkError as exc:
        raise NotionUnreachable(
            f"cannot reach the Notion API at {settings.api_url}: {exc}"
        ) from None
    finally:
        if own_client:
            client.close()
    return me


def _explain_api_error(api_url: str, exc: ApiError) -> str:
    """One line on what the answer to GET /v1/users/me says about the URL and the token."""
    from .models import MalformedResponse

    base_hint = f"--api-url takes the API's base URL, such as {DEFAULT_API_URL}"
    if isinstance(exc, MalformedResponse):
        return (
            f"{api_url} is not a Notion API (its answer to GET /v1/users/me is not a "
            f"Notion user: {exc}); {base_hint}"
        )
    if exc.code.startswith("http_"):
        # Notion answers every error with a JSON error object; this server did not.
        return (
            f"{api_url} is not a Notion API (GET /v1/users/me answered HTTP {exc.status} "
            f"without a Notion error object); {base_hint}"
        )
    if exc.status in (401, 403) or exc.code in ("unauthorized", "restricted_resource"):
        return f"Notion rejected the token ({exc.status} {exc.code})"
    if exc.code == "invalid_request_url":
        return f"{api_url} answered {exc.code} for GET /v1/users/me; {base_hint}"
    return f"the Notion API at {api_url} failed the token check ({exc.status} {exc.code})"


def check_api_url(api_url: str) -> None:
    """A base URL such as https://api.notion.com: http(s), a host, no /v1 (paths add it)."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--api-url {api_url!r} is not an http(s) URL (the default is {DEFAULT_API_URL})"
        )
    if parts.path.rstrip("/").endswith("/v1"):
        base = api_url.rstrip("/")[: -len("/v1")]
        raise ConfigError(
            f"--api-url {api_url}: drop /v1 (use {base}); notionfs adds /v1/... itself"
        )


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
    if not args.demo:
        try:
            check_api_url(Settings.from_env(api_url=args.api_url).api_url)
        except ConfigError as exc:
            print(f"notionfs: {exc}", file=sys.stderr)
            return 2
    if not args.foreground:
        return _mount_in_background(args, mountpoint)
    redactor = configure_logging(args.debug, args.log_file)
    lifecycle = StopOnSignal(mountpoint)
    lifecycle.install()  # before any thread starts: every thread inherits the signal mask
    _announce_when_mounted(lifecycle, args.ready_fd)
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
        "metadata_cache": False if args.no_metadata_cache else None,
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
            workspace_name, identity = _who(settings, client)
            _serve(
                binding, settings, client, mountpoint, workspace_name, extra, lifecycle,
                identity,
            )  # fmt: skip
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


def _cache_root(settings: Settings) -> Path | None:
    if not settings.metadata_cache or not settings.cache_dir:
        return None
    return Path(settings.cache_dir) / "metadata"


def _who(settings: Settings, client: NotionClient) -> tuple[str, StoreIdentity | None]:
    """The workspace's name and the metadata cache's identity: from Notion, or, with Notion
    out of reach, from a cache this token built (the mount then comes up from it)."""
    from .persist import identity_of, offline_identity

    root = _cache_root(settings)
    try:
        me = identify(settings, client)
    except NotionUnreachable as exc:
        found = None
        if root is not None:
            found = offline_identity(
                root, settings.api_url, settings.notion_version, settings.token
            )
        if found is None:
            raise
        logger.warning(
            "%s; mounting from the metadata cache (folders seen before browse, files not in "
            "memory fail with EIO); the change feed resumes by itself when Notion answers",
            exc,
        )
        return found[1], found[0]
    name = me.workspace_name or me.name or "workspace"
    if root is None:
        return name, None
    return name, identity_of(settings.api_url, settings.notion_version, me)


def _serve(
    binding: Binding,
    settings: Settings,
    client: NotionClient,
    mountpoint: Path,
    workspace_name: str,
    extra: dict[str, Any],
    lifecycle: StopOnSignal,
    identity: StoreIdentity | None = None,
) -> None:
    from .fuse_ops import fuse_options, run_fuse
    from .persist import WORKSPACE_NAME_STATE, Persistence, open_store
    from .remote import file_host_client
    from .workspace import NotionWorkspace

    options = fuse_options(
        settings, f"notion:{workspace_name}", extra, libfuse_major=binding.libfuse_major
    )
    # File hosts get their own client: the Notion token must never travel to them.
    files_http = file_host_client(settings)
    persist = None
    root = _cache_root(settings)
    if identity is not None and root is not None:
        store = open_store(root, identity, settings.token, warn=_warn_cache)
        persist = Persistence(store, client)
        persist.save_state(WORKSPACE_NAME_STATE, workspace_name)
    workspace = NotionWorkspace(client, files_http, settings, persist=persist)
    restored = workspace.restore()
    logger.info(
        "mounting %s (notion:%s) at %s with %s over libfuse %d; %d folders from the "
        "metadata cache",
        settings.api_url, workspace_name, mountpoint, binding.name, binding.libfuse_major,
        restored,
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
        if persist is not None:
            persist.close()
        files_http.close()
    logger.info("unmounted %s", mountpoint)


def _warn_cache(message: str) -> None:
    logger.warning("metadata cache: %s", message)


def _announce_when_mounted(lifecycle: StopOnSignal, ready_fd: int | None) -> None:
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


def _mount_in_background(args: argparse.Namespace, mountpoint: Path) -> int:
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


# ---- mount(8) helper: fstab lines, `mount -t fuse.notionfs`, systemd .mount units ------------

# Options mount(8) and fstab use for their own purposes; a helper must not hand them to FUSE.
HELPER_IGNORED_OPTIONS = frozenset(
    {"defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group", "_netdev",
     "nofail", "rw", "ro", "sync", "async"}
)
# fstab option -> `notionfs mount` flag taking a value.
HELPER_VALUE_OPTIONS = {
    "token_file": "--token-file",
    "api_url": "--api-url",
    "notion_version": "--notion-version",
    "cache_size": "--cache-size",
    "metadata_ttl": "--metadata-ttl",
    "deadline": "--deadline",
    "rate_limit": "--rate-limit",
    "log_file": "--log-file",
}
HELPER_USAGE = (
    "usage: mount.fuse.notionfs SOURCE MOUNTPOINT [-o token_file=PATH,OPTIONS]\n"
    "  SOURCE: `notion`, or the API base URL (https://api.notion.com)\n"
    "  options: token_file, api_url, notion_version, cache_size, metadata_ttl, deadline,\n"
    "  rate_limit, log_file, debug; FUSE options (allow_other, uid=, ...) pass through"
)


def mount_helper_argv(argv: Sequence[str]) -> list[str] | None:
    """``notionfs mount`` arguments for mount(8)'s helper call ``SOURCE MOUNTPOINT [-sfnv]
    [-o OPTIONS] [-t TYPE]`` (mount.fuse(8) calls ``notionfs SOURCE MOUNTPOINT -o OPTIONS``);
    None when mount(8) asked only for a fake mount (-f)."""
    positional: list[str] = []
    options: list[str] = []
    fake = False
    items = iter(argv)
    for item in items:
        if item in ("-o", "-t", "-N"):
            value = next(items, None)
            if value is None:
                raise ConfigError(f"{item} needs a value\n{HELPER_USAGE}")
            if item == "-o":
                options.extend(o for o in value.split(",") if o)
        elif item.startswith("-o") and len(item) > 2:
            options.extend(o for o in item[2:].split(",") if o)
        elif item.startswith("-") and len(item) > 1:
            fake = fake or "f" in item[1:]  # -s sloppy, -n no mtab, -v verbose: nothing to do
        else:
            positional.append(item)
    if len(positional) != 2:
        raise ConfigError(f"expected SOURCE and MOUNTPOINT\n{HELPER_USAGE}")
    source, mountpoint = positional
    command = ["mount", mountpoint, "--quiet-success"]
    fuse: list[str] = []
    api_url = source if source.startswith(("http://", "https://")) else None
    for option in options:
        key, sep, value = option.partition("=")
        if key in ("token", "NOTION_TOKEN"):
            raise ConfigError(
                "a token= option would show the token in the mount table and in ps; "
                "put it in a file (chmod 600) and pass token_file=PATH"
            )
        if key in HELPER_VALUE_OPTIONS:
            if not sep or not value:
                raise ConfigError(f"option {key} needs a value ({key}=...)")
            if key == "api_url":
                api_url = value
            else:
                command += [HELPER_VALUE_OPTIONS[key], value]
        elif key == "debug":
            command.append("--debug")
        elif key in HELPER_IGNORED_OPTIONS or key.startswith(("x-", "comment")):
            continue
        else:
            fuse.append(option)
    if api_url is not None:
        command += ["--api-url", api_url]
    if fuse:
        command += ["-o", ",".join(fuse)]
    return None if fake else command


def mount_helper(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mount.fuse.notionfs``: what mount(8) runs for ``-t fuse.notionfs``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(HELPER_USAGE)
        return 0
    try:
        command = mount_helper_argv(argv)
    except ConfigError as exc:
        print(f"notionfs: {exc}", file=sys.stderr)
        return 2
    if command is None:
        return 0
    return main(command)


# ---- entry point ---------------------------------------------------------------------------

COMMANDS = ("mount", "cache", "emulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notionfs", description="Mount a Notion workspace as a read-only filesystem."
    )
    parser.add_argument("--version", action="version", version=f"notionfs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_mount_arguments(sub.add_parser("mount", help="mount a workspace"))
    from . import cachecmd

    cachecmd.add_arguments(
        sub.add_parser("cache", help="show or clear the metadata kept on disk between mounts")
    )
    emulator = sub.add_parser("emulator", help="serve the local Notion emulator (demo workspace)")
    from .emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        # mount.fuse(8) runs `notionfs SOURCE MOUNTPOINT -o OPTIONS` for type fuse.notionfs.
        return mount_helper(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command == "mount":
        return mount_command(args)
    if args.command == "cache":
        from . import cachecmd

        return cachecmd.run(args)
    from .emulator import cli as emulator_cli

    return int(emulator_cli.run(args))


if __name__ == "__main__":
    sys.exit(main())
