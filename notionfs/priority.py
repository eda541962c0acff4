"""Who is waiting: calls made for a program blocked on the mount (the default) go first;
background work (prefetching folders, change-feed polls, re-listing behind an answer,
rendering in the background) marks itself and takes only the budget nobody waits for."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["background", "in_background"]

_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("background", default=False)


def in_background() -> bool:
    return _BACKGROUND.get()


@contextlib.contextmanager
def background() -> Iterator[None]:
    """API calls made inside are background calls (see TokenBucket.acquire)."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)
