"""Which files Notion takes through the File Upload API, and which block shows each one."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from notionfs.errors import UnsupportedFileError

__all__ = [
    "BLOCK_KINDS",
    "MAX_FILENAME_BYTES",
    "SUPPORTED_TYPES",
    "FileType",
    "block_kind_for",
    "check_file",
]

# Notion's published list ("Working with files and media", supported file types):
# extension -> MIME type. A file upload with any other extension is refused when created.
SUPPORTED_TYPES = MappingProxyType({
    # audio
    "aac": "audio/aac", "adts": "audio/aac", "mid": "audio/midi", "midi": "audio/midi",
    "mp3": "audio/mpeg", "mpga": "audio/mpeg", "m4a": "audio/mp4", "m4b": "audio/mp4",
    "oga": "audio/ogg", "ogg": "audio/ogg", "wav": "audio/wav", "wma": "audio/x-ms-wma",
    # documents
    "pdf": "application/pdf", "txt": "text/plain", "json": "application/json",
    "doc": "application/msword", "dot": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "xls": "application/vnd.ms-excel", "xlt": "application/vnd.ms-excel",
    "xla": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "ppt": "application/vnd.ms-powerpoint", "pot": "application/vnd.ms-powerpoint",
    "pps": "application/vnd.ms-powerpoint", "ppa": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
    # images
    "gif": "image/gif", "heic": "image/heic", "ico": "image/vnd.microsoft.icon",
    "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "svg": "image/svg+xml",
    "tif": "image/tiff", "tiff": "image/tiff", "webp": "image/webp",
    # video
    "amv": "video/x-amv", "asf": "video/x-ms-asf", "wmv": "video/x-ms-asf",
    "avi": "video/x-msvideo", "f4v": "video/x-f4v", "flv": "video/x-flv",
    "gifv": "video/mp4", "m4v": "video/mp4", "mp4": "video/mp4", "mkv": "video/webm",
    "webm": "video/webm", "mov": "video/quicktime", "qt": "video/quicktime",
    "mpeg": "video/mpeg",
})
# The blocks an uploaded file can go into; "file" shows any type and keeps its own name.
BLOCK_KINDS = ("image", "video", "audio", "pdf", "file")
MAX_FILENAME_BYTES = 900  # Notion's limit on a file upload's filename, in UTF-8 bytes


@dataclass(frozen=True)
class FileType:
    """What Notion will make of a file name: its MIME type and the block that shows it."""

    extension: str
    content_type: str
    block_kind: str


def block_kind_for(content_type: str) -> str:
    """The block a new file of ``content_type`` is appended as."""
    if content_type == "application/pdf":
        return "pdf"
    for kind in ("image", "video", "audio"):
        if content_type.startswith(kind + "/"):
            return kind
    return "file"


def _fits(kind: str, content_type: str) -> bool:
    return kind == "file" or block_kind_for(content_type) == kind


def check_file(name: str, *, into: str | None = None) -> FileType:
    """The type of a file called ``name``, or UnsupportedFileError saying why Notion would
    refuse it. ``into``: the kind of an existing block the file replaces (an image block
    takes images only; a file block takes anything). Call it before any byte is written."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_FILENAME_BYTES:
        raise UnsupportedFileError(
            f"{name[:40]!r}...: Notion takes file names of at most {MAX_FILENAME_BYTES} bytes"
        )
    stem, dot, extension = name.rpartition(".")
    extension = extension.lower()
    if not dot or not stem or not extension:
        raise UnsupportedFileError(
            f"{name!r} has no extension: Notion cannot tell its type and refuses the upload"
        )
    content_type = SUPPORTED_TYPES.get(extension)
    if content_type is None:
        raise UnsupportedFileError(f"{name!r}: Notion does not take .{extension} files")
    if into is not None:
        if into not in BLOCK_KINDS:
            raise UnsupportedFileError(f"a {into} block does not hold an uploaded file")
        if not _fits(into, content_type):
            raise UnsupportedFileError(
                f"{name!r} ({content_type}) cannot go into the {into} block it would replace"
            )
    return FileType(extension, content_type, block_kind_for(content_type))
