"""Which FUSE binding ``auto`` picks on a machine, and what the libfuse 3 one adds to mfusepy."""

from __future__ import annotations

import stat
from types import SimpleNamespace
from typing import Any

import pytest

from notionfs import fusebind
from notionfs.fusebind import auto_binding

BOTH = {2: "libfuse.so.2", 3: "libfuse3.so.3"}
ONLY_2 = {2: "libfuse.so.2", 3: None}
ONLY_3 = {2: None, 3: "libfuse3.so.3"}


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A machine whose user and PATH the test sets."""
    state: dict[str, object] = {"euid": 1000, "tools": set()}
    monkeypatch.setattr(fusebind.os, "geteuid", lambda: state["euid"])
    monkeypatch.setattr(
        fusebind.shutil, "which",
        lambda name: f"/usr/bin/{name}" if name in state["tools"] else None,  # type: ignore[operator]
    )
    return state


def test_libfuse_3_is_chosen_where_it_can_mount(machine: dict[str, object]) -> None:
    machine["tools"] = {"fusermount3"}
    assert auto_binding(BOTH) == "mfusepy"
    assert auto_binding(ONLY_3) == "mfusepy"
    machine["tools"] = set()
    machine["euid"] = 0  # root mounts without a helper
    assert auto_binding(BOTH) == "mfusepy"


def test_a_user_with_only_libfuse_2_s_helper_keeps_fusepy(machine: dict[str, object]) -> None:
    machine["tools"] = {"fusermount"}
    assert auto_binding(BOTH) == "fusepy"
    assert auto_binding(ONLY_2) == "fusepy"
    # libfuse 3 alone, with no way to mount it: its own error says what to install.
    assert auto_binding(ONLY_3) == "mfusepy"


def test_auto_falls_back_to_fusepy_when_mfusepy_cannot_load(
    machine: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine["euid"] = 0
    monkeypatch.setattr(fusebind, "libfuse_paths", lambda: dict(BOTH))

    def broken(paths: dict[int, str | None]) -> fusebind.Binding:
        raise fusebind.ConfigError("mfusepy cannot load libfuse3.so.3 (no such file)")

    monkeypatch.setattr(fusebind, "_load_mfusepy", broken)
    assert fusebind.load_binding("auto").name == "fusepy"
    with pytest.raises(fusebind.ConfigError, match="cannot load"):
        fusebind.load_binding("mfusepy")


# ---- libfuse 3: listings answered with attributes ------------------------------------------


class _Listing:
    """The adapter's side: readdir of one folder, counted."""

    def __init__(self, entries: list[tuple[str, dict[str, int] | None, int]]) -> None:
        self.entries = entries
        self.asked: list[tuple[str | None, int, bool]] = []

    def readdir(self, path: str | None, fh: int, plus: bool = False) -> list[Any]:
        self.asked.append((path, fh, plus))
        return list(self.entries)


class _Page:
    """libfuse's filler for one request: takes ``room`` entries, then says the page is full."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.taken: list[tuple[str, int, int, tuple[int, ...] | None]] = []

    def __call__(self, buf: object, name: bytes, st: Any, offset: int, flags: int) -> int:
        if len(self.taken) == self.room:
            return 1
        got = None
        if st is not None and flags:  # what the kernel is given of a full stat
            got = (st.st_size, st.st_nlink, st.st_uid, st.st_mtimespec.tv_sec,
                   st.st_mtimespec.tv_nsec)
        self.taken.append((name.decode(), offset, flags, got))
        return 0


def _fuse(listing: _Listing) -> Any:
    """The binding's FUSE object without mounting anything."""
    try:
        binding = fusebind.load_binding("mfusepy")
    except fusebind.ConfigError as exc:
        pytest.skip(str(exc))
    if binding.libfuse_major != 3:
        pytest.skip("libfuse 3 is not installed")
    fuse = object.__new__(binding.fuse_class)
    fuse.keep_rests()
    fuse.operations, fuse.encoding, fuse.errors = listing, "utf-8", "surrogateescape"
    return fuse


INFO = SimpleNamespace(contents=SimpleNamespace(fh=0))  # no opendir: libfuse's fh is 0


MTIME_NS = 1_767_605_490_123_456_789
FULL = {"st_ino": 7, "st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": 42,
        "st_uid": 1000, "st_gid": 1000, "st_mtime": MTIME_NS, "st_atime": MTIME_NS,
        "st_ctime": MTIME_NS}
SHORT = {"st_ino": 8, "st_mode": stat.S_IFREG}


