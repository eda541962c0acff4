"""Command line for the emulator: serve the demo workspace until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

__all__ = ["add_arguments", "run", "DEFAULT_DATA_DIR", "DEFAULT_RATE_LIMIT_RPS"]

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("~/.cache/notionfs/demo")
DEFAULT_RATE_LIMIT_RPS = 3.0  # Notion's published average per integration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options, for ``notionfs emulator`` and ``python -m notionfs.emulator``."""
    parser.add_argument("--port", type=int, default=0, help="API port (default: any free port)")
    parser.add_argument(
        "--files-port", type=int, default=0, help="file host port (default: any free port)"
    )
    parser.add_argument(
        "--token", default="secret_emulator_token", help="the bearer token the API accepts"
    )
    parser.add_argument(
        "--expiry-s",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime of presigned file URLs (default: 3600, as Notion)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=DEFAULT_RATE_LIMIT_RPS,
        metavar="RPS",
        help="average requests per second before 429 (default: 3; 0 = off)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="where the demo's large generated files live (default: ~/.cache/notionfs/demo)",
    )


def _banner(api_url: str, files_url: str, token: str, version: str) -> str:
    return "\n".join(
        [
            "Notion emulator serving the demo workspace",
            f"  API base URL : {api_url}",
            f"  files URL    : {files_url}",
            f"  token        : {token}",
            "",
            "Try:",
            f"  curl -s -X POST {api_url}/v1/search \\",
            f"    -H 'Authorization: Bearer {token}' \\",
            f"    -H 'Notion-Version: {version}' \\",
            "    -H 'Content-Type: application/json' -d '{\"page_size\": 5}'",
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until ``stop`` is set); 0 on a clean shutdown."""
    from notionfs.config import DEFAULT_NOTION_VERSION
    from notionfs.emulator.demo import build_demo
    from notionfs.emulator.server import Emulator

    data_dir = Path(args.data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    workspace = build_demo(data_dir)
    emulator = Emulator(
        workspace,
        token=args.token,
        port=args.port,
        files_port=args.files_port,
        expiry_s=args.expiry_s,
        rate_limit_rps=args.rate_limit,
    )
    stop = stop or threading.Event()
    with emulator:
        try:
            # The banner is the command's output, so it goes to stdout rather than the log.
            banner = _banner(
                emulator.api_url, emulator.files_url, emulator.token, DEFAULT_NOTION_VERSION
            )
            print(banner, flush=True)
            stop.wait()
        except KeyboardInterrupt:
            logger.info("interrupted, stopping the emulator")
    return 0
