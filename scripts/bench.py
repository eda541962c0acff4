"""notionfs benchmarks side by side with curl, httpx and rclone mount; writes BENCHMARKS.md.

Run through ``scripts/bench`` (it installs fio, rclone and curl first). The emulator runs in
its own process; every figure is the median of ``--runs`` runs, each on a fresh mount. The
WAN section runs the emulator at Notion's latency and rate and S3's per-connection bandwidth.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import report  # noqa: E402
from benchlib.report import Results, WanSetup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "BENCHMARKS.md"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "notionfs" / "bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a quick smoke: one run, a 64 MiB file, 300 entries")
    parser.add_argument("--dry-run", action="store_true",
                        help="start nothing: format made-up results (checks the bench itself)")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 5, quick 1)")
    parser.add_argument("--out", type=Path, help=f"where to write (default {DEFAULT_OUT}; "
                        "--quick and --dry-run print only unless given)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="where the large test files are kept between runs")
    parser.add_argument("--only", action="append",
                        choices=["data", "flat", "demo", "upload", "wan"],
                        help="run only these workspaces' measurements (wan: the demo over a "
                        "WAN-like emulator)")
    parser.add_argument("--no-rclone", action="store_true", help="skip the rclone peer")
    return parser.parse_args(argv)


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return out.strip().splitlines()[0] if out.strip() else "absent"


def _dpkg_version(package: str) -> str:
    return _version(["dpkg-query", "-W", "-f=${Version}", package])


def _binding_used(version: Callable[[str], str]) -> str:
    """The binding and libfuse the mounts run on here (notionfs's ``auto`` choice)."""
    from notionfs.fusebind import auto_binding, libfuse_paths

    if auto_binding(libfuse_paths()) == "mfusepy":
        return f"mfusepy {version('mfusepy')} over libfuse {_dpkg_version('libfuse3-3')}"
    return f"fusepy {version('fusepy')} over libfuse {_dpkg_version('libfuse2')}"


def machine() -> list[str]:
    from importlib.metadata import version

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores, {memory_gib:.1f} GiB RAM; "
        f"{platform.system()} {platform.release()}",
        f"- Load average when the table was written: {load} (the machine is shared: other "
        "work runs beside the bench, so runs are interleaved and medians reported)",
        f"- Python {platform.python_version()}, {_binding_used(version)}, "
        f"httpx {version('httpx')}",
        f"- Peers: {_version(['curl', '--version']).split(' (')[0]}; "
        f"{_version(['rclone', 'version'])}; {_version(['fio', '--version'])}",
    ]


