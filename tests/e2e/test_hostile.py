"""Through the kernel: hostile titles give valid, unique, stable names; external URLs other
than http(s) and bad redirects are refused; a host that ignores Range or lies about
Content-Length never makes a read return wrong bytes."""

from __future__ import annotations

import errno
import os
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.media import pattern_bytes
from notionfs.emulator.model import FileSpec, Page, Workspace, file_block

from .faultkit import MiB, attachments, drop_page_cache, pattern_spec, read_all, read_at, timed
from .mounting import Mount, mounted, requires_fuse

pytestmark = [pytest.mark.e2e, requires_fuse]

# Bidi controls and marks: a name must not be able to disguise its real extension.
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
NAME_MAX_BYTES = 255


def _external(name: str, data: bytes) -> FileSpec:
    return FileSpec(name, data=data, content_type="application/octet-stream", external=True)


# External file objects whose URLs a test points elsewhere (by file id, once ids exist).
FOREIGN = {
    "passwd.txt": "file:///etc/passwd",
    "ftp.bin": "ftp://127.0.0.1/pub/file.bin",
    "data.txt": "data:text/plain;base64,aGVsbG8=",
    "relative.bin": "/external/whatever/relative.bin",
}
REDIRECT_DATA = pattern_bytes(70_000, "hostile/redirect")
LIAR = pattern_spec("liar.bin", 3 * MiB + 777, "hostile/liar")
IGNORER = pattern_spec("ignorer.bin", 3 * MiB + 555, "hostile/ignorer")
SMALL_LIAR = pattern_spec("small-liar.bin", 5_000, "hostile/small-liar")
# Probed for the first time while the host tells both lies.
FRESH_LIARS = [pattern_spec("fresh-small.bin", 5_000, "hostile/fresh-small"),
               pattern_spec("fresh-large.bin", 300_000, "hostile/fresh-large")]


def _hostile_workspace() -> tuple[Workspace, dict[str, FileSpec]]:
    workspace = samples.hostile_titles()
    specs = {name: _external(name, b"never served\n") for name in FOREIGN}
    for name in ("loop.bin", "to-file.bin", "hop1.bin", "hop2.bin", "final.bin"):
        specs[name] = _external(name, REDIRECT_DATA)
    workspace.pages.append(
        Page("Foreign links", children=[file_block("file", spec) for spec in specs.values()])
    )
    workspace.pages.append(Page("Liars", children=[
        file_block("file", spec) for spec in (LIAR, IGNORER, SMALL_LIAR)
    ]))
    workspace.pages.append(
        Page("Fresh liars", children=[file_block("file", spec) for spec in FRESH_LIARS])
    )
    return workspace, specs


def _point_elsewhere(m: Mount, specs: dict[str, FileSpec]) -> None:
    """Aim the external file objects at foreign schemes and redirects (ids exist now)."""
    faults = m.emulator.filehost.faults
    for name, url in FOREIGN.items():
        faults.external_urls[specs[name].id] = url
    host = m.emulator.filehost
    faults.redirects[specs["loop.bin"].id] = host.external_url(specs["loop.bin"])
    faults.redirects[specs["to-file.bin"].id] = "file:///etc/passwd"
    faults.redirects[specs["hop1.bin"].id] = host.external_url(specs["hop2.bin"])
    # A relative Location, resolved against the URL that answered.
    final = host.external_url(specs["final.bin"])
    faults.redirects[specs["hop2.bin"].id] = final.removeprefix(host.base_url)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mount, dict]]:
    workspace, specs = _hostile_workspace()
    base = tmp_path_factory.mktemp("hostile")
    with mounted(base, workspace, args=("--metadata-ttl", "1", "--deadline", "10")) as m:
        _point_elsewhere(m, specs)
        yield m, specs


# ---- names ---------------------------------------------------------------------------------


def _name_problems(name: str, is_dir: bool) -> list[str]:
    problems = []
    if name in ("", ".", ".."):
        problems.append("empty or dot name")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        problems.append("longer than 255 bytes")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        problems.append("control character")
    if BIDI & set(name):
        problems.append("bidi control")
    if unicodedata.normalize("NFC", name) != name:
        problems.append("not NFC")
    if name != name.strip() or name.endswith("."):
        problems.append("padding or trailing dot")
    if is_dir and name.startswith("."):
        problems.append("hidden directory")
    return problems


_NOT_NAMES = ("Foreign links", "Liars", "Fresh liars")


def _snapshot(root: Path) -> dict[str, str]:
    """relative path -> Notion id (files: id and kind), checking every name on the way.
    The folders of refused URLs and lying hosts are other tests' business."""
    seen: dict[str, str] = {}
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in _NOT_NAMES]
        names = dirnames + filenames
        folded = [n.casefold() for n in names]
        assert len(set(folded)) == len(folded), f"names collide in {dirpath}: {sorted(names)}"
        for name in names:
            path = Path(dirpath, name)
            problems = _name_problems(name, name in dirnames)
            if problems:
                bad.append(f"{path.relative_to(root)!r}: {', '.join(problems)}")
            oid = os.getxattr(path, "user.notion.id").decode()
            kind = os.getxattr(path, "user.notion.type").decode()
            seen[str(path.relative_to(root))] = f"{kind}:{oid}"
    assert bad == []
    return seen


