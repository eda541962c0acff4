"""`notionfs mount`: its options, and serving a workspace (from Notion, or from the metadata
cache when Notion is out of reach) until unmounted."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_API_URL, DEFAULT_NOTION_VERSION, SUPPORTED_VERSIONS, Settings
from .errors import ConfigError, NotionFSError
from .fusebind import BINDINGS, Binding
from .lifecycle import StopOnSignal, announce_when_mounted, exit_now, mount_in_background
from .logsetup import configure_logging
from .preflight import (
    NotionUnreachable,
    check_api_url,
    check_fuse_available,
    check_mountpoint,
    extra_fuse_options,
    human_size,
    identify,
    parse_size,
    read_token,
)

if TYPE_CHECKING:
    from .client import NotionClient
    from .storefile import StoreIdentity

logger = logging.getLogger("notionfs")


DEMO_DATA_DIR = Path.home() / ".cache" / "notionfs" / "demo"

MOUNT_DESCRIPTION = """\
Mount a Notion workspace at MOUNTPOINT as a drive: files saved into it go back to Notion
(--read-only: refuse every write). The command returns once the mount answers (add --foreground to
keep it in the terminal; Ctrl-C then unmounts).

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
        "--cache-size", type=parse_size, metavar="SIZE",
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
        "--prefetch", type=int, metavar="FOLDERS",
        help="subfolders listed ahead, in the background, of each folder opened "
        f"(default: {defaults.prefetch_folders}; 0 turns it off)",
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
    writes = p.add_mutually_exclusive_group()
    writes.add_argument(
        "--read-only", action="store_true",
        help="refuse every write (default: writable: new files, overwrites and deletions go "
        "back to Notion, staged under the cache directory until uploaded)",
    )
    writes.add_argument(
        "--writable", action="store_true",
        help="fail rather than mount read-only when writes cannot be set up (default: "
        "writable, or read-only with a warning when another mount of the workspace holds "
        "its upload journal)",
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
        return mount_in_background(args, mountpoint)
    redactor = configure_logging(args.debug, args.log_file)
    lifecycle = StopOnSignal(mountpoint)
    lifecycle.install()  # before any thread starts: every thread inherits the signal mask
    announce_when_mounted(lifecycle, args.ready_fd)
    overrides: dict[str, Any] = {
        "api_url": args.api_url,
        "notion_version": args.notion_version,
        "cache_size_bytes": args.cache_size,
        "metadata_ttl_s": args.metadata_ttl,
        "op_deadline_s": args.deadline,
        "poll_interval_s": args.poll_interval,
        "prefetch_folders": args.prefetch,
        "backstop_ttl_s": args.backstop_ttl,
        "rate_limit_rps": args.rate_limit,
        "debug": args.debug,
        "fuse_binding": args.fuse_binding,
        "metadata_cache": False if args.no_metadata_cache else None,
        "writable": False if getattr(args, "read_only", False) else None,
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
                overrides["token"] = read_token(args)
            settings = Settings.from_env(**overrides)
            redactor.add_secret(settings.token)
            from .client import NotionClient

            client = stack.enter_context(NotionClient(settings))
            workspace_name, identity = _who(settings, client)
            _serve(
                binding, settings, client, mountpoint, workspace_name, extra, lifecycle,
                identity, require_writable=bool(getattr(args, "writable", False)),
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
    exit_now(0)
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
    *,
    require_writable: bool = False,
) -> None:
    from .fuse_ops import run_fuse
    from .fusebind import fuse_options, kernel_read_bytes, tune_read_ahead
    from .persist import WORKSPACE_NAME_STATE, Persistence, open_store
    from .remote import file_host_client
    from .workspace import NotionWorkspace

    settings = dataclasses.replace(
        settings, kernel_read_bytes=kernel_read_bytes(settings, binding.libfuse_major)
    )
    # File hosts get their own client: the Notion token must never travel to them. Bodies
    # arrive in pieces of the kernel's read size (1 MiB under libfuse 3): a read is then
    # answered with one received piece as it is, not with a copy joining eight.
    files_http = file_host_client(
        settings,
        chunk_bytes=min(settings.block_size_bytes, settings.kernel_read_bytes),
    )
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
    workspace.start_prefetch()
    source: Any = workspace
    queue = None
    if settings.writable:
        try:
            source, queue = _writable(settings, client, workspace, identity, workspace_name)
        except (ConfigError, OSError) as exc:
            if require_writable:
                workspace.close()
                raise ConfigError(f"--writable: cannot save into this mount: {exc}") from None
            logger.warning("mounting read-only: %s", exc)
            settings = dataclasses.replace(settings, writable=False)
    options = fuse_options(
        settings, f"notion:{workspace_name}", extra, libfuse_major=binding.libfuse_major
    )
    if binding.libfuse_major >= 3 and settings.read_ahead_kb > 0:
        _when_mounted(lifecycle, lambda: tune_read_ahead(str(mountpoint), settings.read_ahead_kb))
    try:
        lifecycle.begin_serving()
        run_fuse(
            binding, source, settings, str(mountpoint), options, mounted=lifecycle.mounted
        )
    except RuntimeError as exc:  # fusepy's way of saying libfuse could not mount
        raise ConfigError(
            f"could not mount {mountpoint} (libfuse status {exc}; its message is above)"
        ) from None
    finally:
        lifecycle.finished.set()
        if queue is not None:
            queue.close()
        workspace.close()
        if persist is not None:
            persist.close()
        files_http.close()
    logger.info("unmounted %s", mountpoint)

def _writable(
    settings: Settings,
    client: NotionClient,
    workspace: Any,
    identity: StoreIdentity | None,
    workspace_name: str,
) -> tuple[Any, Any]:
    """The write overlay over ``workspace`` and its upload queue, started: what an earlier
    mount left unfinished (even after kill -9) is finished first."""
    from .journal import Journal, staging_dir
    from .overlay import WriteOverlay
    from .recovery import recover_unsaved
    from .staging import StagingArea
    from .uploadqueue import UploadQueue
    from .uploads import UploadEngine
    from .writeapi import WriteApi

    who = identity.to_json() if identity is not None else f"{settings.api_url}|{workspace_name}"
    root = staging_dir(settings.cache_dir, who)
    staging = StagingArea(root, settings.staging_max_bytes)
    journal = Journal(root / "journal.db")
    engine = UploadEngine(
        WriteApi(client), journal, staging, part_bytes=settings.upload_part_bytes,
        parts_in_flight=settings.upload_parts_in_flight,
    )  # fmt: skip
    queue = UploadQueue(engine)
    recover_unsaved(queue)
    queue.start()
    logger.info("writable: bytes staged under %s (at most %s)", root,
                human_size(settings.staging_max_bytes))
    # Within the deadline of the FUSE call that waits (it answers EIO past it).
    overlay = WriteOverlay(workspace, queue, wait_s=settings.op_deadline_s * 0.8)
    return overlay, queue


def _when_mounted(lifecycle: StopOnSignal, action: Callable[[], object]) -> None:
    """Run ``action`` once the kernel talks to the mount (off the FUSE threads)."""

    def wait_then_act() -> None:
        if lifecycle.mounted.wait(timeout=120):
            action()

    threading.Thread(target=wait_then_act, name="notionfs-tune", daemon=True).start()


def _warn_cache(message: str) -> None:
    logger.warning("metadata cache: %s", message)
