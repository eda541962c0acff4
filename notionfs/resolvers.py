"""URL refresh: a file's current signed URL, re-fetched from the object that owns the file."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from .client import NotionClient
from .errors import NotFoundError, StaleFileError
from .fileurl import Location, Resolver
from .models import FileRef

__all__ = ["location_of", "url_path", "block_file", "page_media", "property_file"]


def location_of(ref: FileRef) -> Location:
    return Location(url=ref.url, expires_at=ref.expires_at(), external=ref.kind == "external")


def url_path(url: str) -> str:
    """A file URL without its query: stable across refreshes of the same file."""
    return urlsplit(url).path


def block_file(client: NotionClient, block_id: str, ref: FileRef) -> Resolver:
    """The file of an image / video / audio / file / pdf block."""
    return _resolver(ref, lambda: client.get_block(block_id).file, "the file block")


def page_media(client: NotionClient, page_id: str, slot: str, ref: FileRef) -> Resolver:
    """A page's cover (``slot`` "cover") or icon image ("icon")."""

    def fetch() -> FileRef | None:
        page = client.get_page(page_id)
        if slot == "cover":
            return page.cover
        return page.icon.file if page.icon else None

    return _resolver(ref, fetch, f"the page's {slot}")


def property_file(client: NotionClient, page_id: str, prop_id: str, ref: FileRef) -> Resolver:
    """One entry of a row's ``files`` property, recognised by its URL path."""
    path = url_path(ref.url)

    def fetch() -> FileRef | None:
        for prop in client.get_page(page_id).files_properties:
            if prop.id == prop_id:
                # Same file: same URL path (the query string is what changes).
                return next((f for f in prop.files if url_path(f.url) == path), None)
        return None

    return _resolver(ref, fetch, "the files property")


def _resolver(ref: FileRef, fetch: Callable[[], FileRef | None], owner: str) -> Resolver:
    """Hands out the file's current signed URL; ``force`` asks Notion for a fresh one.

    A fresh URL with another path is another file (Notion gives a replaced file a new path):
    the open handle fails with ESTALE rather than mixing the bytes of two versions.
    The caller (RemoteFile) runs forced refreshes as one single flight per file.
    """
    current = [location_of(ref)]
    path = url_path(ref.url)

    def resolve(force: bool) -> Location:
        if force:
            fresh = fetch()
            if fresh is None:
                raise NotFoundError(404, "object_not_found", f"{owner} holds no file any more")
            if url_path(fresh.url) != path:
                raise StaleFileError(f"{owner} now holds another file: reopen it")
            current[0] = location_of(fresh)
        return current[0]

    return resolve
