"""Real programs on the mounted demo workspace: file, ImageMagick, poppler, ffmpeg, cp, tar, gio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notionfs.emulator.demo import build_demo
from notionfs.emulator.model import Block, FileSpec, Page

from .mounting import Mount, mounted, requires_fuse

pytestmark = [pytest.mark.e2e, requires_fuse]

MiB = 1 << 20
GENERATED_NAMES = ("index.md", "index.csv")
KNOWN_TEXT = "dhcp-range 192.168.1.100 192.168.1.199"  # in Projects/Home lab/router-config.txt
# What libmagic must say about each kind of file (its description starts with, or holds, this).
MAGIC = {
    ".jpg": "JPEG image data",
    ".png": "PNG image data",
    ".pdf": "PDF document",
    ".wav": "WAVE audio",
    ".avi": "AVI",
    ".csv": "text",
    ".txt": "text",
    ".md": "text",
}


@dataclass(frozen=True)
class MountedFile:
    path: Path
    rel: Path
    spec: FileSpec | None  # None for generated files (index.md, index.csv)


@dataclass
class Demo:
    mount: Mount
    files: list[MountedFile]

    @property
    def root(self) -> Path:
        return self.mount.path

    def attachments(self, *suffixes: str) -> list[MountedFile]:
        return [f for f in self.files if f.spec is not None and f.path.suffix in suffixes]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> Iterator[Demo]:
    workspace = build_demo(demo_data_dir)
    with mounted(tmp_path_factory.mktemp("programs"), workspace) as m:
        files = [
            MountedFile(Path(d, f), Path(d, f).relative_to(m.path), spec_of(m, Path(d, f)))
            for d, _, names in os.walk(m.path) for f in names
        ]
        yield Demo(m, files)


def spec_of(mount: Mount, path: Path) -> FileSpec | None:
    """The emulator's FileSpec behind a mounted file, found through its user.notion.id."""
    kind = os.getxattr(path, "user.notion.type").decode()
    if kind != "file":
        assert kind == "generated" and path.name in GENERATED_NAMES, path
        return None
    entry = mount.emulator.index.get(os.getxattr(path, "user.notion.id").decode())
    assert entry is not None, path
    owner = entry.obj
    if isinstance(owner, Block):
        assert owner.file is not None
        return owner.file
    assert isinstance(owner, Page), path
    if path.stem == "cover" and owner.cover is not None:
        return owner.cover
    if path.stem == "icon" and isinstance(owner.icon, FileSpec):
        return owner.icon
    in_properties = [
        item for value in owner.properties.values() if isinstance(value, list)
        for item in value if isinstance(item, FileSpec) and item.name == path.name
    ]
    assert len(in_properties) == 1, path
    return in_properties[0]


def run(*command: str | Path, timeout_s: float = 120) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=timeout_s)
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr}"
    return done.stdout


def original(spec: FileSpec, tmp_path: Path, name: str) -> Path:
    """The emulator's own copy of a file, on local disk."""
    if spec.path is not None:
        return spec.path
    target = tmp_path / "originals" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(spec.read())
    return target


