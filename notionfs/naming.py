"""Titles to safe, unique, stable file names: pure functions, no I/O.

Rules (user-facing version with examples: docs/NAMING.md):

* ``clean_name`` makes one valid Linux name component from any text: lone surrogates become
  U+FFFD; line breaks and tabs become one space; other C0/C1 controls and bidi controls are
  dropped; ``/`` becomes ``／`` (U+FF0F); ``\\`` stays; NFC; whitespace and trailing dots are
  trimmed at the ends; a page or database title starting with ``.`` starts with ``．`` (U+FF0E)
  instead, a file name keeps its dot; empty results, ``.`` and ``..`` become the placeholder;
  at most ``CLEAN_NAME_MAX_BYTES`` of UTF-8, cut between character clusters, keeping a file's
  extension, so that a dedup suffix still fits in ``NAME_MAX_BYTES``.
* ``assign_names`` hands out names oldest first (by ``order``, then ``key``): each entry takes
  the first of its candidates (the clean name, then ``Title (3f2a9c1b)`` / ``photo
  (3f2a9c1b).png`` with 8, 9, ... characters of ``dedup_suffix``) that no older entry holds and
  that is not reserved. Names are compared case-insensitively (NFC of casefold). So a name
  changes only when its own title changes, or when an older entry gives up or takes a name
  it wants; a newer entry never renames an older one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from urllib.parse import unquote, urlsplit

__all__ = [
    "PLACEHOLDER_TITLE",
    "NAME_MAX_BYTES",
    "CLEAN_NAME_MAX_BYTES",
    "NameRequest",
    "clean_name",
    "file_name_from_url",
    "assign_names",
    "dedup_suffix",
    "split_extension",
    "is_valid_name",
]

logger = logging.getLogger(__name__)

PLACEHOLDER_TITLE = "Untitled"
# Linux NAME_MAX: one path component, in bytes.
NAME_MAX_BYTES = 255
DEDUP_SUFFIX_LENGTH = 8
# Room for " (" + 8 suffix characters + ")", so that the usual suffixed name shows the same
# text as the plain one instead of a shorter cut.
CLEAN_NAME_MAX_BYTES = NAME_MAX_BYTES - len(" ()") - DEDUP_SUFFIX_LENGTH

_MAX_EXTENSION_CHARS = 16
_EXTENSION_EXTRA_CHARS = frozenset("_-+")

_SURROGATES = re.compile("[\ud800-\udfff]")
# Line breaks and tabs read as spaces: "Line one\nLine two" -> "Line one Line two".
_LINE_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
# Other C0/C1 controls, DEL, and bidi controls (a name must not be able to reorder its visible
# text, e.g. hide a real extension behind U+202E "right-to-left override").
_DROPPED = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_TRAILING_DOTS_AND_SPACE = re.compile(r"[\s.]+\Z")
# A Notion object id at the end of a key ("page:<uuid>", "<dir>/block:<uuid>", a bare id).
_TRAILING_UUID = re.compile(
    r"([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\Z"
)

_FULLWIDTH_SOLIDUS = "\uff0f"
_FULLWIDTH_FULL_STOP = "\uff0e"
_ZWJ = 0x200D
_ZWNJ = 0x200C


@dataclass(frozen=True)
class NameRequest:
    """One entry that needs a name in a directory."""

    key: str  # the object's id or another stable key, unique within the directory
    raw: str  # desired name: page title, file ``name``, or URL-derived name
    order: str  # rank for contested names: the smallest keeps the plain name
    is_file: bool = False


def clean_name(raw: str, *, is_file: bool = False, placeholder: str = PLACEHOLDER_TITLE) -> str:
    """One valid Linux name component for ``raw`` (see the module docstring for the rules)."""
    if not is_valid_name(placeholder):
        raise ValueError(f"placeholder {placeholder!r} is not a valid name")
    text = _SURROGATES.sub("\ufffd", raw)
    text = _LINE_BREAKS.sub(" ", text)
    text = _DROPPED.sub("", text)
    text = text.replace("/", _FULLWIDTH_SOLIDUS)
    text = unicodedata.normalize("NFC", text).strip()
    # Trailing dots: Windows and Samba clients strip or refuse them, and "." / ".." vanish.
    text = _TRAILING_DOTS_AND_SPACE.sub("", text)
    if not text:
        return placeholder
    if not is_file and text.startswith("."):
        # A page titled ".env notes" is meant to be seen; a leading dot would hide it.
        text = _FULLWIDTH_FULL_STOP + text[1:]
    stem, extension = split_extension(text) if is_file else (text, "")
    return _fit(stem, extension, CLEAN_NAME_MAX_BYTES)


def file_name_from_url(url: str) -> str | None:
    """The percent-decoded last path segment of an http(s) URL; None when there is none.

    The query and fragment (where presigned URLs keep their signature) are ignored. The
    result is raw text: pass it through ``clean_name`` or ``assign_names``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    segment = unquote(parts.path.rsplit("/", 1)[-1], errors="replace")
    if not segment.strip() or segment in (".", ".."):
        return None
    return segment


def dedup_suffix(key: str, length: int = DEDUP_SUFFIX_LENGTH) -> str:
    """The first ``length`` characters of the suffix source for ``key``.

    For a key ending in a Notion id, that id's 32 lowercase hex digits (so the suffix can
    be searched in Notion); otherwise the 64 hex digits of the key's SHA-256. ``length`` past
    the source's end gives the whole source.
    """
    if length < 1:
        raise ValueError("length must be at least 1")
    return _suffix_source(key)[:length]