def test_hostile_titles_give_valid_unique_names_stable_across_relisting(
    hostile: tuple[Mount, dict],
) -> None:
    m, _ = hostile
    first = _snapshot(m.path)
    titles = m.path / "Hostile titles"
    pages = [p for p in titles.iterdir() if p.is_dir()]
    # One folder per child page: every hostile title, 50 duplicates, Readme x3, Twins.
    want = len(samples.HOSTILE_TITLES) + 50 + 3 + 5 + 1
    assert len(pages) == want
    files = attachments(titles / "Hostile file names")
    assert len(files) == len(samples.HOSTILE_FILE_NAMES) + 10
    assert len({f.read_bytes() for f in files}) == len(files)  # each its own content
    threading.Event().wait(1.2)  # past the metadata TTL: everything is listed anew
    assert _snapshot(m.path) == first
    # Top level: pages "/", "" and ".." beside "Hostile titles".
    top = [name for name in first if "/" not in name]
    assert {"／", "Untitled", "Hostile titles"} <= set(top)
    assert sum(name.startswith("Untitled (") for name in top) == 1


def test_names_are_stable_across_a_remount(
    hostile: tuple[Mount, dict], tmp_path: Path
) -> None:
    m, _ = hostile
    first = _snapshot(m.path / "Hostile titles")
    workspace, specs = _hostile_workspace()
    with mounted(tmp_path, workspace) as again:
        assert _snapshot(again.path / "Hostile titles") == first


# ---- URLs ----------------------------------------------------------------------------------


def test_external_urls_other_than_http_https_are_refused(hostile: tuple[Mount, dict]) -> None:
    m, _ = hostile
    folder = m.path / "Foreign links"
    names = set(os.listdir(folder))
    for name in FOREIGN:
        assert name in names
        path = folder / name
        # A path without a scheme is no URL at all: refused like the others.
        assert timed(os.stat, path).errno == errno.EACCES, name
        assert timed(read_at, path, 0, 100).errno == errno.EACCES, name
    log = m.log_text()
    assert "refusing a scheme-less URL: only http/https" in log
    assert "refusing a file URL: only http/https" in log
    assert "refusing a ftp URL: only http/https" in log
    assert "refusing a data URL: only http/https" in log
    # Nothing of the local file reached the log (its first line is what a read would show).
    passwd_head = Path("/etc/passwd").read_text().splitlines()[0]
    assert passwd_head.startswith("root:") and passwd_head not in log


def test_redirects_are_bounded_and_stay_http(hostile: tuple[Mount, dict]) -> None:
    m, _ = hostile
    folder = m.path / "Foreign links"
    loop = timed(read_at, folder / "loop.bin", 0, 100)
    assert loop.errno == errno.EIO
    to_file = timed(read_at, folder / "to-file.bin", 0, 100)
    assert to_file.errno == errno.EACCES
    assert read_all(folder / "hop1.bin") == REDIRECT_DATA  # two hops, one relative
    assert read_all(folder / "final.bin") == REDIRECT_DATA
    log = m.log_text()
    assert "more than 5 redirects" in log
    loops = [e for e in m.emulator.filehost.counters.log if "loop.bin" in e.path]
    assert 0 < len(loops) <= 6 * 8  # bounded: a few attempts of at most six hops each


# ---- hosts that ignore Range or lie about lengths ------------------------------------------

OFFSETS = [0, 1, 4095, 131_072, MiB - 3, 2 * MiB + 12_345, 3 * MiB]


def _check_reads(path: Path, data: bytes) -> None:
    for offset in OFFSETS:
        drop_page_cache(path)
        got = read_at(path, offset, 70_000)
        assert got == data[offset : offset + 70_000], f"wrong bytes at {offset}"


def test_host_ignoring_range_serves_right_bytes(hostile: tuple[Mount, dict]) -> None:
    m, _ = hostile
    path = m.path / "Liars" / "ignorer.bin"
    m.emulator.filehost.faults.ignore_range = True
    try:
        assert path.stat().st_size == IGNORER.size
        _check_reads(path, IGNORER.data)
        assert read_all(path) == IGNORER.data
    finally:
        m.emulator.filehost.reset()
    assert m.emulator.filehost.counters.faults.get("ignore_range", 0) == 0  # reset clears


def test_wrong_content_length_never_gives_wrong_bytes(hostile: tuple[Mount, dict]) -> None:
    """Content-Length 1 KiB larger than the body: reads return the right bytes or fail."""
    m, _ = hostile
    host = m.emulator.filehost
    liars = m.path / "Liars"
    host.faults.wrong_content_length = True
    try:
        for spec in (LIAR, SMALL_LIAR):
            path = liars / spec.name
            size = timed(os.stat, path)
            if size.error is None:
                assert size.value.st_size == spec.size, f"{spec.name}: a wrong size"
            whole = timed(read_all, path)
            if whole.error is None:
                assert whole.value == spec.data
            else:
                assert whole.errno == errno.EIO
        # Both lies at once: a 200 to a ranged request, announcing more than it sends.
        host.faults.ignore_range = True
        path = liars / LIAR.name
        for offset in OFFSETS:
            drop_page_cache(path)
            got = timed(read_at, path, offset, 70_000)
            if got.error is None:
                assert got.value == LIAR.data[offset : offset + 70_000]
            else:
                assert got.errno == errno.EIO
        # Probed while both lies are told. A body asked for whole (smaller than the probe's
        # head) is checked against its Content-Length: the size is unknown, never wrong. A
        # larger one may get the announced size, but then reading it must fail.
        small, large = FRESH_LIARS
        path = m.path / "Fresh liars" / small.name
        assert timed(os.stat, path).errno == errno.EIO
        assert "size probe cut short" in m.log_text()
        path = m.path / "Fresh liars" / large.name
        size = os.stat(path).st_size
        whole = timed(read_all, path)
        if size == large.size and whole.error is None:
            assert whole.value == large.data
        else:
            assert whole.errno == errno.EIO, f"announced {size}, read {whole}"
    finally:
        host.reset()
    assert read_all(liars / LIAR.name) == LIAR.data
    # Once the host tells the truth, the file whose size could not be trusted is read whole.
    assert read_all(m.path / "Fresh liars" / small.name) == small.data
