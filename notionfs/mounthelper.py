"""The mount(8) helper: fstab lines, `mount -t fuse.notionfs` and systemd .mount units."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    pass

logger = logging.getLogger("notionfs")


# Options mount(8) and fstab use for their own purposes; a helper must not hand them to FUSE.
HELPER_IGNORED_OPTIONS = frozenset(
    {"defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group", "_netdev",
     "nofail", "rw", "sync", "async"}
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
    "  rate_limit, log_file, debug, ro (read-only), writable; FUSE options (allow_other,\n"
    "  uid=, ...) pass through"
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
        elif key == "writable":
            command.append("--writable")
        elif key == "ro":
            command.append("--read-only")
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
    from .cli import main  # the command line it stands for

    return main(command)
