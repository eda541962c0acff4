"""Who is waiting: calls made for a program blocked on the mount (the default) go first;
background work (prefetching folders, change-feed polls, re-listing behind an answer,
rendering in the background) marks itself and takes only the budget nobody waits for.

A background piece of work that a program comes to wait on (a folder being prefetched
when the person opens it) is promoted: its ``Priority`` is shared by every call it makes,
on whatever thread, so flipping it makes the rest of its calls foreground calls.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["Priority", "background", "current", "in_background"]


class Priority:
    """The priority of one piece of background work; ``promote`` makes it foreground."""

    __slots__ = ("background",)

    def __init__(self) -> None:
        self.background = True

    def promote(self) -> None:
        self.background = False


_CURRENT: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "priority", default=None
)


def current() -> Priority | None:
    """The background work this call belongs to, or None (a program waits on it)."""
    return _CURRENT.get()


def in_background() -> bool:
    priority = _CURRENT.get()
    return priority is not None and priority.background


@contextlib.contextmanager
def background() -> Iterator[Priority]:
    """API calls made inside are background calls (see TokenBucket.acquire)."""
    priority = Priority()
    token = _CURRENT.set(priority)
    try:
        yield priority
    finally:
        _CURRENT.reset(token)
