"""Command line for the emulator: serve the demo workspace until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from notionfs.emulator.wan import (
    NO_WAN,
    NOTION_WAN,
    WanConditions,
    format_bandwidth,
    parse_bandwidth,
)

__all__ = ["add_arguments", "run", "wan_conditions", "DEFAULT_DATA_DIR", "DEFAULT_RATE_LIMIT_RPS"]

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
    wan = parser.add_argument_group(
        "network conditions",
        "make the loopback emulator answer like Notion and S3 over the internet (0 = off)",
    )
    wan.add_argument(
        "--wan",
        action="store_true",
        help=f"Notion-like figures: {_describe(NOTION_WAN)}; the options below override them",
    )
    wan.add_argument(
        "--api-latency-ms",
        type=_non_negative,
        metavar="MS",
        help="delay every API answer this long (default: 0)",
    )
    wan.add_argument(
        "--ttfb-ms",
        type=_non_negative,
        metavar="MS",
        help="file host: delay before the first byte of every response (default: 0)",
    )
    wan.add_argument(
        "--conn-bandwidth",
        type=_bandwidth,
        metavar="RATE",
        help="file host: bytes per second per TCP connection, e.g. 20M (MB/s) or 8Mi "
        "(MiB/s); parallel connections each get this much (default: 0, no cap)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="where the demo's large generated files live (default: ~/.cache/notionfs/demo)",
    )


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _bandwidth(text: str) -> float:
    try:
        return parse_bandwidth(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _describe(wan: WanConditions) -> str:
    return (
        f"API latency {wan.api_latency_s * 1e3:g} ms, time to first byte "
        f"{wan.ttfb_s * 1e3:g} ms, {format_bandwidth(wan.conn_bandwidth_bps)} per connection"
    )


def wan_conditions(args: argparse.Namespace) -> WanConditions:
    """The network conditions the options ask for: ``--wan``'s, then each option's own."""
    base = NOTION_WAN if getattr(args, "wan", False) else NO_WAN
    latency_ms = getattr(args, "api_latency_ms", None)
    ttfb_ms = getattr(args, "ttfb_ms", None)
    bandwidth = getattr(args, "conn_bandwidth", None)
    return WanConditions(
        api_latency_s=base.api_latency_s if latency_ms is None else latency_ms / 1e3,
        ttfb_s=base.ttfb_s if ttfb_ms is None else ttfb_ms / 1e3,
        conn_bandwidth_bps=base.conn_bandwidth_bps if bandwidth is None else bandwidth,
    )


def _banner(
    api_url: str, files_url: str, token: str, version: str, wan: WanConditions = NO_WAN
) -> str:
    network = [f"  network      : {_describe(wan)}"] if wan.active else []
    return "\n".join(
        [
            "Notion emulator serving the demo workspace",
            f"  API base URL : {api_url}",
            f"  files URL    : {files_url}",
            f"  token        : {token}",
            *network,
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

    wan = wan_conditions(args)
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
        wan=wan,
    )
    stop = stop or threading.Event()
    with emulator:
        try:
            # The banner is the command's output, so it goes to stdout rather than the log.
            banner = _banner(
                emulator.api_url, emulator.files_url, emulator.token, DEFAULT_NOTION_VERSION, wan
            )
            print(banner, flush=True)
            stop.wait()
        except KeyboardInterrupt:
            logger.info("interrupted, stopping the emulator")
    return 0
