"""Command line: `notionfs mount`, `notionfs cache`, `notionfs emulator`, and the mount(8)
helper form; builds Settings."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .mountcmd import add_mount_arguments, mount_command
from .mounthelper import mount_helper

if TYPE_CHECKING:
    pass

logger = logging.getLogger("notionfs")


COMMANDS = ("mount", "cache", "uploads", "emulator")

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notionfs", description="Mount a Notion workspace as a drive."
    )
    parser.add_argument("--version", action="version", version=f"notionfs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_mount_arguments(sub.add_parser("mount", help="mount a workspace"))
    from . import cachecmd

    cachecmd.add_arguments(
        sub.add_parser("cache", help="show or clear the metadata kept on disk between mounts")
    )
    from . import uploadscmd

    uploadscmd.add_arguments(
        sub.add_parser("uploads", help="what the upload journals hold: list, save bytes, retry")
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
    if args.command == "uploads":
        from . import uploadscmd

        return uploadscmd.run(args)
    from .emulator import cli as emulator_cli

    return int(emulator_cli.run(args))

if __name__ == "__main__":
    sys.exit(main())
