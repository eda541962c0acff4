"""Settings: every tunable in one frozen dataclass; the only reader of os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "DEFAULT_API_URL", "DEFAULT_NOTION_VERSION", "SUPPORTED_VERSIONS"]

DEFAULT_API_URL = "https://api.notion.com"
DEFAULT_NOTION_VERSION = "2025-09-03"
SUPPORTED_VERSIONS = ("2022-06-28", "2025-09-03", "2026-03-11")

MiB = 1 << 20


@dataclass(frozen=True)
class Settings:
    token: str = field(default="", repr=False)  # never in a repr, a log or a traceback
    api_url: str = DEFAULT_API_URL
    notion_version: str = DEFAULT_NOTION_VERSION
    # API client
    rate_limit_rps: float = 3.0  # Notion's published average per integration
    rate_limit_burst: int = 10
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 20.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    # Metadata
    metadata_ttl_s: float = 60.0  # how long a listing is trusted without a change feed
    # Change feed: one search call every poll_interval_s tells which folders changed; 0 turns
    # it off (listings then expire after metadata_ttl_s). With it, a listing the feed did not
    # report lives backstop_ttl_s, for what search cannot see (docs/SEMANTICS.md), and is then
    # re-listed behind the held answer; the kernel keeps answers kernel_timeout_s.
    poll_interval_s: float = 15.0
    # Listings, sizes and the feed's mark kept on disk (under cache_dir) between mounts.
    metadata_cache: bool = True
    backstop_ttl_s: float = 600.0
    kernel_timeout_s: float = 2.0
    # Subfolders listed ahead, in the background, per folder a program lists (0: none).
    prefetch_folders: int = 10
    # Children of a page's sibling containers (toggles, columns) fetched at once.
    list_workers: int = 4
    feed_lag_window_s: float = 300.0
    # URL refresh: treat a signed URL as expired this long before its expiry_time
    url_refresh_margin_s: float = 60.0
    # Data path
    cache_size_bytes: int = 256 * MiB
    block_size_bytes: int = 1 * MiB
    readahead_initial_bytes: int = 1 * MiB
    readahead_max_bytes: int = 64 * MiB
    fetch_workers: int = 8
    # First bytes fetched by the size probe (kept in the cache: file managers read headers next)
    probe_head_bytes: int = 128 * 1024
    # Largest single Range request a read-ahead issues; bigger windows run as parallel requests
    max_request_bytes: int = 16 * MiB
    # Most bytes streamed from a host that ignores Range (skipping to an offset) or gives no size
    unranged_limit_bytes: int = 64 * MiB
    probe_workers: int = 16
    # Every FUSE call finishes within this, or answers EIO / stale data.
    op_deadline_s: float = 30.0
    # FUSE
    st_blksize_bytes: int = 1 * MiB
    # libfuse 3 only: the kernel's read size and read-ahead for the mount (1 MiB requests
    # instead of 128 KiB); raising the mount's read_ahead_kb needs root. 0: kernel defaults.
    read_ahead_kb: int = 1024
    # The largest read the kernel sends this mount (set when mounting: 128 KiB under
    # libfuse 2, read_ahead_kb under libfuse 3). A read that size may be a piece of a larger
    # one a program made; a smaller one is the program's whole read.
    kernel_read_bytes: int = 128 * 1024
    fuse_binding: str = "auto"  # "fusepy" (libfuse 2), "mfusepy" (libfuse 3), or "auto"
    debug: bool = False
    # Write path: bytes being written are staged under <cache_dir>/staging, at most this many
    # in all (a write past it fails with ENOSPC); multi_part uploads send parts of
    # upload_part_bytes (Notion takes 5-20 MiB), upload_parts_in_flight at a time.
    # Files created, written and removed go back to Notion (docs/SEMANTICS.md); --read-only
    # mounts without the write layer.
    writable: bool = True
    staging_max_bytes: int = 10 * 1024 * MiB
    upload_part_bytes: int = 10 * MiB
    upload_parts_in_flight: int = 3
    # notionfs's cache directory (the metadata cache lives in its ``metadata`` folder);
    # empty unless set by from_env: a Settings built directly persists nothing.
    cache_dir: str = ""

    @property
    def feed_enabled(self) -> bool:
        return self.poll_interval_s > 0

    @property
    def listing_ttl_s(self) -> float:
        """How long a listing answers without asking Notion again."""
        return self.backstop_ttl_s if self.feed_enabled else self.metadata_ttl_s

    @property
    def kernel_answer_s(self) -> float:
        """How long the kernel keeps attributes and entries it was given (``attr_timeout``,
        ``entry_timeout``, ``negative_timeout``). With a change feed briefly, so what the feed
        learns reaches programs within seconds (each expiry costs one FUSE round trip
        answered from memory); without one, as long as the listing itself. Never 0: every
        stat would reach us."""
        if self.feed_enabled:
            return max(0.1, min(self.kernel_timeout_s, self.listing_ttl_s))
        return max(1.0, self.metadata_ttl_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from NOTION_TOKEN / NOTIONFS_API_URL / NOTION_VERSION /
        NOTIONFS_FUSE_BINDING / NOTIONFS_CACHE_DIR / XDG_CACHE_HOME, then overrides."""
        env = os.environ if env is None else env
        values: dict[str, object] = {"cache_dir": _cache_dir(env)}
        if env.get("NOTION_TOKEN"):
            values["token"] = env["NOTION_TOKEN"]
        if env.get("NOTIONFS_API_URL"):
            values["api_url"] = env["NOTIONFS_API_URL"]
        if env.get("NOTIONFS_FUSE_BINDING"):
            values["fuse_binding"] = env["NOTIONFS_FUSE_BINDING"]
        if env.get("NOTION_VERSION"):
            values["notion_version"] = env["NOTION_VERSION"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _cache_dir(env: Mapping[str, str]) -> str:
    """$NOTIONFS_CACHE_DIR, else $XDG_CACHE_HOME/notionfs, else ~/.cache/notionfs.

    The XDG base directory spec says a relative $XDG_CACHE_HOME is invalid and to be ignored.
    """
    if env.get("NOTIONFS_CACHE_DIR"):
        return str(Path(env["NOTIONFS_CACHE_DIR"]).expanduser().absolute())
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return str(Path(xdg) / "notionfs")
    home = env.get("HOME") or str(Path.home())
    return str(Path(home) / ".cache" / "notionfs")