def assign_names(requests: Sequence[NameRequest], reserved: Collection[str] = ()) -> dict[str, str]:
    """Map each request's key to a name unique within one directory.

    Deterministic and independent of the order of ``requests``; a request whose ``order``
    is larger than every other's never changes the names of the others.
    """
    keys = {request.key for request in requests}
    if len(keys) != len(requests):
        raise ValueError("NameRequest keys must be unique within a directory")
    taken = {_fold(name) for name in reserved}
    names: dict[str, str] = {}
    for request in sorted(requests, key=lambda r: (r.order, r.key)):
        base = clean_name(request.raw, is_file=request.is_file)
        for candidate in _candidates(base, request):
            folded = _fold(candidate)
            if folded not in taken:
                taken.add(folded)
                names[request.key] = candidate
                break
    return names


def split_extension(name: str) -> tuple[str, str]:
    """``("photo", ".png")`` for ``"photo.png"``; ``(name, "")`` when there is no extension.

    An extension is 1 to 16 letters, digits, ``_``, ``-`` or ``+`` after the last dot, plus
    a preceding ``.tar``; a leading dot (``.gitignore``) starts the stem, not an extension.
    """
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    extension = name[dot + 1 :]
    if not 1 <= len(extension) <= _MAX_EXTENSION_CHARS or not all(
        ch.isalnum() or ch in _EXTENSION_EXTRA_CHARS for ch in extension
    ):
        return name, ""
    stem = name[:dot]
    if stem.lower().endswith(".tar") and len(stem) > len(".tar"):
        dot -= len(".tar")
    return name[:dot], name[dot:]


def is_valid_name(name: str) -> bool:
    """True when ``name`` can be one Linux path component: 1..255 bytes, no ``/`` or NUL."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name:
        return False
    try:
        return len(name.encode("utf-8")) <= NAME_MAX_BYTES
    except UnicodeEncodeError:  # lone surrogates
        return False


# ---------------------------------------------------------------------------------------------


def _fold(name: str) -> str:
    # macOS and Windows clients of a Samba export, and copies onto their disks, see names
    # that differ only in case as one file: treat them as duplicates here already.
    return unicodedata.normalize("NFC", name.casefold())


def _suffix_source(key: str) -> str:
    match = _TRAILING_UUID.search(key)
    if match:
        return "".join(match.groups()).lower()
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _candidates(base: str, request: NameRequest) -> Iterator[str]:
    """The plain name, then ever longer suffixes, then numbered ones (never exhausted)."""
    yield base
    stem, extension = split_extension(base) if request.is_file else (base, "")
    stem = stem.rstrip()  # "photo .png" -> "photo (3f2a9c1b).png", not two spaces
    source = _suffix_source(request.key)
    for length in range(DEDUP_SUFFIX_LENGTH, len(source) + 1):
        yield _with_suffix(stem, extension, source[:length])
    for number in count(2):
        yield _with_suffix(stem, extension, f"{source}-{number}")


def _with_suffix(stem: str, extension: str, token: str) -> str:
    return _fit(stem, f" ({token}){extension}", NAME_MAX_BYTES)


def _fit(stem: str, tail: str, limit_bytes: int) -> str:
    """``stem + tail`` within ``limit_bytes``, shortening only ``stem``."""
    budget = limit_bytes - _utf8_len(tail)
    if _utf8_len(stem) <= budget:
        return stem + tail
    cut = _truncate(stem, budget)
    # Do not end the visible part on a space or dot ("Long title .png").
    return (_TRAILING_DOTS_AND_SPACE.sub("", cut) or cut) + tail


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _truncate(text: str, budget_bytes: int) -> str:
    """The longest prefix of whole character clusters within ``budget_bytes``.

    Falls back to whole code points when even the first cluster is too long (text made
    of one base character and hundreds of combining marks).
    """
    end = used = 0
    for start, stop in _clusters(text):
        size = _utf8_len(text[start:stop])
        if used + size > budget_bytes:
            break
        used, end = used + size, stop
    if end == 0:
        for ch in text:
            size = _utf8_len(ch)
            if used + size > budget_bytes:
                break
            used, end = used + size, end + 1
    return text[:end]


def _clusters(text: str) -> Iterator[tuple[int, int]]:
    """(start, stop) of each user-perceived character, approximately (UAX #29 core rules).

    Joins combining marks, variation selectors, ZWJ sequences, emoji skin-tone modifiers,
    tag sequences, regional-indicator pairs (flags) and Hangul vowel/final jamo to what
    precedes them, so a cut never leaves half an emoji or an orphaned accent.
    """
    start = 0
    after_zwj = False
    open_flag = False  # the current cluster is one regional indicator, waiting for its pair
    for index, ch in enumerate(text):
        code = ord(ch)
        regional = 0x1F1E6 <= code <= 0x1F1FF
        joins = index > 0 and (after_zwj or _extends(ch, code) or (regional and open_flag))
        if not joins:
            if index > 0:
                yield start, index
            start = index
        open_flag = regional and not (joins and open_flag)
        after_zwj = code == _ZWJ
    if text:
        yield start, len(text)


def _extends(ch: str, code: int) -> bool:
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")  # includes variation selectors
        or code in (_ZWJ, _ZWNJ)
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants
        or 0xD7B0 <= code <= 0xD7FF
    )