def test_a_listing_with_attributes_gives_them_to_the_kernel_entry_by_entry() -> None:
    listing = _Listing([(".", {"st_ino": 1, "st_mode": stat.S_IFDIR}, 0), ("..", None, 0),
                        ("known.png", FULL, 0), ("probing.png", SHORT, 0)])
    fuse, page = _fuse(listing), _Page(room=10)
    assert fuse.readdir_fuse_3(b"/f", 3, page, 0, INFO, fusebind._READDIR_PLUS) == 0
    # Every entry has its place (libfuse up to 3.15 drops the attributes of entries
    # without one); only full attributes are marked as such, with what they carry.
    assert page.taken == [(".", 1, 0, None), ("..", 2, 0, None),
                          ("known.png", 3, fusebind._FILL_DIR_PLUS,
                           (42, 1, 1000, 1_767_605_490, 123_456_789)),
                          ("probing.png", 4, 0, None)]
    assert listing.asked == [("/f", 0, True)]
    # A plain READDIR: no attributes given, even those the adapter has.
    page = _Page(room=10)
    fuse.readdir_fuse_3(b"/f", 4, page, 0, INFO, 0)
    assert [flags for _, _, flags, _ in page.taken] == [0, 0, 0, 0]
    assert listing.asked[-1] == ("/f", 0, False)


def test_the_adapter_is_asked_once_per_listing_not_once_per_page() -> None:
    names = [f"file-{n:03d}" for n in range(7)]
    listing = _Listing([(name, FULL, 0) for name in names])
    fuse = _fuse(listing)
    got: list[str] = []
    offset = 0
    for _ in range(5):  # pages of three: 3 + 3 + 1, then the empty one that ends it
        page = _Page(room=3)
        fuse.readdir_fuse_3(b"/f", 9, page, offset, INFO, fusebind._READDIR_PLUS)
        if not page.taken:
            break
        got.extend(name for name, _, _, _ in page.taken)
        offset = page.taken[-1][1]  # the kernel asks again from the last place it took
    assert got == names
    assert offset == 7
    assert len(listing.asked) == 1


def test_a_rest_is_kept_per_open_folder() -> None:
    listing = _Listing([(f"n{n}", FULL, 0) for n in range(4)])
    fuse = _fuse(listing)
    fuse.readdir_fuse_3(b"/f", 1, _Page(room=2), 0, INFO, fusebind._READDIR_PLUS)
    # Another open of the folder reading from the same place is not given the first one's
    # rest: the adapter is asked, and the entries from there are the listing's now.
    listing.entries = [(f"m{n}", FULL, 0) for n in range(4)]
    page = _Page(room=10)
    fuse.readdir_fuse_3(b"/f", 2, page, 2, INFO, 0)
    assert [name for name, _, _, _ in page.taken] == ["m2", "m3"]
    assert [place for _, place, _, _ in page.taken] == [3, 4]
    assert len(listing.asked) == 2
    # The first open goes on with what it was listed.
    page = _Page(room=10)
    fuse.readdir_fuse_3(b"/f", 1, page, 2, INFO, 0)
    assert [name for name, _, _, _ in page.taken] == ["n2", "n3"]
    assert len(listing.asked) == 2
    # A rest is only for the folder and the offset it was kept for: libfuse's handle may be
    # a new one at a freed one's address.
    fuse.readdir_fuse_3(b"/f", 1, _Page(room=2), 0, INFO, fusebind._READDIR_PLUS)
    page = _Page(room=10)
    fuse.readdir_fuse_3(b"/g", 1, page, 2, INFO, 0)
    assert [name for name, _, _, _ in page.taken] == ["m2", "m3"]
    assert listing.asked[-1][0] == "/g"
    page = _Page(room=10)
    fuse.readdir_fuse_3(b"/f", 1, page, 1, INFO, 0)
    assert [name for name, _, _, _ in page.taken] == ["m1", "m2", "m3"]


def test_a_listing_without_attributes_is_left_whole_to_libfuse() -> None:
    """No offsets: libfuse keeps the entries and answers the kernel's next requests for them
    itself, with no call into Python."""
    listing = _Listing([(".", {"st_ino": 1, "st_mode": stat.S_IFDIR}, 0), ("..", None, 0),
                        ("probing.png", SHORT, 0), ("known.png", FULL, 0)])
    fuse = _fuse(listing)
    for flags, entries in ((0, listing.entries), (fusebind._READDIR_PLUS, listing.entries[:3])):
        listing.entries = entries
        page = _Page(room=100)
        fuse.readdir_fuse_3(b"/f", 5, page, 0, INFO, flags)
        assert [(place, fill) for _, place, fill, _ in page.taken] == [(0, 0)] * len(entries)
    # Nothing was kept for a next request: libfuse has the whole listing.
    assert len(fuse._rests) == 0
