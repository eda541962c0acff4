"""One error tree for notionfs, and the single table from error to errno."""

from __future__ import annotations

import errno

__all__ = [
    "NotionFSError",
    "ConfigError",
    "ApiError",
    "AuthError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "NetworkError",
    "DeadlineExceeded",
    "FileHostError",
    "UrlExpiredError",
    "RangeNotSatisfiable",
    "ResponseMismatch",
    "UnsafeUrlError",
    "StaleFileError",
    "StagingFullError",
    "FileTooLargeError",
    "UnsupportedFileError",
    "UploadPendingError",
    "UploadStillRunningError",
    "UploadFailedError",
    "ConflictError",
    "GeneratedFileError",
    "NotWritableError",
    "NoSuchPathError",
    "FolderNotEmptyError",
    "CrossFolderError",
    "errno_for",
]


class NotionFSError(Exception):
    """Base of every error notionfs raises on purpose."""


class ConfigError(NotionFSError):
    """Bad settings or environment: no token, bad mountpoint, no FUSE."""


class ApiError(NotionFSError):
    """The Notion API answered with an error object.

    ``code`` is Notion's error code (``object_not_found``, ``rate_limited``, ...),
    ``status`` the HTTP status, ``request_id`` Notion's request id when given.
    """

    def __init__(
        self, status: int, code: str, message: str, request_id: str | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class AuthError(ApiError):
    """401 unauthorized / 403 restricted_resource: the token is bad or lacks access."""


class NotFoundError(ApiError):
    """404 object_not_found: missing, or not shared with the integration."""


class RateLimitedError(ApiError):
    """429 rate_limited, still so after the retries allowed."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id)
        self.retry_after_s = retry_after_s


class ServerError(ApiError):
    """5xx or 529 from the API, still so after the retries allowed."""


class NetworkError(NotionFSError):
    """Could not reach a host: connection refused, DNS, TLS, timeout."""


class DeadlineExceeded(NotionFSError):
    """A filesystem call ran past its deadline."""


class FileHostError(NotionFSError):
    """A file host answered with something we cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UrlExpiredError(FileHostError):
    """403 from the file host even after refreshing the signed URL."""


class RangeNotSatisfiable(FileHostError):
    """416: the range starts past the end of the object."""


class ResponseMismatch(FileHostError):
    """The host's bytes do not match what was asked (wrong range, short or long body)."""


class UnsafeUrlError(FileHostError):
    """An external URL with a scheme other than http/https, or a redirect to one."""


class StaleFileError(NotionFSError):
    """The file behind an open handle was replaced in Notion: reopen it to read the new one."""


class StagingFullError(NotionFSError):
    """The staging area (bytes waiting to be uploaded) is at its bound, or its disk is full."""


class FileTooLargeError(NotionFSError):
    """A file would pass the workspace's upload limit (max_file_upload_size_in_bytes)."""


class UnsupportedFileError(NotionFSError):
    """Notion refuses this file name or type (extension, content type, name length), or
    this block kind cannot show it; known before any byte is written."""


class UploadPendingError(NotionFSError):
    """An upload did not finish now; it stays journalled and is retried in the background."""


class UploadStillRunningError(UploadPendingError):
    """An upload outlasted the wait with no attempt failed: it goes on in the background."""


class UploadFailedError(NotionFSError):
    """Notion refused an upload or its attachment for good; the staged copy is kept."""


class NoSuchPathError(NotionFSError):
    """A path the mount does not show (a write named a file or folder that is not there)."""


class FolderNotEmptyError(NotionFSError):
    """A folder removed while it still shows files or folders of its own."""


class CrossFolderError(NotionFSError):
    """A rename that would move a file to another page: copy and delete instead."""


class NotWritableError(NotionFSError):
    """What the mount cannot write: covers, icons, properties, fixed names, other folders."""


class GeneratedFileError(NotWritableError):
    """A generated file (index.md / index.csv): rendered from Notion, never written."""


class ConflictError(UploadFailedError):
    """The file changed in Notion since it was opened: replacing it would lose that version."""


_ERRNO: list[tuple[type[BaseException], int]] = [
    (StagingFullError, errno.ENOSPC),
    (GeneratedFileError, errno.EACCES),
    (NotWritableError, errno.EPERM),
    (NoSuchPathError, errno.ENOENT),
    (FolderNotEmptyError, errno.ENOTEMPTY),
    (CrossFolderError, errno.EXDEV),
    (FileTooLargeError, errno.EFBIG),
    (UnsupportedFileError, errno.EPERM),
    (UploadPendingError, errno.EIO),
    (UploadFailedError, errno.EIO),
    (NotFoundError, errno.ENOENT),
    (StaleFileError, errno.ESTALE),
    (AuthError, errno.EACCES),
    (DeadlineExceeded, errno.EIO),
    (RangeNotSatisfiable, errno.EIO),
    (UnsafeUrlError, errno.EACCES),
    (FileHostError, errno.EIO),
    (RateLimitedError, errno.EAGAIN),
    (ServerError, errno.EIO),
    (NetworkError, errno.EIO),
    (ApiError, errno.EIO),
    (ConfigError, errno.EINVAL),
]


def errno_for(exc: BaseException) -> int:
    """The errno a filesystem caller sees for ``exc`` (EIO for anything unforeseen)."""
    for cls, code in _ERRNO:
        if isinstance(exc, cls):
            return code
    return errno.EIO
