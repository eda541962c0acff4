"""Results, the table (medians side by side, targets checked) and BENCHMARKS.md."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

# Everything after this line in BENCHMARKS.md is hand-written and kept by the bench.
HAND_WRITTEN_MARKER = "<!-- Hand-written below this line; scripts/bench keeps it as it is. -->"


@dataclass
class Results:
    """Samples per measurement key, one per run, in the order taken."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(float(value))

    def median(self, key: str) -> float | None:
        values = self.samples.get(key)
        return statistics.median(values) if values else None


Check = Callable[["Results"], bool | None]


@dataclass(frozen=True)
class Row:
    """One line of the table: where each column's samples live, and the target."""

    label: str
    unit: str
    notionfs: str
    curl: str | None = None
    httpx: str | None = None
    rclone: str | None = None
    target: str = ""
    check: Check | None = None
    digits: int = 0


def _both(results: Results, a: str, b: str) -> tuple[float, float] | None:
    x, y = results.median(a), results.median(b)
    return None if x is None or y is None else (x, y)


def _at_least(key: str, floor: float) -> Check:
    def check(results: Results) -> bool | None:
        value = results.median(key)
        return None if value is None else value >= floor

    return check


def _at_most(key: str, ceiling: float) -> Check:
    def check(results: Results) -> bool | None:
        value = results.median(key)
        return None if value is None else value <= ceiling

    return check


def _ratio_at_least(key: str, other: str, floor: float) -> Check:
    def check(results: Results) -> bool | None:
        pair = _both(results, key, other)
        return None if pair is None else pair[0] >= floor * pair[1]

    return check


def _within(key: str, other: str, slack: float) -> Check:
    def check(results: Results) -> bool | None:
        pair = _both(results, key, other)
        return None if pair is None else pair[0] <= pair[1] + slack

    return check


def _beats(key: str, other: str, higher_is_better: bool) -> Check:
    def check(results: Results) -> bool | None:
        pair = _both(results, key, other)
        if pair is None:
            return None
        return pair[0] > pair[1] if higher_is_better else pair[0] < pair[1]

    return check


def _ls_calls(entries: int) -> Check:
    def check(results: Results) -> bool | None:
        calls = results.median("ls_cold_listing_calls")
        return None if calls is None else calls <= math.ceil(entries / 100)

    return check


def _rss_bound(key: str, cache_mib: float) -> Check:
    return _at_most(key, cache_mib + 100)


def rows(
    cache_mib: float, flat_entries: int, big_mib: int, small_cache_mib: int = 64
) -> list[Row]:
    return [
        Row(f"Cold sequential read, {big_mib} MiB", "MB/s", "seq_cold_mbps", "curl_mbps",
            "httpx_mbps", "rclone_seq_mbps", ">= 0.85 x curl; > rclone",
            lambda r: _and(_ratio_at_least("seq_cold_mbps", "curl_mbps", 0.85)(r),
                           _beats("seq_cold_mbps", "rclone_seq_mbps", True)(r))),
        Row("  same, through notionfs's HTTP transport alone", "MB/s", "lean_mbps"),
        Row("  mount CPU per GiB read (cold)", "s", "seq_cpu_s_per_gib", digits=2),
        Row("Warm re-read (kernel page cache)", "MB/s", "seq_warm_mbps", target=">= 1000",
            check=_at_least("seq_warm_mbps", 1000)),
        Row("First byte of uncached data, 1 MiB file", "ms", "ttfb_uncached_ms", "curl_ttfb_ms",
            "httpx_ttfb_ms", target="<= curl + 10 ms",
            check=_within("ttfb_uncached_ms", "curl_ttfb_ms", 10.0), digits=1),
        Row("  first byte of the head (brought by the listing's probe)", "ms", "ttfb_head_ms",
            digits=2),
        Row("  first byte, fresh mount, path never listed (2 listings + probe)", "ms",
            "ttfb_walk_ms", "curl_ttfb_ms", "httpx_ttfb_ms", target="<= curl + 10 ms",
            check=_within("ttfb_walk_ms", "curl_ttfb_ms", 10.0), digits=1),
        Row("Random 256 KiB reads (fio, 1 job)", "req/s", "rand_iops",
            rclone="rclone_rand_iops", target="> rclone",
            check=_beats("rand_iops", "rclone_rand_iops", True)),
        Row("  bytes fetched per byte read", "x", "rand_waste", rclone="rclone_rand_waste",
            target="<= 2", check=_at_most("rand_waste", 2.0), digits=2),
        Row(f"ls -l of {flat_entries} files, cold", "ms", "ls_cold_ms"),
        Row("  listing calls (block children)", "", "ls_cold_listing_calls",
            target=f"<= {math.ceil(flat_entries / 100)}", check=_ls_calls(flat_entries)),
        Row("  all API calls", "", "ls_cold_api_calls"),
        Row("  file host requests (size probes, in parallel)", "", "ls_cold_file_requests"),
        Row("  the host alone answering those probes, 16 at a time", "ms", "host_probes_ms"),
        Row(f"ls -l of {flat_entries} files, warm", "ms", "ls_warm_ms", target="<= 50",
            check=_at_most("ls_warm_ms", 50.0), digits=1),
        Row("  API calls", "", "ls_warm_api_calls", target="0",
            check=_at_most("ls_warm_api_calls", 0)),
        Row("find + stat, demo workspace, cold", "ms", "find_cold_ms"),
        Row("  entries", "", "find_entries"),
        Row("  API calls", "", "find_api_calls"),
        Row("  file host requests", "", "find_file_requests"),
        Row("find + stat, demo workspace, warm", "ms", "find_warm_ms", digits=1),
        Row("Peak RSS, sequential read", "MiB", "seq_rss_mib", rclone="rclone_seq_rss_mib",
            target=f"<= {cache_mib:g} + 100", check=_rss_bound("seq_rss_mib", cache_mib)),
        Row("Peak RSS, random reads", "MiB", "rand_rss_mib", rclone="rclone_rand_rss_mib",
            target=f"<= {cache_mib:g} + 100", check=_rss_bound("rand_rss_mib", cache_mib)),
        Row(f"Peak RSS, sequential read, --cache-size {small_cache_mib}M", "MiB",
            "seq_small_cache_rss_mib", target=f"<= {small_cache_mib} + 100",
            check=_rss_bound("seq_small_cache_rss_mib", small_cache_mib)),
        Row(f"  throughput with --cache-size {small_cache_mib}M", "MB/s", "seq_small_cache_mbps"),
    ]


