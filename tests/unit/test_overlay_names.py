"""Which names stay in the local layer, and the mount options of a writable mount."""

from __future__ import annotations

import pytest

from notionfs.config import Settings
from notionfs.fusebind import fuse_options
from notionfs.overlay import is_scratch_name


@pytest.mark.parametrize("name", [
    ".goutputstream-X1Y2Z3", ".fuse_hidden0000000400000001", ".notes.txt.swp", ".notes.txt.swx",
    "4913", "notes.txt~",
    ".~lock.report.odt#", "~$report.docx", "tmpab12_x9z", "saved.txt.tmp", ".photo.png.a1B2c3",
])  # fmt: skip
def test_editor_and_copier_temporaries_are_scratch(name: str) -> None:
    assert is_scratch_name(name)


@pytest.mark.parametrize("name", [
    "notes.txt", "photo.png", "4914", "report.docx", ".photo.png", "~report.docx",
    "tmpfile.txt", ".hidden.jpeg",
])  # fmt: skip
def test_real_names_are_uploaded(name: str) -> None:
    assert not is_scratch_name(name)


def test_writable_unless_read_only() -> None:
    assert fuse_options(Settings(writable=False), "notion:x", {})["ro"] is True
    assert "ro" not in fuse_options(Settings(), "notion:x", {})