def fake_results(quick: bool) -> Results:
    """Made-up but plausible samples, to exercise formatting without mounting anything."""
    rng = random.Random(1)
    results = Results()
    centres = {
        "host_curl_mbps": 1500, "seq_cold_mbps": 650, "seq_cpu_s_per_gib": 1.5,
        "seq_warm_mbps": 2200, "seq_rss_mib": 150, "curl_mbps": 1500, "httpx_mbps": 1000,
        "lean_mbps": 1600, "thin_seq_mbps": 700, "thin_seq_cpu_s_per_gib": 1.2,
        "rclone_seq_mbps": 500, "rclone_seq_rss_mib": 60,
        "ttfb_walk_ms": 9, "ttfb_uncached_ms": 1.2, "ttfb_head_ms": 0.2, "curl_ttfb_ms": 1.5,
        "httpx_ttfb_ms": 2.5, "rand_iops": 700, "rand_waste": 1.0, "rand_rss_mib": 90,
        "rclone_rand_iops": 400, "rclone_rand_waste": 30, "rclone_rand_rss_mib": 70,
        "ls_cold_ms": 900, "ls_cold_api_calls": 12, "ls_cold_listing_calls": 10,
        "ls_cold_file_requests": 1000, "ls_warm_ms": 20, "ls_warm_api_calls": 0,
        "find_cold_ms": 4000, "find_api_calls": 90, "find_file_requests": 80,
        "find_entries": 200, "find_warm_ms": 30,
        "wan_deep_s": 3.2, "wan_deep_calls": 17, "wan_nested_s": 4.1, "wan_nested_calls": 12,
        "wan_browse_first_s": 1.5, "wan_browse_first_calls": 3, "wan_browse_rest_s": 0.35,
        "wan_browse_wait_calls": 1, "wan_browse_calls_per_folder": 1.5, "wan_seq_mbps": 42,
        "wan_curl1_mbps": 19.5, "wan_curl4_mbps": 76, "wan_curl8_mbps": 150,
        "wan_find_cold_s": 80.0, "wan_find_cold_calls": 240, "wan_find_warm_s": 0.4,
        "wan_find_warm_calls": 2, "wan_saves_s": 3.6, "wan_saves_calls": 16,
        "upload_small_cp_mbps": 40, "upload_small_curl_mbps": 60, "upload_small_calls": 3,
        "upload_big_cp_mbps": 300, "upload_big_curl_mbps": 400, "upload_big_calls": 30,
    }
    for key, centre in centres.items():
        for _ in range(1 if quick else 5):
            value = centre * rng.uniform(0.9, 1.1)
            results.add(key, round(value) if key.endswith("_calls") else value)
    # Counts, not measurements: the same in every run.
    for key, count in (("wan_nested_entries", 11), ("wan_nested_containers", 6),
                       ("wan_seq_peak", 2), ("wan_429", 0), ("wan_find_entries", 280)):
        results.add(key, count)
    return results


def upload_sizes(quick: bool) -> dict[str, int]:
    """The saves the upload rows time: one small (single_part) and one large (multi_part)."""
    return {"small": 1 << 20, "big": (64 if quick else 256) << 20}


def wan_setup(quick: bool) -> WanSetup:
    """The WAN section's network and pacing (the same for a dry run)."""
    from benchlib.wan import NOTION_BURST, NOTION_RPS

    from notionfs.emulator.wan import NOTION_WAN

    return WanSetup(
        api_latency_s=NOTION_WAN.api_latency_s, ttfb_s=NOTION_WAN.ttfb_s,
        conn_bandwidth_bps=NOTION_WAN.conn_bandwidth_bps, rate_limit_rps=NOTION_RPS,
        rate_limit_burst=NOTION_BURST, big_mib=64, browse_folders=10,
        browse_pause_s=2.0 if quick else 3.0,
    )


def wan_section(results: Results, setup: WanSetup, runs: int) -> list[str]:
    """The WAN section's lines; none when nothing was measured over the WAN."""
    if not any(key.startswith("wan_") for key in results.samples):
        return []
    return [
        "## Over a WAN",
        "",
        report.wan_method(setup, runs),
        "",
        report.wan_table(results, setup),
        "",
        *[f"- {sentence}" for sentence in report.wan_ratios(results, setup)],
        "",
    ]


