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
        Row("  the thinnest Python FUSE file: one ranged stream, a read = a receive", "MB/s",
            "thin_seq_mbps", "curl_mbps"),
        Row("    its CPU per GiB read", "s", "thin_seq_cpu_s_per_gib", digits=2),
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


def upload_rows(sizes: dict[str, int]) -> list[Row]:
    """Saving into the mount (`cp`, until it returns) vs a direct upload of the same bytes
    with curl (create, parts in flight, complete, append), to the same emulator."""
    rows = []
    for key, size in sizes.items():
        mode = "single_part" if size <= 20_000_000 else "multi_part"
        rows += [
            Row(f"Save of {size >> 20} MiB into a page folder (cp; {mode})", "MB/s",
                f"upload_{key}_cp_mbps", f"upload_{key}_curl_mbps", target=">= 0.5 x curl",
                check=_ratio_at_least(f"upload_{key}_cp_mbps", f"upload_{key}_curl_mbps",
                                      0.5)),
            Row("  API calls per save", "", f"upload_{key}_calls"),
        ]
    return rows


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
    pair = _both(results, "seq_cold_mbps", "thin_seq_mbps")
    if pair:
        thin = _both(results, "thin_seq_mbps", "curl_mbps")
        share = f"; that file reads at {thin[0] / thin[1]:.2f} x curl" if thin else ""
        out.append(f"Against the thinnest Python FUSE file over the same binding: "
                   f"{pair[0] / pair[1]:.2f} x ({pair[0]:,.0f} vs {pair[1]:,.0f} MB/s{share}).")
    pair = _both(results, "seq_cold_mbps", "rclone_seq_mbps")
    if pair:
        out.append(f"Against rclone mount: {pair[0] / pair[1]:.2f} x on sequential reads.")
    pair = _both(results, "rand_iops", "rclone_rand_iops")
    if pair:
        out.append(f"Random 256 KiB reads: {pair[0] / pair[1]:.2f} x rclone's request rate.")
    for key in ("small", "big"):
        pair = _both(results, f"upload_{key}_cp_mbps", f"upload_{key}_curl_mbps")
        if pair:
            out.append(f"Saving a {key} file into the mount: {pair[0] / pair[1]:.2f} x a direct "
                       f"upload with curl ({pair[0]:,.0f} vs {pair[1]:,.0f} MB/s).")
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


# ---- the WAN section -----------------------------------------------------------------------


@dataclass(frozen=True)
class WanSetup:
    """The network the WAN section ran over, and how the browse was paced."""

    api_latency_s: float
    ttfb_s: float
    conn_bandwidth_bps: float
    rate_limit_rps: float
    rate_limit_burst: int
    big_mib: int = 64
    browse_folders: int = 10
    browse_pause_s: float = 3.0
    parallel_ranges: tuple[int, ...] = (4, 8)


# The best possible figure for a row: (value, how it is made), or None when unknown.
Bound = Callable[[Results], tuple[float, str] | None]


@dataclass(frozen=True)
class WanRow:
    """One line of the WAN table: the measured median beside the best possible (``bound``)
    and, for calls, the floor even a full burst cannot beat (``floor``)."""

    label: str
    unit: str
    key: str
    bound: Bound | None = None
    target: str = ""
    check: Check | None = None
    digits: int = 2
    floor: Bound | None = None


def _calls_bound(setup: WanSetup, calls_key: str, first_byte: bool = False) -> Bound:
    """Calls at Notion's average rate, plus the one latency nothing can hide (and, where a
    file's byte is read, one time to first byte)."""
    def bound(results: Results) -> tuple[float, str] | None:
        calls = results.median(calls_key)
        if calls is None:
            return None
        seconds = calls / setup.rate_limit_rps + setup.api_latency_s
        how = (f"{round(calls, 1):g} calls / {setup.rate_limit_rps:g} per s + "
               f"{setup.api_latency_s * 1e3:g} ms")
        if first_byte:
            seconds += setup.ttfb_s
            how += f" + {setup.ttfb_s * 1e3:g} ms to first byte"
        return seconds, how

    return bound


def _burst_floor(setup: WanSetup, calls_key: str, first_byte: bool = False) -> Bound:
    """What no client making these calls can beat: Notion lets a full burst through at
    once, the rest at its average rate, and the last answer takes one latency. (Dependent
    calls cost a latency each, but search names every page's parent, so how many must wait
    for one another depends on the client: not counted.)"""
    def floor(results: Results) -> tuple[float, str] | None:
        calls = results.median(calls_key)
        if calls is None:
            return None
        queued = max(0.0, calls - setup.rate_limit_burst)
        seconds = queued / setup.rate_limit_rps + setup.api_latency_s
        return seconds + (setup.ttfb_s if first_byte else 0.0), ""

    return floor


