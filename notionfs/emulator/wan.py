"""Wide-area network conditions: API latency, file-host time to first byte, per-connection rate."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "NO_WAN",
    "NOTION_WAN",
    "LinkConditions",
    "Pacer",
    "WanConditions",
    "delay",
    "format_bandwidth",
    "parse_bandwidth",
]

# A paced connection sends in slices of about this much of its rate: few wake-ups per second,
# and each response's last byte arrives within one slice of when the link would carry it.
_SLICE_S = 0.01
_MIN_SLICE_BYTES = 4 << 10
_MAX_SLICE_BYTES = 1 << 20

_BANDWIDTH_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]i?)?b?(?:/s)?", re.IGNORECASE)
_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1 << 10,
    "mi": 1 << 20,
    "gi": 1 << 30,
}


@dataclass(frozen=True)
class WanConditions:
    """What a wide-area network adds to the emulator; 0 turns each one off.

    ``api_latency_s`` delays every API answer (the round trip plus Notion's own time);
    ``ttfb_s`` delays every file-host response before its first byte (S3's time to first
    byte); ``conn_bandwidth_bps`` caps each file-host TCP connection at that many bytes per
    second, each connection on its own, so N parallel connections carry N times as much (as
    S3 does per connection).
    """

    api_latency_s: float = 0.0
    ttfb_s: float = 0.0
    conn_bandwidth_bps: float = 0.0

    def __post_init__(self) -> None:
        for name in ("api_latency_s", "ttfb_s", "conn_bandwidth_bps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")

    @property
    def active(self) -> bool:
        return bool(self.api_latency_s or self.ttfb_s or self.conn_bandwidth_bps)


NO_WAN = WanConditions()
# The figures the benchmarks use for "over the internet": Notion answers a call in 100-300 ms;
# S3 answers a GET in tens of milliseconds and one connection carries a bounded rate.
NOTION_WAN = WanConditions(api_latency_s=0.150, ttfb_s=0.030, conn_bandwidth_bps=20e6)


@dataclass
class LinkConditions:
    """The file host's link, read afresh by every response: settable while serving."""

    ttfb_s: float = 0.0
    conn_bandwidth_bps: float = 0.0


def delay(seconds: float, stop: threading.Event | None = None) -> bool:
    """Wait ``seconds`` on the calling thread only (no lock is held, so concurrent requests
    overlap as on a real network); False if ``stop`` was set meanwhile."""
    if seconds <= 0:
        return stop is None or not stop.is_set()
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)


class Pacer:
    """Paces one connection's bytes to a rate, as a link of that rate would carry them.

    One per TCP connection: a connection's bytes leave no faster than its rate, whatever
    other connections do. Time the connection sat idle is not saved up for a burst.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._free_at_s = 0.0

    @staticmethod
    def slice_bytes(rate_bps: float, largest: int) -> int:
        """How much to send at a time at ``rate_bps`` (``largest`` when unpaced)."""
        if rate_bps <= 0:
            return largest
        wanted = int(rate_bps * _SLICE_S)
        # A slow link sends smaller slices, so no single wait grows long (stop stays prompt).
        floor = max(1, min(_MIN_SLICE_BYTES, int(rate_bps * 0.1)))
        return min(largest, _MAX_SLICE_BYTES, max(floor, wanted))

    def sent(self, count: int, rate_bps: float) -> None:
        """``count`` bytes were just written: wait until the link would have carried them.

        Waiting after a write (rather than before) leaves the first byte undelayed, so the
        time to first byte stays the host's own; the response ends within one slice of
        ``size / rate``.
        """
        if rate_bps <= 0 or count <= 0:
            return
        now_s = self._clock()
        start_s = max(now_s, self._free_at_s)
        self._free_at_s = start_s + count / rate_bps
        wait_s = self._free_at_s - now_s
        if wait_s > 0:
            self._sleep(wait_s)


def parse_bandwidth(text: str) -> float:
    """Bytes per second from "20M", "20MB/s", "2.5Mi", "800k" or "0" (decimal k, M, G as
    in MB/s; Ki, Mi, Gi binary)."""
    match = _BANDWIDTH_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a bandwidth: {text!r} (e.g. 20M for 20 MB/s, 0 for no cap)")
    number, unit = match.groups()
    return float(number) * _UNITS[(unit or "").lower()]


def format_bandwidth(bps: float) -> str:
    """The inverse of parse_bandwidth for the banner: "20 MB/s", "off"."""
    if bps <= 0:
        return "off"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} B/s"