def generated_text(results: Results, args: argparse.Namespace, plan_text: str,
                   minutes: float, dry_run: bool) -> str:
    cache_mib = 256.0
    runs = args.runs
    today = datetime.date.today().isoformat()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `scripts/bench` on {today} in {minutes:.1f} minutes"
        + (" (dry run: made-up numbers)" if dry_run else "") + ". "
        f"Every figure is the median of {runs} run{'s' if runs != 1 else ''}, each on a fresh "
        "mount with the kernel's page cache dropped (the host's copy of the file is read back "
        "into memory first, so the host serves from RAM). The emulator runs in its own "
        "process; notionfs runs as `python -m notionfs mount --foreground --rate-limit 1000 "
        f"--cache-size 256M`. {plan_text}",
        "",
        "Rerun: `scripts/bench` (installs fio, rclone and curl, then about a minute here), "
        "`scripts/bench --quick` (one run of each on smaller inputs; prints, writes nothing), "
        "`scripts/bench --only data --runs 9`, `scripts/bench --quick --only wan` (the WAN "
        "section alone, about two minutes). Run it as root so the page cache can be dropped.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## The file host on its own",
        "",
        f"curl of the big file to /dev/null: {results.median('host_curl_mbps') or 0:,.0f} MB/s "
        "(median). The host sends with os.sendfile from the page cache.",
        "",
        "## Results",
        "",
        report.table(results, report.rows(cache_mib, args.flat_entries, args.big_mib)
                     + report.upload_rows(upload_sizes(args.quick))),
        "",
        *[f"- {sentence}" for sentence in report.ratios(results)],
        "",
        *wan_section(results, wan_setup(args.quick), runs),
        "<details><summary>All samples</summary>",
        "",
        report.samples_section(results),
        "",
        "</details>",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 5)
    args.big_mib = 64 if args.quick else 256
    args.flat_entries = 300 if args.quick else 1000
    plan_text = (f"Random reads: fio randread, 256 KiB blocks, "
                 f"{16 if args.quick else 64} MiB read per run.")
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    if args.dry_run:
        results = fake_results(args.quick)
    else:
        results = run(args, progress)
    text = generated_text(results, args, plan_text, (time.monotonic() - started) / 60,
                          args.dry_run)
    if any(not key.startswith("wan_") for key in results.samples):
        print(report.table(results, report.rows(256.0, args.flat_entries, args.big_mib)
                           + report.upload_rows(upload_sizes(args.quick))))
        for sentence in report.ratios(results):
            print(sentence)
    for line in wan_section(results, wan_setup(args.quick), args.runs)[2:]:
        print(line)
    out = args.out or (None if args.quick or args.dry_run else DEFAULT_OUT)
    if out is not None:
        previous = out.read_text(encoding="utf-8") if out.exists() else None
        out.write_text(report.document(text, previous), encoding="utf-8")
        progress(f"wrote {out}")
    return 0


def run(args: argparse.Namespace, progress: object) -> Results:
    from benchlib.measure import Plan, run_all

    only = set(args.only) if args.only else None
    tools = {"curl", "dd", "ls"}
    if only is None or only - {"wan"}:
        tools |= {"fio", "find"} | (set() if args.no_rclone else {"rclone"})
    for tool in sorted(tools):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not installed (scripts/bench installs it)")
    if os.geteuid() != 0:
        print("bench: not root, so the page cache cannot be dropped between runs; cold "
              "figures are then only as cold as a fresh mount makes them", file=sys.stderr)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="notionfs-bench-") as work:
        plan = Plan(
            runs=args.runs, work_dir=Path(work), big_mib=args.big_mib,
            flat_entries=args.flat_entries, random_io_mib=16 if args.quick else 64,
            rclone=not args.no_rclone,
        )
        run_all(results, plan, args.data_dir, only, progress)  # type: ignore[arg-type]
        if only is None or "upload" in only:
            from benchlib.measure import EmulatorProcess
            from benchlib.upload import uploads

            progress("saving into the mount vs uploading directly")  # type: ignore[operator]
            with EmulatorProcess("data", args.data_dir, big_mib=1) as data:
                uploads(results, data, Path(work), args.runs, upload_sizes(args.quick))
        if only is None or "wan" in only:
            from benchlib.wan import WanPlan, run_wan

            setup = wan_setup(args.quick)
            progress("demo workspace over a WAN-like emulator")  # type: ignore[operator]
            wan_plan = WanPlan(runs=args.runs, work_dir=Path(work),
                               browse_folders=setup.browse_folders,
                               browse_pause_s=setup.browse_pause_s)
            run_wan(results, wan_plan, args.data_dir, progress)  # type: ignore[arg-type]
    return results


if __name__ == "__main__":
    sys.exit(main())
