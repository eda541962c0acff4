"""The write endpoints the upload engine calls: File Upload API, block and page writes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from notionfs.client import NotionClient
from notionfs.errors import NotFoundError
from notionfs.models import MalformedResponse, normalize_id

__all__ = ["UploadInfo", "WriteApi", "UNKNOWN_LIMIT"]

logger = logging.getLogger(__name__)

UNKNOWN_LIMIT = None
"""``WriteApi.max_file_bytes`` when Notion does not tell (2022-06-28 answers lack it)."""


def _path_id(raw: str) -> str:
    return quote(normalize_id(raw), safe="")


@dataclass(frozen=True)
class UploadInfo:
    """The fields of a file_upload object the engine reads."""

    id: str
    status: str  # pending | uploaded | expired | failed
    created_time: str | None
    expiry_time: str | None
    parts_total: int | None
    parts_sent: int | None
    content_length: int | None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> UploadInfo:
        if data.get("object") != "file_upload" or not isinstance(data.get("id"), str):
            raise MalformedResponse("expected a file_upload object")
        parts = data.get("number_of_parts")
        total = sent = None
        if isinstance(parts, Mapping):
            total, sent = parts.get("total"), parts.get("sent")
        length = data.get("content_length")
        return cls(
            id=data["id"],
            status=str(data.get("status", "")),
            created_time=data.get("created_time"),
            expiry_time=data.get("expiry_time"),
            parts_total=total if isinstance(total, int) else None,
            parts_sent=sent if isinstance(sent, int) else None,
            content_length=length if isinstance(length, int) else None,
        )


class WriteApi:
    """Notion's write calls over a NotionClient (its rate limiter, retry policy and typed
    errors, shared with the reads). Answers stay raw JSON objects here: the engine reads
    the few fields it needs, and the signed URLs in them go no further."""

    def __init__(self, client: NotionClient) -> None:
        self.client = client
        self._limit_lock = threading.Lock()
        self._limit_known = False
        self._limit: int | None = None

    # ---- the workspace's limit -------------------------------------------------------------

    def max_file_bytes(self) -> int | None:
        """users/me ``bot.workspace_limits.max_file_upload_size_in_bytes``, asked once;
        None when Notion does not say (then no limit is assumed: Notion's refusal speaks)."""
        with self._limit_lock:
            if self._limit_known:
                return self._limit
        me = self.client.request("GET", "/v1/users/me")
        bot = me.get("bot") if isinstance(me.get("bot"), Mapping) else {}
        limits = bot.get("workspace_limits") if isinstance(bot, Mapping) else None
        value = limits.get("max_file_upload_size_in_bytes") if isinstance(limits,
                                                                           Mapping) else None
        limit = value if isinstance(value, int) and not isinstance(value, bool) else None
        with self._limit_lock:
            self._limit, self._limit_known = limit, True
        logger.info("workspace upload limit: %s", "unknown" if limit is None else
                    f"{limit} bytes per file")
        return limit

    # ---- File Upload API ---------------------------------------------------------------------

    def create_upload(
        self, *, filename: str, content_type: str, parts: int | None = None
    ) -> UploadInfo:
        body: dict[str, Any] = {"filename": filename, "content_type": content_type}
        if parts is None:
            body["mode"] = "single_part"
        else:
            body.update(mode="multi_part", number_of_parts=parts)
        return UploadInfo.parse(self.client.request("POST", "/v1/file_uploads", body=body))

    def send(
        self,
        upload_id: str,
        reader: Any,
        *,
        filename: str,
        content_type: str,
        part_number: int | None = None,
    ) -> UploadInfo:
        """Send the whole file (single_part) or one part. Repeating a send stores the same
        bytes again, so lost answers and 5xx are retried as the policy allows."""
        fields = {} if part_number is None else {"part_number": str(part_number)}
        answer = self.client.request_form(
            f"/v1/file_uploads/{_path_id(upload_id)}/send",
            fields=fields,
            file=(filename, reader, content_type),
            idempotent=True,
        )
        return UploadInfo.parse(answer)

    def complete(self, upload_id: str) -> UploadInfo:
        path = f"/v1/file_uploads/{_path_id(upload_id)}/complete"
        return UploadInfo.parse(self.client.request("POST", path, body={}))

    def get_upload(self, upload_id: str) -> UploadInfo | None:
        """The upload, or None when Notion no longer knows it."""
        try:
            answer = self.client.request("GET", f"/v1/file_uploads/{_path_id(upload_id)}")
        except NotFoundError:
            return None
        return UploadInfo.parse(answer)

    # ---- blocks ------------------------------------------------------------------------------

    def append_children(self, parent_id: str, children: list[dict[str, Any]]) -> list[dict[str,
                                                                                      Any]]:
        """Append at the end of ``parent_id``; the new blocks as Notion answers them."""
        answer = self.client.request("PATCH", f"/v1/blocks/{_path_id(parent_id)}/children",
                                     body={"children": children})
        results = answer.get("results")
        if not isinstance(results, list):
            raise MalformedResponse("append: no results in the answer")
        return [r for r in results if isinstance(r, dict)]

    def get_block(self, block_id: str) -> dict[str, Any]:
        return self.client.request("GET", f"/v1/blocks/{_path_id(block_id)}")

    def update_block(self, block_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("PATCH", f"/v1/blocks/{_path_id(block_id)}", body=body)

    def delete_block(self, block_id: str) -> dict[str, Any]:
        return self.client.request("DELETE", f"/v1/blocks/{_path_id(block_id)}")

    def children(self, block_id: str) -> Iterator[dict[str, Any]]:
        """Every direct child of a page or block, raw, page by page."""
        yield from self.client.paginate("GET", f"/v1/blocks/{_path_id(block_id)}/children")

    # ---- pages -------------------------------------------------------------------------------

    def get_page(self, page_id: str) -> dict[str, Any]:
        return self.client.request("GET", f"/v1/pages/{_path_id(page_id)}")

    def update_page(self, page_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("PATCH", f"/v1/pages/{_path_id(page_id)}", body=body)

    def create_page(self, parent: Mapping[str, str], title: str) -> dict[str, Any]:
        """A new page titled ``title`` under ``parent`` (``{"page_id": ...}``,
        ``{"data_source_id": ...}`` or, before data sources, ``{"database_id": ...}``).
        The title goes to the property with id ``title``: every database's title property
        has that id, so no schema is read first."""
        body = {"parent": dict(parent), "properties": _title(title)}
        return self.client.request("POST", "/v1/pages", body=body)

    def rename_page(self, page_id: str, title: str) -> dict[str, Any]:
        return self.update_page(page_id, {"properties": _title(title)})

    def trash_page(self, page_id: str) -> dict[str, Any]:
        """Move a page to Notion's trash (restorable there for 30 days)."""
        return self.update_page(page_id, {"in_trash": True})

    def move_page(self, page_id: str, parent: Mapping[str, str]) -> dict[str, Any]:
        """Move a page under another page or data source."""
        return self.client.request("POST", f"/v1/pages/{_path_id(page_id)}/move",
                                   body={"parent": dict(parent)})

    def rename_file_block(self, block_id: str, kind: str, name: str) -> dict[str, Any]:
        """Change the name a file block shows (its bytes stay)."""
        return self.update_block(block_id, {kind: {"name": name}})


def _title(title: str) -> dict[str, Any]:
    return {"title": {"title": [{"type": "text", "text": {"content": title}}]}}
