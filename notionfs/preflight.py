"""Checks before a mount: FUSE present, the mountpoint usable, the API URL and the token
answering as Notion; each failure is one clear line."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config import DEFAULT_API_URL, Settings
from .errors import ApiError, ConfigError, NetworkError
from .fusebind import Binding, load_binding

if TYPE_CHECKING:
    from .client import NotionClient
    from .models import User

logger = logging.getLogger("notionfs")


FUSE_INSTALL_HINT = (
    "install FUSE first: `sudo apt-get install fuse libfuse2` (Debian/Ubuntu), "
    "`sudo dnf install fuse fuse-libs` (Fedora), or macFUSE on macOS"
)

FUSE_CONF = Path("/etc/fuse.conf")

def human_size(n_bytes: int) -> str:
    """256M for 268435456: the largest binary unit that divides the size exactly."""
    for power, suffix in ((4, "T"), (3, "G"), (2, "M"), (1, "K")):
        if n_bytes and n_bytes % (1 << (10 * power)) == 0:
            return f"{n_bytes >> (10 * power)}{suffix}"
    return str(n_bytes)

def approx_size(n_bytes: int) -> str:
    """2.9 MiB for 3040870: a size as a person reads it (one decimal, binary units)."""
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n_bytes} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
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

def read_token(args: argparse.Namespace) -> str:
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