def _and(*checks: bool | None) -> bool | None:
    known = [c for c in checks if c is not None]
    return all(known) if known else None


def _cell(results: Results, key: str | None, digits: int) -> str:
    if key is None:
        return ""
    value = results.median(key)
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table(results: Results, table_rows: list[Row]) -> str:
    """The Markdown table: medians; a target met is "yes", missed "**no**"."""
    lines = [
        "| Measurement | unit | notionfs | curl | httpx | rclone mount | target | met |",
        "|---|---|--:|--:|--:|--:|---|---|",
    ]
    for row in table_rows:
        if results.median(row.notionfs) is None and row.notionfs not in results.samples:
            continue
        verdict = row.check(results) if row.check else None
        met = "" if verdict is None else ("yes" if verdict else "**no**")
        cells = [
            row.label, row.unit, _cell(results, row.notionfs, row.digits),
            _cell(results, row.curl, row.digits), _cell(results, row.httpx, row.digits),
            _cell(results, row.rclone, row.digits), row.target, met,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results: Results) -> list[str]:
    """The headline ratios, as sentences."""
    out = []
    pair = _both(results, "seq_cold_mbps", "curl_mbps")
    if pair:
        out.append(f"Cold sequential through the mount is {pair[0] / pair[1]:.2f} x curl "
                   f"({pair[0]:,.0f} vs {pair[1]:,.0f} MB/s).")
    pair = _both(results, "seq_cold_mbps", "rclone_seq_mbps")
    if pair:
        out.append(f"Against rclone mount: {pair[0] / pair[1]:.2f} x on sequential reads.")
    pair = _both(results, "rand_iops", "rclone_rand_iops")
    if pair:
        out.append(f"Random 256 KiB reads: {pair[0] / pair[1]:.2f} x rclone's request rate.")
    return out


def samples_section(results: Results) -> str:
    lines = ["| key | samples |", "|---|---|"]
    for key in sorted(results.samples):
        values = ", ".join(f"{v:,.4g}" for v in results.samples[key])
        lines.append(f"| {key} | {values} |")
    return "\n".join(lines)


def document(generated: str, previous: str | None) -> str:
    """BENCHMARKS.md: the generated part, then the hand-written part of the previous file."""
    kept = ""
    if previous and HAND_WRITTEN_MARKER in previous:
        kept = previous.split(HAND_WRITTEN_MARKER, 1)[1]
    return f"{generated.rstrip()}\n\n{HAND_WRITTEN_MARKER}{kept or chr(10)}"
