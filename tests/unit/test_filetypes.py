"""Which files Notion takes, and the block each becomes, known before any byte is written."""

from __future__ import annotations

import pytest

from notionfs.emulator.uploads import SUPPORTED_TYPES as EMULATED
from notionfs.errors import UnsupportedFileError, errno_for
from notionfs.filetypes import SUPPORTED_TYPES, check_file


def test_the_product_and_the_emulator_agree_on_notions_list() -> None:
    assert dict(SUPPORTED_TYPES) == EMULATED


@pytest.mark.parametrize(
    ("name", "kind", "content_type"),
    [("a.PNG", "image", "image/png"), ("scan.pdf", "pdf", "application/pdf"),
     ("v.webm", "video", "video/webm"), ("s.m4a", "audio", "audio/mp4"),
     ("notes.txt", "file", "text/plain"), ("sheet.xlsx", "file",
                                            SUPPORTED_TYPES["xlsx"]),
     ("my.photo.jpeg", "image", "image/jpeg")],
)
def test_kinds(name: str, kind: str, content_type: str) -> None:
    found = check_file(name)
    assert (found.block_kind, found.content_type) == (kind, content_type)


@pytest.mark.parametrize("name", ["archive.zip", "README", ".bashrc", "x.", "a" * 897 + ".txt",
                                  "run.exe"])
def test_refused_names(name: str) -> None:
    with pytest.raises(UnsupportedFileError) as caught:
        check_file(name)
    assert errno_for(caught.value) == 1  # EPERM


def test_what_an_existing_block_can_take() -> None:
    assert check_file("b.png", into="image").block_kind == "image"
    assert check_file("b.png", into="file").block_kind == "image"  # a file block takes all
    for name, into in [("b.pdf", "image"), ("b.png", "pdf"), ("b.mp3", "video"),
                       ("b.png", "paragraph")]:
        with pytest.raises(UnsupportedFileError):
            check_file(name, into=into)