def _link_bound(setup: WanSetup, streams: int | str) -> Bound:
    """The most ``streams`` connections carry: each its own cap, after one time to first
    byte. ``streams`` may name a key holding the measured number of parallel requests."""
    def bound(results: Results) -> tuple[float, str] | None:
        n = results.median(streams) if isinstance(streams, str) else float(streams)
        if not n or setup.conn_bandwidth_bps <= 0:
            return None
        size = setup.big_mib * (1 << 20)
        seconds = size / (n * setup.conn_bandwidth_bps) + setup.ttfb_s
        how = (f"{n:g} x {setup.conn_bandwidth_bps / 1e6:g} MB/s + "
               f"{setup.ttfb_s * 1e3:g} ms to first byte")
        return size / seconds / 1e6, how

    return bound


def _within_bound(key: str, bound: Bound, factor: float) -> Check:
    def check(results: Results) -> bool | None:
        value, best = results.median(key), bound(results)
        return None if value is None or best is None else value <= factor * best[0]

    return check


def _label_count(results: Results, key: str) -> str:
    value = results.median(key)
    return "n/a" if value is None else f"{value:g}"


def wan_rows(results: Results, setup: WanSetup) -> list[WanRow]:
    deep_bound = _calls_bound(setup, "wan_deep_calls", first_byte=True)
    first_bound = _calls_bound(setup, "wan_browse_first_calls")
    rest = setup.browse_folders - 1
    rows = [
        WanRow("Double-click a file six folders deep, nothing listed yet", "s", "wan_deep_s",
               deep_bound, "<= 1.2 x best", _within_bound("wan_deep_s", deep_bound, 1.2),
               floor=_burst_floor(setup, "wan_deep_calls", first_byte=True)),
        WanRow("  API calls", "", "wan_deep_calls", digits=0),
        WanRow(f"Open a page folder of {_label_count(results, 'wan_nested_entries')} entries "
               f"with {_label_count(results, 'wan_nested_containers')} toggles, columns and "
               "callouts inside", "s", "wan_nested_s",
               _calls_bound(setup, "wan_nested_calls"),
               floor=_burst_floor(setup, "wan_nested_calls")),
        WanRow("  API calls", "", "wan_nested_calls", digits=0),
        WanRow(f"Browse: {setup.browse_folders} folders in turn, {setup.browse_pause_s:g} s "
               "on each; the first", "s", "wan_browse_first_s", first_bound, "<= best",
               _within_bound("wan_browse_first_s", first_bound, 1.0),
               floor=_burst_floor(setup, "wan_browse_first_calls")),
        WanRow("  API calls", "", "wan_browse_first_calls", digits=0),
        WanRow(f"  the other {rest}, median", "s", "wan_browse_rest_s",
               lambda r: (0.0, "answered from memory"), "<= 0.1",
               _at_most("wan_browse_rest_s", 0.1)),
        WanRow(f"  API calls a folder open waits on, median of the other {rest}", "",
               "wan_browse_wait_calls", digits=0),
        WanRow("  API calls per folder, background included", "",
               "wan_browse_calls_per_folder", digits=1),
        WanRow(f"Sequential read of a {setup.big_mib} MiB file, cold", "MB/s", "wan_seq_mbps",
               _link_bound(setup, "wan_seq_peak"), ">= 4 x one curl stream",
               _ratio_at_least("wan_seq_mbps", "wan_curl1_mbps", 4.0), digits=1),
        WanRow("  most requests in flight on the file host", "", "wan_seq_peak", digits=0),
        WanRow("  curl, one stream", "MB/s", "wan_curl1_mbps", _link_bound(setup, 1),
               digits=1),
        *[WanRow(f"  curl, {n} ranged requests at once", "MB/s", f"wan_curl{n}_mbps",
                 _link_bound(setup, n), digits=1) for n in setup.parallel_ranges],
        WanRow(f"find + stat of the demo ({_label_count(results, 'wan_find_entries')} entries)"
               ", fresh mount", "s", "wan_find_cold_s", _calls_bound(setup, "wan_find_cold_calls"),
               floor=_burst_floor(setup, "wan_find_cold_calls")),
        WanRow("  API calls", "", "wan_find_cold_calls", digits=0),
        WanRow("  the same on a remount, from the metadata cache", "s", "wan_find_warm_s",
               target="<= 1 s", check=_at_most("wan_find_warm_s", 1.0)),
        WanRow("  API calls (users/me and the change feed's first poll)", "",
               "wan_find_warm_calls", target="a few", check=_at_most("wan_find_warm_calls", 4),
               digits=0),
        WanRow("Save 5 images of 200 KB in a row with cp into a page folder, then ls", "s",
               "wan_saves_s", _calls_bound(setup, "wan_saves_calls"),
               floor=_burst_floor(setup, "wan_saves_calls")),
        WanRow("  API calls (3 a save: create, send, append; re-lists come after)", "",
               "wan_saves_calls", digits=0),
        WanRow("429 answers from the emulator, whole WAN run", "", "wan_429", target="0",
               check=_at_most("wan_429", 0), digits=0),
    ]
    return rows


