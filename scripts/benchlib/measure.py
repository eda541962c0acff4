"""The measurements: each appends one sample per run to a Results, mount and peer alike."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from notionfs.filetransport import FileHostTransport

from .procs import (
    EmulatorProcess,
    Mount,
    drop_caches,
    mount_notionfs,
    mount_rclone,
    mount_thinpipe,
    warm,
)
from .report import Results

MiB = 1 << 20
GiB = 1 << 30
KiB = 1024
SMALL_CACHE_MIB = 64


@dataclass(frozen=True)
class Plan:
    """What to run and how big."""

    runs: int
    work_dir: Path
    big_mib: int = 256
    flat_entries: int = 1000
    random_io_mib: int = 64
    cache_size: str = "256M"
    rclone: bool = True

    @property
    def big_bytes(self) -> int:
        return self.big_mib * MiB


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def dd_seconds(path: Path) -> float:
    """Seconds ``dd bs=1M`` takes to read ``path`` to /dev/null (a reader in its own process)."""
    return _timed(lambda: _run("dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"))


def mbps(size_bytes: int, seconds: float) -> float:
    return size_bytes / seconds / 1e6


# ---- direct downloads ------------------------------------------------------------------


def curl(url: str, byte_range: str | None = None) -> tuple[float, float, int]:
    """(seconds to first byte, total seconds, bytes) for one curl download to /dev/null."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer} %{time_total} "
               "%{size_download}", url]
    if byte_range:
        command[1:1] = ["-r", byte_range]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def httpx_stream(url: str, transport: httpx.BaseTransport | None = None,
                 headers: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(seconds to first chunk, total seconds, bytes) for one stream on a new connection
    (the client is made before the clock starts: loading CA certificates is not I/O)."""
    first = 0.0
    size = 0
    with httpx.Client(transport=transport, timeout=60) as client:
        start = time.perf_counter()
        with client.stream("GET", url, headers=headers or {}) as response:
            for chunk in response.iter_raw():
                if not size:
                    first = time.perf_counter() - start
                size += len(chunk)
    return first, time.perf_counter() - start, size


def host_alone(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    """How fast the host serves by itself: curl of the big file to /dev/null."""
    url = emulator.file("big.bin")["signed_url"]
    for _ in range(max(3, plan.runs)):
        _, total_s, size = curl(url)
        results.add("host_curl_mbps", mbps(size, total_s))


# ---- 1, 2, 7, 8: sequential --------------------------------------------------------------


def sequential(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    """Cold and warm reads through a fresh mount, interleaved with direct downloads and
    rclone so each run's figures share the machine's load of that moment."""
    big = emulator.file("big.bin")
    source = Path(big["path"])
    for run in range(plan.runs):
        with _notionfs(emulator, plan, f"seq{run}") as mount:
            path = mount.path / "Bench" / "big.bin"
            os.stat(path)
            seconds, cpu_s = _cold_read(mount, path, source)
            results.add("seq_cold_mbps", mbps(big["size"], seconds))
            results.add("seq_cpu_s_per_gib", cpu_s / (big["size"] / GiB))
            results.add("seq_warm_mbps", mbps(big["size"], dd_seconds(path)))
            results.add("seq_rss_mib", mount.peak_rss_bytes() / MiB)
        with mount_thinpipe(big["signed_url"], big["size"], plan.work_dir / "tmnt",
                            plan.work_dir / f"thinpipe-{run}.log") as mount:
            seconds, cpu_s = _cold_read(mount, mount.path / "big.bin", source)
            results.add("thin_seq_mbps", mbps(big["size"], seconds))
            results.add("thin_seq_cpu_s_per_gib", cpu_s / (big["size"] / GiB))
        _, total_s, size = curl(big["signed_url"])
        results.add("curl_mbps", mbps(size, total_s))
        _, total_s, size = httpx_stream(big["signed_url"])
        results.add("httpx_mbps", mbps(size, total_s))
        _, total_s, size = httpx_stream(big["signed_url"], FileHostTransport())
        results.add("lean_mbps", mbps(size, total_s))
        if plan.rclone:
            with _rclone(emulator, plan, f"rseq{run}") as mount:
                path = mount.path / "big.bin"
                os.stat(path)
                _cold(source)
                results.add("rclone_seq_mbps", mbps(big["size"], dd_seconds(path)))
                results.add("rclone_seq_rss_mib", mount.peak_rss_bytes() / MiB)
    # The bound is the cache's: a quarter of it gives a peak a quarter as high.
    small = replace(plan, cache_size=f"{SMALL_CACHE_MIB}M")
    with _notionfs(emulator, small, "seq-small-cache") as mount:
        path = mount.path / "Bench" / "big.bin"
        os.stat(path)
        _cold(source)
        results.add("seq_small_cache_mbps", mbps(big["size"], dd_seconds(path)))
        results.add("seq_small_cache_rss_mib", mount.peak_rss_bytes() / MiB)


def _cold_read(mount: Mount, path: Path, source: Path) -> tuple[float, float]:
    """Seconds ``dd`` takes to read ``path`` cold, and the CPU seconds ``mount`` used."""
    _cold(source)
    cpu_before = mount.cpu_s()
    seconds = dd_seconds(path)
    return seconds, mount.cpu_s() - cpu_before


def _cold(source: Path) -> None:
    """Nothing of the file in any page cache but the host's copy (it serves from memory)."""
    drop_caches()
    warm(source)


# ---- 3: time to first byte ------------------------------------------------------------


def first_byte(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    small = emulator.file("small.bin")
    offset = small["size"] // 2  # past the head a listing's size probe brings in
    for run in range(plan.runs):
        with _notionfs(emulator, plan, f"ttfb{run}") as mount:
            path = mount.path / "Bench" / "small.bin"
            results.add("ttfb_walk_ms", 1e3 * _timed(lambda p=path: _read_one(p, 0)))
            results.add("ttfb_uncached_ms", 1e3 * _timed(lambda p=path: _read_one(p, offset)))
            big = mount.path / "Bench" / "big.bin"
            os.stat(big)  # size known: the probe has brought the head
            results.add("ttfb_head_ms", 1e3 * _timed(lambda p=big: _read_one(p, 0)))
        byte_range = f"{offset}-{offset + 128 * KiB - 1}"
        results.add("curl_ttfb_ms", 1e3 * curl(small["signed_url"], byte_range)[0])
        headers = {"Range": f"bytes={byte_range}"}
        results.add("httpx_ttfb_ms", 1e3 * httpx_stream(small["signed_url"], None, headers)[0])


def _read_one(path: Path, offset: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        assert len(os.pread(fd, 1, offset)) == 1
    finally:
        os.close(fd)


# ---- 4, 7, 8: random reads -------------------------------------------------------------


def random_reads(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    big = emulator.file("big.bin")
    source = Path(big["path"])
    for run in range(plan.runs):
        with _notionfs(emulator, plan, f"rand{run}") as mount:
            path = mount.path / "Bench" / "big.bin"
            os.stat(path)
            _random_run(results, "", emulator, path, source, plan)
            results.add("rand_rss_mib", mount.peak_rss_bytes() / MiB)
        if plan.rclone:
            with _rclone(emulator, plan, f"rrand{run}") as mount:
                path = mount.path / "big.bin"
                os.stat(path)
                _random_run(results, "rclone_", emulator, path, source, plan)
                results.add("rclone_rand_rss_mib", mount.peak_rss_bytes() / MiB)


def _random_run(results: Results, prefix: str, emulator: EmulatorProcess, path: Path,
                source: Path, plan: Plan) -> None:
    _cold(source)
    emulator.reset()
    report = fio_randread(path, plan.big_bytes, plan.random_io_mib * MiB)
    fetched = emulator.stats()["file_bytes_sent"]
    results.add(prefix + "rand_iops", report["iops"])
    results.add(prefix + "rand_waste", fetched / report["io_bytes"])


def fio_randread(path: Path, size_bytes: int, io_bytes: int) -> dict[str, float]:
    """fio: 256 KiB random reads, one job, buffered, as an application reads."""
    command = [
        "fio", "--name=randread", f"--filename={path}", "--rw=randread", "--bs=256k",
        f"--size={size_bytes}", f"--io_size={io_bytes}", "--ioengine=psync", "--iodepth=1",
        "--numjobs=1", "--randrepeat=1", "--invalidate=1", "--readonly",
        "--output-format=json",
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    read = json.loads(out[out.index("{"):])["jobs"][0]["read"]
    return {"iops": float(read["iops"]), "io_bytes": float(read["io_bytes"])}


# ---- 5, 6: listings --------------------------------------------------------------------


def listing(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    """``ls -l`` of one directory of ``plan.flat_entries`` files: cold, then warm."""
    for run in range(plan.runs):
        with _notionfs(emulator, plan, f"ls{run}") as mount:
            directory = mount.path / "Flat directory"
            emulator.reset()
            results.add("ls_cold_ms", 1e3 * _timed(lambda d=directory: _run("ls", "-l", str(d))))
            stats = emulator.stats()
            results.add("ls_cold_api_calls", stats["api_calls"])
            results.add("ls_cold_listing_calls", _listing_calls(stats))
            results.add("ls_cold_file_requests", stats["file_requests"])
            emulator.reset()
            for _ in range(3):
                warm_s = _timed(lambda d=directory: _run("ls", "-l", str(d)))
                results.add("ls_warm_ms", 1e3 * warm_s)
            results.add("ls_warm_api_calls", emulator.stats()["api_calls"])


def _listing_calls(stats: dict[str, object]) -> int:
    routes = stats["api_by_route"]
    assert isinstance(routes, dict)
    return sum(n for route, n in routes.items() if "children" in route)


def host_probes(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    """The floor under a cold ``ls -l``: the host answering one size probe per file, 16 at
    a time (as notionfs probes), through the same transport, without any mount."""
    urls = emulator.command("sign-all")["urls"]
    headers = {"Range": f"bytes=0-{128 * KiB - 1}"}
    with httpx.Client(transport=FileHostTransport(), timeout=60) as client:

        def probe(url: str) -> None:
            with client.stream("GET", url, headers=headers) as response:
                for _ in response.iter_raw():
                    pass

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for _ in range(plan.runs):
                results.add("host_probes_ms", 1e3 * _timed(lambda: list(pool.map(probe, urls))))


def find_stat(results: Results, emulator: EmulatorProcess, plan: Plan) -> None:
    """``find -printf '%s'`` (a stat of every entry) over the demo workspace: cold, warm."""
    for run in range(plan.runs):
        with _notionfs(emulator, plan, f"find{run}") as mount:
            emulator.reset()
            start = time.perf_counter()
            entries = _find_stat(mount.path)
            results.add("find_cold_ms", 1e3 * (time.perf_counter() - start))
            stats = emulator.stats()
            results.add("find_api_calls", stats["api_calls"])
            results.add("find_file_requests", stats["file_requests"])
            results.add("find_entries", entries)
            results.add("find_warm_ms", 1e3 * _timed(lambda p=mount.path: _find_stat(p)))


def _find_stat(root: Path) -> int:
    """Entries under ``root``, each stat()ed by find's %s."""
    out = subprocess.run(["find", str(root), "-printf", "%s %p\\n"], check=True,
                         capture_output=True).stdout
    return out.count(b"\n")


# ---- mounts --------------------------------------------------------------------------------


def _notionfs(emulator: EmulatorProcess, plan: Plan, name: str) -> Mount:
    return mount_notionfs(
        emulator, plan.work_dir / "mnt", plan.work_dir / f"notionfs-{name}.log",
        cache_size=plan.cache_size,
    )


def _rclone(emulator: EmulatorProcess, plan: Plan, name: str) -> Mount:
    external = emulator.file("big.bin")["external_url"]
    directory = external.rsplit("/", 1)[0] + "/"
    return mount_rclone(directory, plan.work_dir / "rmnt", plan.work_dir / f"rclone-{name}.log")


def run_all(results: Results, plan: Plan, data_dir: Path, only: set[str] | None,
            progress: Callable[[str], None]) -> None:
    """Every measurement, each against the emulator workspace it needs."""
    def wanted(name: str) -> bool:
        return only is None or name in only

    with ExitStack() as stack:
        if wanted("data"):
            progress(f"data workspace: {plan.big_mib} MiB file and a 1 MiB file")
            data = stack.enter_context(EmulatorProcess("data", data_dir, big_mib=plan.big_mib))
            for name, step in (("host", host_alone), ("sequential", sequential),
                               ("first byte", first_byte), ("random", random_reads)):
                progress(f"  {name}")
                step(results, data, plan)
            stack.close()
        if wanted("flat"):
            progress(f"flat directory of {plan.flat_entries} files")
            with EmulatorProcess("flat", data_dir, flat_entries=plan.flat_entries) as flat:
                listing(results, flat, plan)
                host_probes(results, flat, plan)
        if wanted("demo"):
            progress("demo workspace: find + stat")
            with EmulatorProcess("demo", data_dir) as demo:
                find_stat(results, demo, plan)
