"""Through the kernel: deadlines against stalled hosts, stale answers while Notion is down,
retries that respect Notion, and a full walk under every fault at once."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import Page, Workspace

from .expect import expected_view
from .faultkit import (
    MiB,
    attachments,
    drop_page_cache,
    files_page,
    is_generated,
    pattern_spec,
    read_all,
    read_at,
    run,
    timed,
    wait_until,
)
from .mounting import Mount, mounted, requires_fuse

pytestmark = [pytest.mark.e2e, requires_fuse]

DEADLINE_S = 3.0
# Generous room over the deadline for process scheduling on a loaded 2-core machine: these
# are correctness bounds (no call hangs), not speed measurements. The kernel retries a failed
# read-ahead page once with a read of its own, so a read() may span two FUSE calls.
SLACK_S = 4.0
# A call that must not wait on the network at all (cached answers, statfs).
PROMPT_S = DEADLINE_S

LARGE = pattern_spec("large.bin", 3 * MiB, "faults/large")
MEDIUM = pattern_spec("medium.bin", 2 * MiB, "faults/medium")
TEN = [pattern_spec(f"f{i}.bin", 1000 + 37 * i, f"faults/ten/{i}") for i in range(10)]


def _deadline_workspace() -> Workspace:
    workspace = samples.nested_files()
    workspace.pages += [
        files_page("Large", [LARGE]),
        files_page("Medium", [MEDIUM]),
        files_page("Ten", TEN),
        files_page("Ten later", [pattern_spec(f"g{i}.bin", 900 + i, f"faults/g/{i}")
                                 for i in range(10)]),
    ]
    return workspace


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    args = ("--deadline", str(DEADLINE_S), "--metadata-ttl", "300")
    with mounted(tmp_path_factory.mktemp("deadlines"), _deadline_workspace(), args=args) as m:
        yield m


@pytest.fixture
def host_faults(slow: Mount) -> Iterator[Mount]:
    """The shared mount, with the file host's and API's faults undone after each test."""
    yield slow
    slow.emulator.filehost.reset()  # also wakes stalled responses
    slow.emulator.faults.latency_s = 0.0


def _assert_prompt(result_elapsed_s: float, what: str) -> None:
    assert result_elapsed_s < PROMPT_S, f"{what} took {result_elapsed_s:.1f} s"


def _wait_for_request(m: Mount, file_name: str) -> None:
    """Block until the file host has seen a request for ``file_name`` (it is now stalled)."""
    seen = m.emulator.filehost.counters.wait_for(
        lambda c: any(entry.path.endswith("/" + file_name) for entry in c.log), timeout_s=10
    )
    assert seen, f"no request for {file_name} reached the file host"


def test_stalled_host_read_fails_within_deadline_and_nothing_else_freezes(
    host_faults: Mount,
) -> None:
    m = host_faults
    large = m.path / "Large" / "large.bin"
    assert large.stat().st_size == LARGE.size  # listed, probed: head cached
    ten = sorted(os.listdir(m.path / "Ten"))
    assert wait_until(lambda: all((m.path / "Ten" / n).stat() for n in ten), 10)
    m.emulator.filehost.counters._reset()
    m.emulator.filehost.faults.stall_s = 60.0  # every response: no first byte for a minute

    outcome: dict[str, object] = {}
    reader = threading.Thread(
        target=lambda: outcome.update(read=timed(read_at, large, 2 * MiB, 4096))
    )
    reader.start()
    _wait_for_request(m, "large.bin")
    # While that read hangs on the host: listings, attributes and df answer at once.
    listing = timed(run, ["ls", "-l", str(m.path / "Ten")])
    _assert_prompt(listing.elapsed_s, "ls -l of a listed folder")
    assert listing.value.returncode == 0
    assert all(f" {spec.size} " in listing.value.stdout for spec in TEN)
    # A file manager: attributes and content types (sniffed from the cached heads).
    gio = timed(run, ["gio", "list", "-a", "standard::size,standard::content-type",
                      str(m.path / "Ten")])
    _assert_prompt(gio.elapsed_s, "gio list")
    assert gio.value.returncode == 0 and gio.value.stdout.count("f") >= len(TEN)
    df = timed(run, ["df", str(m.path)])
    _assert_prompt(df.elapsed_s, "df")
    assert df.value.returncode == 0
    stat = timed(os.stat, large)
    _assert_prompt(stat.elapsed_s, "stat")
    head = timed(read_at, large, 0, 4096)  # cached by the size probe
    _assert_prompt(head.elapsed_s, "a read of cached bytes")
    assert head.value == LARGE.data[:4096]

    reader.join(DEADLINE_S + SLACK_S + 5)
    assert not reader.is_alive(), "read() still blocked well past the deadline"
    read = outcome["read"]
    assert read.errno == errno.EIO
    assert read.elapsed_s < DEADLINE_S + SLACK_S
    assert f"read '/Large/large.bin': no answer within {DEADLINE_S:g} s" in m.log_text()

    m.emulator.filehost.reset()
    assert read_at(large, 2 * MiB, 4096) == LARGE.data[2 * MiB : 2 * MiB + 4096]


def test_host_stalling_mid_body_fails_the_read_then_recovers(host_faults: Mount) -> None:
    m = host_faults
    medium = m.path / "Medium" / "medium.bin"
    assert medium.stat().st_size == MEDIUM.size
    m.emulator.filehost.faults.stall_after_bytes = 64 * 1024
    m.emulator.filehost.faults.stall_s = 0  # until reset
    read = timed(read_at, medium, MiB, 256 * 1024)
    assert read.errno == errno.EIO
    assert read.elapsed_s < DEADLINE_S + SLACK_S
    m.emulator.filehost.reset()
    assert read_at(medium, MiB, 256 * 1024) == MEDIUM.data[MiB : MiB + 256 * 1024]


def test_ls_l_over_a_stalled_host_waits_one_deadline_not_one_per_file(
    host_faults: Mount,
) -> None:
    """Listing starts every size probe at once; lstat of each waits for its probe only until
    the deadline counted from when the probes began."""
    m = host_faults
    folder = m.path / "Ten later"
    m.emulator.filehost.faults.stall_s = 60.0
    listing = timed(run, ["ls", "-l", str(folder)])
    assert listing.elapsed_s < DEADLINE_S + SLACK_S, f"ls -l took {listing.elapsed_s:.1f} s"
    assert listing.value.returncode != 0  # sizes unknown: errors, never a made-up size
    assert "0 g" not in listing.value.stdout
    # A file manager asking again while the probes still hang fails at once.
    gio = timed(run, ["gio", "list", "-a", "standard::size", str(folder)])
    _assert_prompt(gio.elapsed_s, "gio list over unanswered probes")
    m.emulator.filehost.reset()
    assert wait_until(lambda: run(["ls", "-l", str(folder)]).returncode == 0, 10)
    sizes = {p.name: p.stat().st_size for p in attachments(folder)}
    assert sizes == {f"g{i}.bin": 900 + i for i in range(10)}


def test_slow_api_fails_uncached_listing_within_deadline(host_faults: Mount) -> None:
    m = host_faults
    assert "Nested files" in os.listdir(m.path)
    m.emulator.faults.latency_s = 30.0
    listing = timed(os.listdir, m.path / "Nested files" / "Page in column")
    assert listing.errno == errno.EIO  # not ENOENT: slow is not absent
    assert listing.elapsed_s < DEADLINE_S + SLACK_S
    root = timed(os.listdir, m.path)  # listed within the TTL: no API call
    _assert_prompt(root.elapsed_s, "ls of a fresh listing")
    assert "Large" in root.value
    assert f"'/Nested files/Page in column': no answer within {DEADLINE_S:g} s" in m.log_text()


# ---- Notion down: stale answers, fast failures, recovery ---------------------------------

HELD_SMALL = pattern_spec("small.bin", 20_000, "down/small")
HELD_LARGE = pattern_spec("large.bin", 8 * MiB, "down/large")
UNVISITED = pattern_spec("later.bin", 5_000, "down/later")


def test_notion_down_serves_what_is_held_and_recovers_by_itself(tmp_path: Path) -> None:
    workspace = Workspace(name="Down", pages=[
        files_page("Held", [HELD_SMALL, HELD_LARGE]),
        Page("Parent", children=[files_page("Unvisited", [UNVISITED])]),
    ])
    ttl_s = 1.0
    args = ("--deadline", str(DEADLINE_S), "--metadata-ttl", str(ttl_s))
    with mounted(tmp_path, workspace, args=args) as m:
        held = m.path / "Held"
        small, large = held / "small.bin", held / "large.bin"
        roots = sorted(os.listdir(m.path))
        assert {"Held", "Parent"} <= set(roots)
        held_names = [p.name for p in attachments(held)]
        assert held_names == ["large.bin", "small.bin"]
        assert read_all(small) == HELD_SMALL.data
        assert read_at(large, 0, 4096) == HELD_LARGE.data[:4096]

        m.emulator.pause_api()
        threading.Event().wait(ttl_s + 0.3)  # let every listing's TTL run out

        for what, call in [
            ("ls /", lambda: sorted(os.listdir(m.path))),
            ("ls Held", lambda: [p.name for p in attachments(held)]),
            ("stat", lambda: (small.stat().st_size, large.stat().st_size)),
        ]:
            answer = timed(call)
            assert answer.error is None, f"{what}: {answer.error}"
            _assert_prompt(answer.elapsed_s, what)
        assert timed(lambda: sorted(os.listdir(m.path))).value == roots
        assert (small.stat().st_size, large.stat().st_size) == (HELD_SMALL.size, HELD_LARGE.size)
        drop_page_cache(small)
        cached = timed(read_all, small)  # from the mount's block cache
        _assert_prompt(cached.elapsed_s, "read of cached blocks")
        assert cached.value == HELD_SMALL.data
        # The file host is not Notion: a signed URL still valid keeps serving new bytes.
        assert read_at(large, 3 * MiB, 4096) == HELD_LARGE.data[3 * MiB : 3 * MiB + 4096]

        never_listed = timed(os.listdir, m.path / "Parent")
        assert never_listed.errno == errno.EIO
        _assert_prompt(never_listed.elapsed_s, "a failing listing")
        m.emulator.filehost.faults.expire_all_now()  # a refresh would need Notion
        expired = timed(read_at, large, 7 * MiB, 4096)
        assert expired.errno == errno.EIO
        _assert_prompt(expired.elapsed_s, "a read needing a URL refresh")
        log = m.log_text()
        assert "serving stale listing" in log
        assert "Notion API unreachable" in log

        m.emulator.resume_api()
        assert wait_until(lambda: timed(os.listdir, m.path / "Parent").error is None, 15)
        assert "Unvisited" in os.listdir(m.path / "Parent")
        assert read_all(m.path / "Parent" / "Unvisited" / "later.bin") == UNVISITED.data
        tail = HELD_LARGE.data[7 * MiB : 7 * MiB + 4096]
        assert read_at(large, 7 * MiB, 4096) == tail  # the URL is refreshed now
        assert "reachable again" in m.log_text()


def test_slow_notion_answers_from_held_listings_at_the_deadline(tmp_path: Path) -> None:
    """Notion answering too slowly (not refusing): past the deadline, calls answer from
    what is held (listings, attributes, open files), each within the deadline."""
    deadline_s = 1.0
    workspace = Workspace(name="Slow", pages=[files_page("Held", [HELD_SMALL])])
    args = ("--deadline", str(deadline_s), "--metadata-ttl", "1")
    with mounted(tmp_path, workspace, args=args) as m:
        held = m.path / "Held"
        small = held / HELD_SMALL.name
        assert read_all(small) == HELD_SMALL.data
        names = sorted(os.listdir(held))
        m.emulator.faults.latency_s = 20.0
        try:
            threading.Event().wait(1.3)  # past the TTL: every listing wants Notion again
            # Each of these is a few FUSE calls (lookup, open, read...), each answered from
            # what is held once its deadline passes.
            listing = timed(lambda: sorted(os.listdir(held)))
            assert listing.value == names
            assert listing.elapsed_s < 3 * deadline_s + SLACK_S
            whole = timed(read_all, small)  # lookup and open answered from the listing
            assert whole.value == HELD_SMALL.data
            assert whole.elapsed_s < 3 * deadline_s + SLACK_S
        finally:
            m.emulator.faults.latency_s = 0.0
        # The first call to want the folder anew waits out its deadline; calls that come while
        # it is still being re-listed are answered from the held listing at once.
        log = m.log_text()
        assert "readdir /Held: deadline passed, answering from cache" in log


# ---- retries that respect Notion ------------------------------------------------------------

RETRY_FILES = [pattern_spec(f"r{i}.bin", 2 * MiB + 1000 * i, f"retry/{i}") for i in range(3)]


@pytest.fixture(scope="module")
def retrying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    pages = [files_page(f"Folder {i}", [spec]) for i, spec in enumerate(RETRY_FILES)]
    pages += [Page(f"Plain {i}", children=[Page(f"Inner {i}")]) for i in range(4)]
    workspace = Workspace(name="Retries", pages=pages)
    with mounted(tmp_path_factory.mktemp("retries"), workspace,
                 args=("--metadata-ttl", "300")) as m:
        yield m


def test_429_waits_out_retry_after(retrying: Mount) -> None:
    m = retrying
    assert len(os.listdir(m.path)) >= 7
    m.emulator.faults.retry_after_s = 1.0
    m.emulator.faults.force_429 = 3
    start = len(m.emulator.counters.log)
    assert "Inner 0" in os.listdir(m.path / "Plain 0")
    log = m.emulator.counters.snapshot().log[start:]
    limited = [i for i, r in enumerate(log) if r.status == 429]
    assert len(limited) == 3
    for i in limited:
        if i + 1 < len(log):
            pause_s = log[i + 1].at_s - log[i].at_s
            assert pause_s >= 1.0 - 0.05, f"request {i + 1} came {pause_s:.2f} s after a 429"
    assert log[-1].status == 200


def test_5xx_and_529_are_retried_until_the_listing_succeeds(retrying: Mount) -> None:
    m = retrying
    m.emulator.faults.seed = 3
    m.emulator.faults.error_rate = 0.4
    try:
        for i in range(1, 4):
            assert "Inner" in " ".join(os.listdir(m.path / f"Plain {i}"))
    finally:
        m.emulator.faults.error_rate = 0.0
    by_status = m.emulator.counters.snapshot().by_status
    assert sum(by_status[s] for s in (500, 502, 503, 504, 529)) >= 1
    assert "retrying" in m.log_text()


def test_body_cut_short_resumes_with_a_ranged_request(retrying: Mount) -> None:
    m = retrying
    path = m.path / "Folder 0" / "r0.bin"
    assert path.stat().st_size == RETRY_FILES[0].size
    host = m.emulator.filehost
    host.counters._reset()
    host.faults.cut_after_bytes = 300_000  # every body ends there
    try:
        assert read_all(path) == RETRY_FILES[0].data
        seen = host.counters.snapshot()
    finally:
        host.reset()
    assert seen.faults["cut"] >= 1
    starts = [int(e.range.split("=")[1].split("-")[0]) for e in seen.log if e.range]
    assert any(start % 4096 for start in starts), "no request resumed mid-block"


def test_403_from_the_host_refreshes_the_url_once(retrying: Mount) -> None:
    m = retrying
    path = m.path / "Folder 1" / "r1.bin"
    assert path.stat().st_size == RETRY_FILES[1].size
    refreshes_before = m.emulator.counters.calls("GET /v1/blocks/{id}")
    m.emulator.filehost.counters._reset()
    m.emulator.filehost.faults.expire_all_now()
    assert read_all(path) == RETRY_FILES[1].data
    assert m.emulator.counters.calls("GET /v1/blocks/{id}") - refreshes_before == 1
    assert m.emulator.filehost.counters.by_status[403] >= 1


# ---- every fault at once: a full walk, every byte checked -----------------------------------


@dataclass
class Tally:
    """What one careful walk did and saw."""

    listings: int = 0
    stats: int = 0
    files_read: int = 0
    bytes_verified: int = 0
    errors: list[str] = field(default_factory=list)
    hashes: Counter[str] = field(default_factory=Counter)


def careful_walk(root: Path, tally: Tally, mid_read: Callable[[], None]) -> None:
    """Walk and hash every file with the page cache dropped, noting every error a reader
    sees instead of stopping at the first. ``mid_read`` runs inside every read of a file
    over 1 MiB, after its first 256 KiB."""

    def failed(exc: OSError) -> None:
        tally.errors.append(f"listing {exc.filename}: {exc}")

    for dirpath, _dirnames, filenames in os.walk(root, onerror=failed):
        tally.listings += 1
        for name in filenames:
            path = Path(dirpath, name)
            try:
                tally.stats += 1
                if is_generated(path):
                    continue
                size = path.stat().st_size
                drop_page_cache(path)
                tally.files_read += 1
                digest = _sha256_interrupted(path, mid_read if size > MiB else None)
            except OSError as exc:
                tally.errors.append(f"{path.relative_to(root)}: {exc}")
                continue
            tally.hashes[digest] += 1
            tally.bytes_verified += size


def _sha256_interrupted(path: Path, mid_read: Callable[[], None] | None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        if mid_read is not None:
            digest.update(f.read(256 * 1024))
            mid_read()
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


class Chaos:
    """Changes faults while the walk runs: 429 bursts, every URL revoked, Range ignored
    on and off."""

    def __init__(self, m: Mount, period_s: float = 0.25) -> None:
        self._m = m
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos")
        self.steps = 0

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        api, host = self._m.emulator.faults, self._m.emulator.filehost.faults
        while not self._stop.wait(self._period_s):
            self.steps += 1
            if self.steps % 24 == 2 and api.force_429 == 0:
                api.force_429 = 1  # a burst, not a siege: every thread waits Retry-After
            if self.steps % 8 == 1:
                host.expire_all_now()
            if self.steps % 5 == 3:
                host.ignore_range = not host.ignore_range


def _suite_workspace() -> Workspace:
    workspace = samples.nested_files()
    big = [pattern_spec(f"big{i}.bin", (2 + i) * MiB + 12_345 * i, f"suite/{i}") for i in range(3)]
    workspace.pages += [files_page("Big files", big), *samples.gallery(24).pages]
    return workspace


def test_full_walk_under_every_fault_reads_every_byte_right(tmp_path: Path) -> None:
    workspace = _suite_workspace()
    args = ("--cache-size", "4M", "--metadata-ttl", "2", "--deadline", "20")
    with mounted(tmp_path, workspace, args=args, emulator_options={"expiry_s": 2.0}) as m:
        want = expected_view(workspace)  # ids are assigned now
        api, host = m.emulator.faults, m.emulator.filehost.faults
        api.seed, api.error_rate, api.retry_after_s = 11, 0.05, 1.0
        host.seed = 5
        # A quarter of the bodies stall: only those past 16 KiB can, and read-ahead in
        # whole blocks makes few of them, yet every fault must happen at least once.
        host.stall_after_bytes, host.stall_s, host.stall_rate = 16 * 1024, 0.2, 0.25
        host.cut_after_bytes, host.cut_rate = 48 * 1024, 0.2
        passes = [Tally(), Tally()]
        with Chaos(m) as chaos:
            careful_walk(m.path, passes[0], host.expire_all_now)
            threading.Event().wait(2.1)  # past the TTL: the second pass lists anew
            careful_walk(m.path, passes[1], host.expire_all_now)
        api_seen = m.emulator.counters.snapshot()
        host_seen = m.emulator.filehost.counters.snapshot()

    injected = {
        "API 5xx/529 answers": sum(api_seen.by_status[s] for s in (500, 502, 503, 504, 529)),
        "API 429 answers": api_seen.by_status[429],
        "file host 403 (expired URL)": host_seen.by_status[403],
        "file host stalled bodies": host_seen.faults["stall"],
        "file host cut bodies": host_seen.faults["cut"],
        "file host ignored Range": host_seen.faults["ignore_range"],
    }
    print(_table(injected, passes, chaos.steps, api_seen.total, host_seen.requests))
    for tally in passes:
        assert tally.errors == []
        assert tally.hashes == want.files
    assert all(count > 0 for count in injected.values()), injected


def _table(injected: dict[str, int], passes: list[Tally], steps: int, api_requests: int,
           host_requests: int) -> str:
    rows = [f"{name:<32}{count:>10}" for name, count in injected.items()]
    rows.append(f"{'fault switch changes (chaos)':<32}{steps:>10}")
    rows.append(f"{'API requests / file host requests':<32}{api_requests:>5} / {host_requests}")
    rows.append("")
    rows.append(f"{'walk':<8}{'listings':>10}{'stats':>8}{'files read':>12}"
                f"{'bytes verified':>16}{'reader errors':>15}")
    for i, t in enumerate(passes, 1):
        rows.append(f"{'pass ' + str(i):<8}{t.listings:>10}{t.stats:>8}{t.files_read:>12}"
                    f"{t.bytes_verified:>16}{len(t.errors):>15}")
    width = max(len(r) for r in rows)
    return "\n".join(["", "fault-injection walk".center(width, "-"), *rows, "-" * width])