def wan_table(results: Results, setup: WanSetup) -> str:
    """The WAN table: medians beside the best possible, targets checked."""
    lines = [
        "| What a person does | unit | notionfs | best possible | best possible from | "
        "floor with a full burst | target | met |",
        "|---|---|--:|--:|---|--:|---|---|",
    ]
    for row in wan_rows(results, setup):
        if row.key not in results.samples:
            continue
        best = row.bound(results) if row.bound else None
        floor = row.floor(results) if row.floor else None
        verdict = row.check(results) if row.check else None
        cells = [
            row.label, row.unit, _cell(results, row.key, row.digits),
            "" if best is None else f"{best[0]:,.{row.digits}f}", "" if best is None else best[1],
            "" if floor is None else f"{floor[0]:,.{row.digits}f}",
            row.target, "" if verdict is None else ("yes" if verdict else "**no**"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wan_method(setup: WanSetup, runs: int) -> str:
    """How the WAN table was made, in one paragraph."""
    rest_s = setup.rate_limit_burst / setup.rate_limit_rps
    sentences = [
        f"The emulator answers every API call after {setup.api_latency_s * 1e3:g} ms, allows "
        f"Notion's {setup.rate_limit_rps:g} calls/s (bursts of {setup.rate_limit_burst}, as "
        f"it models Notion), starts every file response after {setup.ttfb_s * 1e3:g} ms and "
        f"paces each file connection to {setup.conn_bandwidth_bps / 1e6:g} MB/s; notionfs "
        "mounts with its defaults (its own limiter at Notion's rate).",
        f"Each row is the median of {runs} run{'s' if runs != 1 else ''} (the browse at most "
        f"3), each on a fresh mount made after {rest_s:.1f} s idle (Notion's bucket full "
        "again).",
        "API calls are the emulator's counts during the action, background work included.",
        "Best possible: for a listing, its calls at the average rate plus one latency (the "
        "targets are judged against it); for a stream, its connections' caps plus one time "
        "to first byte.",
        f"A fresh mount starts with Notion's burst of {setup.rate_limit_burst} calls unspent, "
        "so an action can beat its calls at the average rate; the floor with a full burst is "
        "what even that cannot beat with the same calls (those past the burst at the average "
        "rate, plus one latency).",
        "The file six folders deep sits below the demo's deepest page, in pages added there, "
        "each in a toggle.",
        "The page folder is the demo page with the most nested containers, its parents "
        "listed first.",
        "The browse opens folders depth first by name from the root, at most three deep, and "
        "waits between them.",
        f"The sequential read is `dd bs=1M` of the demo's {setup.big_mib} MiB file with the "
        "page cache dropped, its path listed first; curl fetches the same signed URL whole, "
        "or in equal ranges at once.",
    ]
    return " ".join(sentences)


def wan_ratios(results: Results, setup: WanSetup) -> list[str]:
    """The stream's headline ratios, as sentences."""
    seq = results.median("wan_seq_mbps")
    if seq is None:
        return []
    parts = []
    for key, what in [("wan_curl1_mbps", "one curl stream"),
                      *[(f"wan_curl{n}_mbps", f"curl with {n} ranges")
                        for n in setup.parallel_ranges]]:
        other = results.median(key)
        if other:
            parts.append(f"{seq / other:.2f} x {what}")
    peak = results.median("wan_seq_peak")
    tail = f", with up to {peak:g} requests in flight" if peak is not None else ""
    return [f"Over the WAN, notionfs reads the {setup.big_mib} MiB file at {seq:,.1f} MB/s"
            f"{tail}: " + ", ".join(parts) + "."] if parts else []