def needs(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (scripts/test installs it)")


def test_demo_has_every_kind_of_file(demo: Demo) -> None:
    suffixes = {f.path.suffix for f in demo.files}
    assert {".jpg", ".png", ".pdf", ".wav", ".avi", ".csv", ".txt", ".bin", ".md"} <= suffixes


def test_file_names_every_type_by_its_content(demo: Demo) -> None:
    needs("file")
    checked = [f for f in demo.files if f.path.suffix in MAGIC]
    out = run("file", "-b", "-N", *[f.path for f in checked]).splitlines()
    assert len(out) == len(checked)
    for f, description in zip(checked, out, strict=True):
        assert MAGIC[f.path.suffix] in description, f"{f.rel}: {description}"


def test_imagemagick_identifies_images_as_their_originals(demo: Demo, tmp_path: Path) -> None:
    needs("identify")
    for f in demo.attachments(".jpg", ".png"):
        assert f.spec is not None
        fmt = "%m %w %h\n"
        got = run("identify", "-format", fmt, f.path)
        assert got == run("identify", "-format", fmt, original(f.spec, tmp_path, f.path.name))
        assert got.split()[0] in ("JPEG", "PNG")


def test_poppler_reads_pdfs(demo: Demo, tmp_path: Path) -> None:
    needs("pdfinfo")
    needs("pdftotext")
    pdfs = demo.attachments(".pdf")
    assert pdfs
    for f in pdfs:
        assert f.spec is not None
        info = run("pdfinfo", f.path)
        pages = int(next(ln.split()[1] for ln in info.splitlines() if ln.startswith("Pages:")))
        assert pages >= 1
        text = run("pdftotext", f.path, "-")
        assert text.split(), f"{f.rel}: no text found"
        assert text == run("pdftotext", original(f.spec, tmp_path, f.path.name), "-")


def test_ffprobe_reads_audio_and_video(demo: Demo) -> None:
    needs("ffprobe")
    media = demo.attachments(".wav", ".avi")
    assert {f.path.suffix for f in media} == {".wav", ".avi"}
    for f in media:
        out = run("ffprobe", "-v", "error", "-show_entries",
                  "stream=codec_type:format=duration", "-of", "json", f.path)
        probe = json.loads(out)
        kinds = {s["codec_type"] for s in probe["streams"]}
        assert kinds == ({"audio"} if f.path.suffix == ".wav" else {"video"}), f.rel
        assert float(probe["format"]["duration"]) > 0


# Maps each file after reading it, with the pages read() brought dropped in between, so the
# mapping's page faults go through the mount to the host. Run as a program of its own: this
# process hosts the emulator, and a copy out of a mapping holds the GIL through its page
# faults, so a fault that reaches the host would wait on itself until the read deadline
# (then EIO, and SIGBUS for the copy) whenever the kernel had let the pages go.
MMAP_PROGRAM = """
import json, mmap, os, sys
out = []
for path in json.load(sys.stdin):
    with open(path, "rb") as handle:
        data = handle.read()
        size = os.fstat(handle.fileno()).st_size
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        same = True
        if size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                same = mapped[:] == data
    out.append([len(data), size, same])
json.dump(out, sys.stdout)
"""


def test_mmap_matches_read_on_every_file(demo: Demo) -> None:
    host = demo.mount.emulator.filehost.counters
    sent_before = host.bytes_sent
    done = subprocess.run(
        [sys.executable, "-c", MMAP_PROGRAM], input=json.dumps([str(f.path) for f in demo.files]),
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(demo.files)
    for f, (read_bytes, size, same) in zip(demo.files, results, strict=True):
        assert read_bytes == size, f"{f.rel}: read {read_bytes} bytes of {size}"
        assert same, f"{f.rel}: the mapping differs from read()"
        if f.spec is not None:
            assert size == f.spec.size, f.rel
    # The read-ahead frees what a streaming reader passed, so the 64 MiB file's mapping,
    # its pages dropped, was fetched again: the faults reached the host and were answered.
    assert host.bytes_sent - sent_before >= 32 * MiB


def originals_tree(demo: Demo, top: Path, target: Path, tmp_path: Path) -> None:
    """The emulator's files written under ``target`` with the names the mount gives them
    (folders too: a page without files is an empty folder once index.md is left out)."""
    for d, _, _ in os.walk(top):
        (target / Path(d).relative_to(top)).mkdir(parents=True, exist_ok=True)
    for f in demo.files:
        if f.spec is None or not f.path.is_relative_to(top):
            continue
        dest = target / f.path.relative_to(top)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original(f.spec, tmp_path, f.path.name), dest)


def test_cp_r_of_a_page_tree_equals_the_originals(demo: Demo, tmp_path: Path) -> None:
    top = demo.root / "Journal"
    copy, want = tmp_path / "copy", tmp_path / "want"
    run("cp", "-r", top, copy)
    originals_tree(demo, top, want, tmp_path)
    excluded = [arg for name in GENERATED_NAMES for arg in ("-x", name)]
    run("diff", "-r", *excluded, copy, want)
    assert sum(1 for _ in copy.rglob("*.jpg")) >= 5


def test_tar_of_a_page_tree_lists_back(demo: Demo, tmp_path: Path) -> None:
    top = demo.root / "Trips"
    archive = tmp_path / "trips.tar"
    run("tar", "-cf", archive, "-C", top, ".")  # fails on "file changed as we read it"
    listed = {line.rstrip("/") for line in run("tar", "-tf", archive).splitlines()}
    walked = {"."} | {
        "./" + str(Path(d, n).relative_to(top)) for d, dirs, files in os.walk(top)
        for n in [*dirs, *files]
    }
    assert listed == walked


def test_grep_r_finds_a_known_line(demo: Demo) -> None:
    out = run("grep", "-r", "-I", "-l", "-F", KNOWN_TEXT, demo.root)
    found = {Path(line).relative_to(demo.root) for line in out.splitlines()}
    assert Path("Projects/Home lab/router-config.txt") in found


def test_du_counts_the_exact_sizes(demo: Demo) -> None:
    inodes = {}
    for d, dirs, files in os.walk(demo.root):
        for name in [*dirs, *files]:
            st = os.lstat(Path(d, name))
            inodes[st.st_ino] = st.st_size
    total = run("du", "-s", "-b", demo.root).split()[0]
    assert int(total) == sum(inodes.values()) + os.lstat(demo.root).st_size
    human = run("du", "-sh", demo.root).split()[0]
    assert human.endswith("M")  # the 64 MiB sensor log dominates


def test_find_newer_agrees_with_stat(demo: Demo) -> None:
    times = {f.path: os.stat(f.path).st_mtime_ns for f in demo.files}
    reference = sorted(times, key=times.__getitem__)[len(times) // 2]
    out = run("find", demo.root, "-type", "f", "-newer", reference)
    newer = {Path(line) for line in out.splitlines()}
    assert newer == {p for p, t in times.items() if t > times[reference]}
    assert newer, "a median reference leaves some files newer"


def test_gio_lists_and_describes_like_a_file_manager(demo: Demo) -> None:
    needs("gio")
    folder = demo.root / "Journal" / "2025" / "Iceland in October"
    out = run("gio", "list", "-a", "standard::content-type,standard::size", folder)
    listed = {}
    for line in out.splitlines():
        name, size, _kind, attributes = line.split("\t", 3)
        listed[name] = (int(size), attributes)
    files = [f for f in demo.files if f.path.parent == folder]
    assert set(listed) >= {f.path.name for f in files}
    for f in files:
        size, attributes = listed[f.path.name]
        assert size == f.path.stat().st_size
        if f.path.suffix == ".jpg":
            assert "standard::content-type=image/jpeg" in attributes
    info = run("gio", "info", folder / "route-map.png")
    assert "standard::content-type: image/png" in info
    assert "access::can-write: TRUE" in info  # a writable mount: saving over it replaces it
