"""File uploads of the emulated Notion API: create, send (one or many parts), complete, expire."""

from __future__ import annotations

import mimetypes
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notionfs.emulator.api import ApiFailure
from notionfs.emulator.index import dashed_id, id_key
from notionfs.emulator.model import FileSpec

__all__ = [
    "FREE_MAX_FILE_BYTES",
    "PAID_MAX_FILE_BYTES",
    "SINGLE_PART_MAX_BYTES",
    "PART_MIN_BYTES",
    "PART_MAX_BYTES",
    "MAX_PARTS",
    "UPLOAD_LIFETIME",
    "SUPPORTED_TYPES",
    "FileUpload",
    "FormFile",
    "UploadStore",
    "parse_form",
    "minute",
    "not_found",
]

# Notion's limits ("Working with files and media", "Uploading larger files"): a free
# workspace takes files up to 5 MiB, a paid one up to 5 GiB; single_part sends up to 20 MB;
# multi_part parts are 5-20 MiB except the last; 1..10000 parts; filenames up to 900 bytes.
FREE_MAX_FILE_BYTES = 5 * 1024 * 1024
PAID_MAX_FILE_BYTES = 5 * 1024 * 1024 * 1024
SINGLE_PART_MAX_BYTES = 20_000_000  # "20 MB": the stricter reading of the published cap
PART_MIN_BYTES = 5 * 1024 * 1024
PART_MAX_BYTES = 20 * 1024 * 1024
MAX_PARTS = 10_000
MAX_FILENAME_BYTES = 900
UPLOAD_LIFETIME = timedelta(hours=1)
STATUSES = ("pending", "uploaded", "expired", "failed")
MODES = ("single_part", "multi_part", "external_url")

# The file types the File Upload API accepts ("Working with files and media", supported file
# types): extension -> MIME type. Anything else is refused when the upload is created.
SUPPORTED_TYPES: dict[str, str] = {
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
}
# Types a MIME type may also be written as.
_ALIASES = {
    "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4", "image/x-icon": "image/vnd.microsoft.icon",
    "video/x-matroska": "video/webm", "application/x-pdf": "application/pdf",
}
_GENERIC_TYPES = ("application/octet-stream", "")


def minute(moment: datetime) -> datetime:
    """A moment as Notion stores object times: UTC, to the minute."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _validation(message: str) -> ApiFailure:
    return ApiFailure(400, "validation_error", message)


def not_found(upload_id: str) -> ApiFailure:
    return ApiFailure(
        404,
        "object_not_found",
        f"Could not find file_upload with ID: {dashed_id(upload_id)}. Make sure the relevant "
        "pages and databases are shared with your integration.",
    )


def _normal_type(content_type: str | None) -> str:
    plain = (content_type or "").split(";")[0].strip().lower()
    return _ALIASES.get(plain, plain)


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].lower()


# ---- multipart/form-data (RFC 7578), parsed with bytes.find: parts are up to 20 MiB -------


@dataclass(frozen=True)
class FormFile:
    """One field of a form: ``filename`` and ``content_type`` are set for file fields."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    head, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, raw = item.strip().partition("=")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"')
        params[key.strip().lower()] = raw
    return head.strip().lower(), params


