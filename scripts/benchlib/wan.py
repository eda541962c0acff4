"""The WAN section: a person's first visits and a big read at Notion's latency and rate."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notionfs.emulator.wan import NOTION_WAN, WanConditions

from .measure import curl, dd_seconds, mbps
from .procs import EmulatorProcess, Mount, drop_caches, mount_notionfs, warm
from .report import Results

# Notion's published average; the burst is the emulator's model of it (and notionfs's own).
NOTION_RPS = 3.0
NOTION_BURST = 10


@dataclass(frozen=True)
class WanPlan:
    """What the WAN section runs, and the network it runs over."""

    runs: int
    work_dir: Path
    conditions: WanConditions = NOTION_WAN
    rate_limit_rps: float = NOTION_RPS
    rate_limit_burst: int = NOTION_BURST
    browse_folders: int = 10
    browse_pause_s: float = 3.0
    browse_max_depth: int = 3  # folders below the root a browse goes into
    parallel_ranges: tuple[int, ...] = (4, 8)
    cache_size: str = "256M"

    @property
    def rest_s(self) -> float:
        """Idle time after which Notion's bucket is full again."""
        return self.rate_limit_burst / self.rate_limit_rps


class _Counts:
    """Emulator counters read as differences (never reset: 429s are counted for the run)."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self._emulator = emulator
        self._last = emulator.stats()

    def take(self) -> dict[str, Any]:
        now = self._emulator.stats()
        before = self._last["api_by_route"]
        routes = {route: n - before.get(route, 0) for route, n in now["api_by_route"].items()}
        delta = {"api_calls": now["api_calls"] - self._last["api_calls"],
                 "routes": {route: n for route, n in routes.items() if n}}
        self._last = now
        return delta


def _breakdown(progress: Callable[[str], None], what: str, delta: dict[str, Any]) -> None:
    """Which routes an action's calls went to (to stderr: where the budget goes)."""
    routes = ", ".join(f"{route} {n}" for route, n in sorted(delta["routes"].items()))
    progress(f"    {what}: {delta['api_calls']} calls ({routes})")


def run_wan(results: Results, plan: WanPlan, data_dir: Path,
            progress: Callable[[str], None]) -> None:
    """Every WAN measurement against one emulator serving the demo at WAN conditions."""
    wan = plan.conditions
    options: dict[str, float] = {
        "rate_limit": plan.rate_limit_rps,
        "api_latency_ms": wan.api_latency_s * 1e3,
        "ttfb_ms": wan.ttfb_s * 1e3,
        "conn_bandwidth": wan.conn_bandwidth_bps,
    }
    with EmulatorProcess("wan", data_dir, **options) as emulator:
        targets = emulator.info["targets"]
        for name, step in (("deep path", deep_path), ("nested folder", nested_folder),
                           ("browse", browse), ("sequential", sequential),
                           ("remount", remount), ("saves", saves)):
            progress(f"  {name}")
            step(results, emulator, plan, targets, progress)
        statuses = emulator.stats()["api_by_status"]
        results.add("wan_429", statuses.get("429", 0))


def _mount(emulator: EmulatorProcess, plan: WanPlan, name: str,
           metadata_cache: Path | None = None) -> Mount:
    """A fresh mount at notionfs's own rate limit (Notion's), after Notion's bucket refilled
    (as after a pause; the previous mount's calls must not count against this one)."""
    time.sleep(plan.rest_s)
    return mount_notionfs(emulator, plan.work_dir / "mnt", plan.work_dir / f"notionfs-{name}.log",
                          cache_size=plan.cache_size, rate_limit=None,
                          metadata_cache=metadata_cache)


def _find_stat(root: Path) -> int:
    """``find`` + ``stat``: every entry under ``root``, its attributes read; how many."""
    count = 0
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.stat(os.path.join(folder, name))
            count += 1
    return count