def parse_form(content_type: str, body: bytes) -> dict[str, FormFile]:
    """The fields of a multipart/form-data body by name; raises ValueError when malformed."""
    kind, params = _header_params(content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        raise ValueError("not multipart/form-data with a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: dict[str, FormFile] = {}
    position = body.find(delimiter)
    if position < 0:
        raise ValueError("no boundary in the body")
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return fields  # the closing delimiter
        header_end = body.find(b"\r\n\r\n", position)
        if header_end < 0:
            raise ValueError("a part without headers")
        headers: dict[str, str] = {}
        for line in body[position:header_end].decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        end = body.find(b"\r\n" + delimiter, header_end + 4)
        if end < 0:
            raise ValueError("a part without a closing boundary")
        _, disposition = _header_params(headers.get("content-disposition", ""))
        field_name = disposition.get("name")
        if field_name is not None:
            fields[field_name] = FormFile(
                field_name,
                body[header_end + 4 : end],
                disposition.get("filename"),
                headers.get("content-type"),
            )
        position = end + 2


# ---- the upload objects -------------------------------------------------------------------


@dataclass
class FileUpload:
    """One file upload and where its bytes are. Times are UTC, to the minute."""

    id: str
    mode: str
    filename: str | None
    content_type: str | None
    created_time: datetime
    last_edited_time: datetime
    expiry_time: datetime | None
    number_of_parts: int | None = None
    status: str = "pending"
    content_length: int | None = None
    parts: dict[int, tuple[Path, int]] = field(default_factory=dict)  # number -> (file, size)
    parts_sent: int = 0
    path: Path | None = None  # the whole file, once uploaded
    attached: bool = False
    external_url: str | None = None
    import_result: dict[str, Any] | None = None
    in_trash: bool = False

    @property
    def size_sent(self) -> int:
        return sum(size for _, size in self.parts.values())


class UploadStore:
    """Every file upload of the emulated integration, with their bytes on disk.

    ``plan`` ("free" or "paid") sets the workspace's per-file limit, as ``users/me``
    tells it. ``clock`` (returning an aware datetime) decides creation and expiry;
    tests may replace it, or call ``expire_all_now()``.
    """

    def __init__(self, *, plan: str = "paid", fetch: Callable[[str], bytes] | None = None) -> None:
        self.plan = plan
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        # Reads an external_url's bytes (the emulator wires its own file host in); None:
        # every import fails, as an unreachable URL does.
        self.fetch = fetch
        self._uploads: dict[str, FileUpload] = {}
        self._lock = threading.RLock()
        self._dir = Path(tempfile.mkdtemp(prefix="notionfs-emulator-uploads-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)

    # ---- settings --------------------------------------------------------------------------

    @property
    def plan(self) -> str:
        return self._plan

    @plan.setter
    def plan(self, value: str) -> None:
        if value not in ("free", "paid"):
            raise ValueError(f"plan must be 'free' or 'paid', not {value!r}")
        self._plan = value

    @property
    def max_file_bytes(self) -> int:
        """users/me: bot.workspace_limits.max_file_upload_size_in_bytes."""
        return FREE_MAX_FILE_BYTES if self.plan == "free" else PAID_MAX_FILE_BYTES

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def close(self) -> None:
        """Delete every stored byte (also done when the store is collected)."""
        self._cleanup()

    # ---- test controls ---------------------------------------------------------------------

    def expire_all_now(self) -> None:
        """Every upload not yet attached expires at once, as an hour later."""
        with self._lock:
            now = minute(self.now())
            for upload in self._uploads.values():
                if upload.expiry_time is not None:
                    upload.expiry_time = min(upload.expiry_time, now)
                    self._check_expiry(upload)

    def get(self, upload_id: str) -> FileUpload | None:
        key = id_key(upload_id)
        with self._lock:
            upload = self._uploads.get(key) if key else None
            if upload is not None:
                self._check_expiry(upload)
            return upload

    def all(self) -> list[FileUpload]:
        """Every upload, newest first (the order GET /v1/file_uploads lists them)."""
        with self._lock:
            for upload in self._uploads.values():
                self._check_expiry(upload)
            return list(reversed(self._uploads.values()))

    # ---- create ------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> FileUpload:
        mode = body.get("mode", "single_part")
        if mode not in MODES:
            raise _validation(
                "body failed validation: body.mode should be `\"single_part\"`, "
                f"`\"multi_part\"`, or `\"external_url\"`, instead was `{_show(mode)}`."
            )
        filename = body.get("filename")
        if filename is not None and not isinstance(filename, str):
            raise _validation("body failed validation: body.filename should be a string.")
        content_type = body.get("content_type")
        if content_type is not None and not isinstance(content_type, str):
            raise _validation("body failed validation: body.content_type should be a string.")
        parts = body.get("number_of_parts")
        if mode == "multi_part":
            parts = _check_parts(parts)
            if not filename:
                raise _validation(
                    "body failed validation: body.filename should be defined when mode is "
                    "`multi_part`, instead was `undefined`."
                )
        elif parts is not None:
            raise _validation(
                "body failed validation: body.number_of_parts should be not present when "
                f"mode is `{mode}`."
            )
        external_url = body.get("external_url")
        if mode == "external_url":
            if not isinstance(external_url, str) or not external_url:
                raise _validation(
                    "body failed validation: body.external_url should be defined when mode is "
                    "`external_url`, instead was `undefined`."
                )
            if not filename:
                raise _validation(
                    "body failed validation: body.filename should be defined when mode is "
                    "`external_url`, instead was `undefined`."
                )
        elif external_url is not None:
            raise _validation(
                "body failed validation: body.external_url should be not present when mode is "
                f"`{mode}`."
            )
        filename, content_type = _check_type(filename, content_type)
        now = minute(self.now())
        upload = FileUpload(
            id=str(uuid.uuid4()),
            mode=mode,
            filename=filename,
            content_type=content_type,
            created_time=now,
            last_edited_time=now,
            expiry_time=now + UPLOAD_LIFETIME,
            number_of_parts=parts,
            external_url=external_url,
        )
        with self._lock:
            self._uploads[id_key(upload.id) or upload.id] = upload
        return upload

    def run_import(self, upload: FileUpload) -> None:
        """Fetch an external_url upload's bytes (Notion does it in the background; the
        create answer still says pending, later reads say uploaded or failed)."""
        assert upload.external_url is not None
        try:
            if self.fetch is None:
                raise OSError("no route to the URL")
            data = self.fetch(upload.external_url)
        except Exception as exc:  # any failure to import is the upload's "failed" state
            with self._lock:
                upload.status = "failed"
                upload.expiry_time = None
                upload.import_result = {
                    "type": "error",
                    "error": {
                        "type": "download_error",
                        "code": "download_failed",
                        "message": f"Failed to download the file: {type(exc).__name__}",
                        "parameter": "external_url",
                        "status_code": None,
                    },
                    "imported_time": _iso_offset(self.now()),
                }
            return
        with self._lock:
            self._store_whole(upload, data)
            if upload.content_length is not None and upload.content_length > self.max_file_bytes:
                upload.status = "failed"
            upload.import_result = {
                "type": "success",
                "success": {},
                "imported_time": _iso_offset(self.now()),
            }

    # ---- send and complete -------------------------------------------------------------------

    def send(
        self, upload_id: str, content_type: str, body: bytes, fail_part: Callable[[int], int | None]
    ) -> FileUpload:
        """Store a single_part file or one part; ``fail_part(n)`` may fail part n (fault)."""
        upload = self._usable(upload_id, "send")
        if upload.mode == "external_url":
            raise _validation(
                "File uploads with mode `external_url` are imported by Notion and cannot be sent."
            )
        try:
            form = parse_form(content_type, body)
        except ValueError as exc:
            raise _validation(
                "Content-Type must be multipart/form-data with a boundary, and the body a valid "
                f"form: {exc}."
            ) from exc
        file = form.get("file")
        if file is None or file.filename is None and file.content_type is None and not file.data:
            raise _validation("body failed validation: body.file should be defined, instead was "
                              "`undefined`.")
        number = self._part_number(upload, form.get("part_number"))
        sent_type = _normal_type(file.content_type)
        if upload.content_type and sent_type not in _GENERIC_TYPES:
            if sent_type != _normal_type(upload.content_type):
                raise _validation(
                    f"The content type of the file sent (`{sent_type}`) does not match the "
                    f"file upload's content type (`{upload.content_type}`)."
                )
        size = len(file.data)
        if upload.mode == "single_part":
            self._check_single(size)
            with self._lock:
                if upload.filename is None or upload.content_type is None:
                    name = upload.filename or file.filename
                    ctype = upload.content_type or (None if sent_type in _GENERIC_TYPES
                                                    else sent_type)
                    upload.filename, upload.content_type = _check_type(name, ctype)
                self._store_whole(upload, file.data)
                upload.last_edited_time = minute(self.now())
            return upload
        assert number is not None and upload.number_of_parts is not None
        status = fail_part(number)
        if status is not None:
            raise ApiFailure.for_status(status)
        self._check_part(upload, number, size)
        part_path = self._dir / f"{id_key(upload.id)}.part{number}"
        part_path.write_bytes(file.data)
        with self._lock:
            if upload.status != "pending":  # expired or completed while this part arrived
                part_path.unlink(missing_ok=True)
                raise self._not_pending(upload, "send")
            upload.parts[number] = (part_path, size)
            upload.parts_sent = len(upload.parts)
            upload.content_length = upload.size_sent
            upload.last_edited_time = minute(self.now())
        return upload

    def complete(self, upload_id: str) -> FileUpload:
        upload = self._usable(upload_id, "complete")
        if upload.mode != "multi_part":
            raise _validation(
                f"Only file uploads with mode `multi_part` can be completed; this one is "
                f"`{upload.mode}`."
            )
        assert upload.number_of_parts is not None
        with self._lock:
            missing = [n for n in range(1, upload.number_of_parts + 1) if n not in upload.parts]
            if missing:
                raise _validation(
                    f"Expected {upload.number_of_parts} parts to be sent before completing the "
                    f"file upload, but received {len(upload.parts)}. Missing part numbers: "
                    f"{', '.join(str(n) for n in missing[:20])}."
                )
            parts = [upload.parts[n] for n in range(1, upload.number_of_parts + 1)]
            whole = self._dir / f"{id_key(upload.id)}.file"
            with open(whole, "wb") as out:
                for part_path, _ in parts:
                    with open(part_path, "rb") as piece:
                        shutil.copyfileobj(piece, out, 8 << 20)
                    part_path.unlink(missing_ok=True)
            upload.parts = {}
            upload.parts_sent = upload.number_of_parts
            upload.path = whole
            upload.content_length = whole.stat().st_size
            upload.status = "uploaded"
            upload.last_edited_time = minute(self.now())
        return upload

    # ---- attach ------------------------------------------------------------------------------

    def attach(self, upload_id: Any, name: str | None = None) -> FileSpec:
        """A new hosted FileSpec for an uploaded file, which stops its expiry; raises
        validation_error for ids that cannot be attached (unknown, pending, expired)."""
        if not isinstance(upload_id, str) or id_key(upload_id) is None:
            raise _validation(
                "body failed validation: file_upload.id should be a valid uuid, instead was "
                f"`{_show(upload_id)}`."
            )
        with self._lock:
            upload = self.get(upload_id)
            if upload is None:
                raise _validation(
                    f"Could not find file_upload with ID: {dashed_id(upload_id)}."
                )
            if upload.status != "uploaded" or upload.path is None:
                raise _validation(
                    f"The file upload with ID {dashed_id(upload_id)} has status "
                    f"`{upload.status}`; only an `uploaded` file upload can be attached."
                )
            upload.attached = True
            upload.expiry_time = None
            upload.last_edited_time = minute(self.now())
            return FileSpec(
                name=name or upload.filename or "file",
                path=upload.path,
                content_type=upload.content_type or "application/octet-stream",
                id=str(uuid.uuid4()),
            )

    def peek_type(self, upload_id: Any) -> str | None:
        """The content type of an upload, if it exists (for block-type checks)."""
        upload = self.get(upload_id) if isinstance(upload_id, str) else None
        return None if upload is None else upload.content_type

    # ---- rendering ---------------------------------------------------------------------------

    def render(
        self, upload: FileUpload, *, base_url: str, bot_id: str, archived: bool
    ) -> dict[str, Any]:
        """A file_upload object, keys in the order Notion sends them."""
        with self._lock:
            body: dict[str, Any] = {
                "object": "file_upload",
                "id": dashed_id(upload.id),
                "created_time": _iso(upload.created_time),
                "created_by": {"id": bot_id, "type": "bot"},
                "last_edited_time": _iso(upload.last_edited_time),
                "expiry_time": _iso(upload.expiry_time),
            }
            if upload.status == "pending":
                api = base_url or "https://api.notion.com"
                body["upload_url"] = f"{api}/v1/file_uploads/{dashed_id(upload.id)}/send"
            body.update(
                {
                    "in_trash": upload.in_trash,
                    "status": upload.status,
                    "filename": upload.filename,
                    "content_type": upload.content_type,
                    "content_length": upload.content_length,
                }
            )
            if upload.number_of_parts is not None:
                body["number_of_parts"] = {
                    "total": upload.number_of_parts,
                    "sent": upload.parts_sent,
                }
            if upload.import_result is not None:
                body["file_import_result"] = upload.import_result
            if archived:
                body["archived"] = upload.in_trash
            return body

    # ---- internals ---------------------------------------------------------------------------

    def _usable(self, upload_id: str, verb: str) -> FileUpload:
        upload = self.get(upload_id)
        if upload is None:
            raise not_found(upload_id)
        if upload.status != "pending":
            raise self._not_pending(upload, verb)
        return upload

    @staticmethod
    def _not_pending(upload: FileUpload, verb: str) -> ApiFailure:
        return _validation(
            f"Cannot {verb} file upload {dashed_id(upload.id)}: its status is "
            f"`{upload.status}`, expected `pending`."
        )

    def _part_number(self, upload: FileUpload, raw: FormFile | None) -> int | None:
        if upload.mode == "single_part":
            if raw is not None:
                raise _validation(
                    "body failed validation: body.part_number should be not present when the "
                    "file upload's mode is `single_part`."
                )
            return None
        assert upload.number_of_parts is not None
        text = raw.data.decode("utf-8", "replace").strip() if raw is not None else ""
        if raw is None:
            raise _validation(
                "body failed validation: body.part_number should be defined for a "
                "`multi_part` file upload, instead was `undefined`."
            )
        if not text.isdigit() or not 1 <= int(text) <= upload.number_of_parts:
            raise _validation(
                "body failed validation: body.part_number should be an integer between 1 and "
                f"{upload.number_of_parts} (the upload's number_of_parts), instead was "
                f"`\"{text}\"`."
            )
        return int(text)

    def _check_single(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise self._too_large(size)
        if size > SINGLE_PART_MAX_BYTES:
            raise _validation(
                f"The file is {size} bytes, larger than the {SINGLE_PART_MAX_BYTES} bytes a "
                "`single_part` upload can send. Use mode `multi_part` for larger files."
            )

    def _check_part(self, upload: FileUpload, number: int, size: int) -> None:
        assert upload.number_of_parts is not None
        if size > PART_MAX_BYTES:
            raise _validation(
                f"Part {number} is {size} bytes; each part must be at most {PART_MAX_BYTES} "
                "bytes (20 MiB)."
            )
        if number < upload.number_of_parts and size < PART_MIN_BYTES:
            raise _validation(
                f"Part {number} is {size} bytes; every part except the last must be at least "
                f"{PART_MIN_BYTES} bytes (5 MiB)."
            )
        with self._lock:
            others = sum(s for n, (_, s) in upload.parts.items() if n != number)
        if others + size > self.max_file_bytes:
            raise self._too_large(others + size)

    def _too_large(self, size: int) -> ApiFailure:
        return _validation(
            f"The file upload is {size} bytes, larger than this workspace's limit of "
            f"{self.max_file_bytes} bytes per file (max_file_upload_size_in_bytes)."
        )

    def _store_whole(self, upload: FileUpload, data: bytes) -> None:
        whole = self._dir / f"{id_key(upload.id)}.file"
        whole.write_bytes(data)
        upload.path = whole
        upload.content_length = len(data)
        upload.status = "uploaded"

    def _check_expiry(self, upload: FileUpload) -> None:
        """An upload not attached within its hour expires: it can no longer be used."""
        expiry = upload.expiry_time
        if expiry is None or upload.status not in ("pending", "uploaded"):
            return
        if self.now() < expiry:
            return
        upload.status = "expired"
        upload.expiry_time = None
        upload.last_edited_time = expiry
        for part_path, _ in upload.parts.values():
            part_path.unlink(missing_ok=True)
        if upload.path is not None:
            upload.path.unlink(missing_ok=True)
            upload.path = None


def _iso_offset(moment: datetime) -> str:
    """The form Notion gives file_import_result times: 2026-07-04T09:11:43.000+00:00."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _show(value: Any) -> str:
    return "undefined" if value is None else f'"{value}"' if isinstance(value, str) else str(value)


def _check_parts(raw: Any) -> int:
    if raw is None:
        raise _validation(
            "body failed validation: body.number_of_parts should be defined when mode is "
            "`multi_part`, instead was `undefined`."
        )
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise _validation("body failed validation: body.number_of_parts should be a number.")
    if raw < 1:
        raise _validation(
            "body failed validation: body.number_of_parts should be greater than or equal to "
            f"`1`, instead was `{raw}`."
        )
    if raw > MAX_PARTS:
        raise _validation(
            "body failed validation: body.number_of_parts should be less than or equal to "
            f"`{MAX_PARTS}`, instead was `{raw}`."
        )
    return raw


def _check_type(filename: str | None, content_type: str | None) -> tuple[str | None, str | None]:
    """(filename, content_type) after Notion's rules: the name at most 900 bytes, its
    extension and the content type supported and agreeing; a missing extension is added
    from the content type and a missing content type inferred from the extension."""
    if filename is not None and len(filename.encode("utf-8")) > MAX_FILENAME_BYTES:
        raise _validation(
            f"body failed validation: body.filename should be at most {MAX_FILENAME_BYTES} "
            f"bytes long, instead was {len(filename.encode('utf-8'))} bytes."
        )
    wanted = _normal_type(content_type)
    extension = _extension(filename)
    if extension:
        expected = SUPPORTED_TYPES.get(extension)
        if expected is None:
            raise _validation(
                f"The file extension `.{extension}` is not supported for file uploads."
            )
        if wanted and wanted not in _GENERIC_TYPES and wanted != expected:
            if mimetypes.guess_type(f"x.{extension}")[0] != wanted:
                raise _validation(
                    f"The content type `{content_type}` does not match the extension of the "
                    f"filename `{filename}` (expected `{expected}`)."
                )
            expected = wanted
        return filename, expected
    if wanted and wanted not in _GENERIC_TYPES:
        inferred = next((ext for ext, kind in SUPPORTED_TYPES.items() if kind == wanted), None)
        if inferred is None:
            raise _validation(f"The content type `{content_type}` is not supported for file "
                              "uploads.")
        return (f"{filename}.{inferred}" if filename else None), wanted
    if filename is not None:
        raise _validation(
            f"The filename `{filename}` has no extension and no content_type was given: "
            "Notion cannot tell the file's type."
        )
    return None, None