def remount(results: Results, emulator: EmulatorProcess, plan: WanPlan,
            targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """The whole demo walked (find + stat) on a fresh mount, then again on a remount served
    from the on-disk metadata cache, nothing changed meanwhile. One run: the cold walk alone
    costs every listing at Notion's rate."""
    cache = plan.work_dir / "metadata-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for when in ("cold", "warm"):
        with _mount(emulator, plan, f"wan-remount-{when}", metadata_cache=cache) as mount:
            counts = _Counts(emulator)
            started = time.perf_counter()
            entries = _find_stat(mount.path)
            results.add(f"wan_find_{when}_s", time.perf_counter() - started)
            delta = counts.take()
            results.add(f"wan_find_{when}_calls", delta["api_calls"])
            results.add("wan_find_entries", entries)
            _breakdown(progress, f"find + stat, {when}", delta)
    shutil.rmtree(cache, ignore_errors=True)


def _under(mount: Mount, titles: list[str]) -> Path:
    return mount.path.joinpath(*titles)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _ls(path: Path) -> None:
    subprocess.run(["ls", "-l", str(path)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _first_byte(path: Path) -> None:
    """What a double-click does first: open the file and read its head."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if not os.pread(fd, 1, 0):
            raise RuntimeError(f"{path} read nothing")
    finally:
        os.close(fd)


SAVES = 5


def saves(results: Results, emulator: EmulatorProcess, plan: WanPlan,
          targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """Five 200 KB images saved in a row with ``cp`` into the demo's first page folder (a
    drag of several files), then ``ls``: the saves' own calls, and whatever listing a save
    makes the next one wait on."""
    source = plan.work_dir / "photo.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000))
    for run in range(plan.runs):
        with _mount(emulator, plan, f"wan-saves{run}") as mount:
            folder = _under(mount, targets["save_folder"])
            os.listdir(folder)  # listed before the clock starts, as a drag finds it
            (folder / "warm-up.txt").write_bytes(b"first save asks the upload limit\n")
            time.sleep(plan.rest_s)  # Notion's bucket full again
            counts = _Counts(emulator)

            def save_all(folder: Path = folder, run: int = run) -> None:
                for i in range(SAVES):
                    subprocess.run(["cp", str(source), str(folder / f"photo-{run}-{i}.png")],
                                   check=True)
                os.listdir(folder)

            results.add("wan_saves_s", _timed(save_all))
            delta = counts.take()
            results.add("wan_saves_calls", delta["api_calls"])
            _breakdown(progress, f"{SAVES} saves + ls", delta)


def deep_path(results: Results, emulator: EmulatorProcess, plan: WanPlan,
              targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """Open a file six folders deep on a fresh mount, nothing listed: every folder on the
    way is listed for the first time."""
    for run in range(plan.runs):
        with _mount(emulator, plan, f"wan-deep{run}") as mount:
            path = _under(mount, targets["deep_file"])
            counts = _Counts(emulator)
            results.add("wan_deep_s", _timed(lambda p=path: _first_byte(p)))
            delta = counts.take()
            results.add("wan_deep_calls", delta["api_calls"])
            _breakdown(progress, "/".join(targets["deep_file"]), delta)


def nested_folder(results: Results, emulator: EmulatorProcess, plan: WanPlan,
                  targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """``ls -l`` of the demo page with the most nested containers, its parents listed."""
    results.add("wan_nested_containers", targets["nested_containers"])
    for run in range(plan.runs):
        with _mount(emulator, plan, f"wan-nested{run}") as mount:
            folder = _under(mount, targets["nested_page"])
            os.stat(folder)  # the way there: the parents are listed, the folder is not
            counts = _Counts(emulator)
            results.add("wan_nested_s", _timed(lambda f=folder: _ls(f)))
            delta = counts.take()
            results.add("wan_nested_calls", delta["api_calls"])
            _breakdown(progress, "/".join(targets["nested_page"]), delta)
            results.add("wan_nested_entries", len(os.listdir(folder)))


def browse_order(start: Path, listed: Callable[[Path], list[Path]], count: int,
                 max_depth: int) -> list[Path]:
    """Folders in the order a person opening each in turn would: depth first, by name, at
    most ``max_depth`` below ``start``. ``listed(folder)`` opens a folder and returns its
    subfolders; it is called once per folder, in the order returned."""
    order: list[Path] = []
    stack = [(start, 0)]
    while stack and len(order) < count:
        folder, depth = stack.pop()
        order.append(folder)
        children = listed(folder)
        if depth < max_depth:
            stack.extend((child, depth + 1) for child in sorted(children, reverse=True))
    return order


def browse(results: Results, emulator: EmulatorProcess, plan: WanPlan,
           targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """Ten folders opened in turn on a fresh mount (``ls -l`` each), a few seconds apart."""
    for run in range(min(plan.runs, 3)):
        with _mount(emulator, plan, f"wan-browse{run}") as mount:
            counts = _Counts(emulator)
            opened = _browse_once(emulator, plan, mount.path, progress)
            delta = counts.take()
            total_calls = delta["api_calls"]
            _breakdown(progress, "the whole browse", delta)
        (first_s, first_calls), rest = opened[0], opened[1:]
        results.add("wan_browse_first_s", first_s)
        results.add("wan_browse_first_calls", first_calls)
        for seconds, calls in rest:
            results.add("wan_browse_rest_s", seconds)
            results.add("wan_browse_wait_calls", calls)
        results.add("wan_browse_calls_per_folder", total_calls / len(opened))


def _browse_once(emulator: EmulatorProcess, plan: WanPlan, root: Path,
                 progress: Callable[[str], None]) -> list[tuple[float, int]]:
    """(seconds, API calls) of each folder open, in the order opened."""
    opened: list[tuple[float, int]] = []

    def open_folder(folder: Path) -> list[Path]:
        counts = _Counts(emulator)
        seconds = _timed(lambda: _ls(folder))
        delta = counts.take()
        opened.append((seconds, delta["api_calls"]))
        _breakdown(progress, f"{seconds:.2f} s /{folder.relative_to(root)}", delta)
        # Listed just now: naming its subfolders asks nothing more.
        subfolders = [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir()]
        time.sleep(plan.browse_pause_s)  # the person looks at it
        return subfolders

    browse_order(root, open_folder, plan.browse_folders, plan.browse_max_depth)
    return opened


def sequential(results: Results, emulator: EmulatorProcess, plan: WanPlan,
               targets: dict[str, Any], progress: Callable[[str], None]) -> None:
    """The demo's 64 MiB file read with ``dd`` through a fresh mount, page cache dropped;
    then the same bytes with curl: one stream, and N ranged requests at once."""
    size = int(targets["big_size"])
    source = Path(targets["big_source"])
    name = targets["big_file"][-1]
    for run in range(plan.runs):
        with _mount(emulator, plan, f"wan-seq{run}") as mount:
            path = _under(mount, targets["big_file"])
            os.stat(path)  # the way there is listed and the size probed: not timed
            drop_caches()
            warm(source)
            emulator.command("reset-peak")
            results.add("wan_seq_mbps", mbps(size, dd_seconds(path)))
            results.add("wan_seq_peak", emulator.stats()["file_peak_in_flight"])
        url = emulator.command(f"sign {name}")["url"]
        _, total_s, got = curl(url)
        assert got == size, f"curl fetched {got} of {size} bytes"
        results.add("wan_curl1_mbps", mbps(size, total_s))
        for streams in plan.parallel_ranges:
            results.add(f"wan_curl{streams}_mbps", mbps(size, curl_ranges(url, size, streams)))


def curl_ranges(url: str, size: int, streams: int) -> float:
    """Seconds for ``streams`` curl processes at once, each fetching its share by Range."""
    share = -(-size // streams)
    procs = []
    start = time.perf_counter()
    for first in range(0, size, share):
        last = min(size, first + share) - 1
        procs.append(subprocess.Popen(
            ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{size_download}",
             "-r", f"{first}-{last}", url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    fetched = [int(proc.communicate()[0] or 0) for proc in procs]
    seconds = time.perf_counter() - start
    if any(proc.returncode for proc in procs) or sum(fetched) != size:
        raise RuntimeError(f"curl with {streams} ranges fetched {sum(fetched)} of {size} bytes")
    return seconds
