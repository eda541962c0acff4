"""The thinnest FUSE file over HTTP that Python can serve: a bound for the sequential read.

One file, ``big.bin``, read through one ranged GET on the standard library's HTTP client:
each of the kernel's reads is answered with the next bytes of that one stream (received
straight into a ``bytes`` object and handed to the binding as it is). No cache, no
read-ahead of its own, no threads but the binding's, no metadata: what is left is what any
Python filesystem on this binding pays per byte (a receive, the binding's copy into
libfuse's buffer, the reply to the kernel) and per request (a call into Python).
``scripts/bench`` mounts it beside notionfs, over the same binding, with the same request
size and read-ahead, so the ratio between the two shows what notionfs adds to that floor.

Run as a script: ``thinpipe.py MOUNTPOINT SIZE`` with the file's URL on standard input (a
signed URL stays out of the process list).
"""

from __future__ import annotations

import errno
import http.client
import stat
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from notionfs.fusebind import load_binding  # noqa: E402

READ_BYTES = 1 << 20  # libfuse 3's request size, as notionfs asks for it
NAME = "big.bin"
_IN_ORDER_S = 1.0  # how long a read ahead of the stream waits for the reads before it


class ThinPipe:
    """The operations: a folder with one file, read from one stream."""

    def __init__(self, url: str, size: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self._host, self._port = parts.hostname or "", parts.port or 80
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        self._size = size
        self._turn = threading.Condition()
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._at: int | None = None  # where the stream is
        self.requests = 0

    def init_with_config(self, conn: Any, config: Any) -> None:
        if conn is not None:
            conn.max_read = READ_BYTES
            conn.max_readahead = READ_BYTES

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
        if path == "/" + NAME:
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": self._size}
        raise OSError(errno.ENOENT, "")

    def readdir(self, path: str, fh: Any, plus: bool = False) -> list[tuple[str, None, int]]:
        return [(".", None, 0), ("..", None, 0), (NAME, None, 0)]

    def init(self, path: str) -> None:
        pass

    def access(self, path: str, mode: int) -> int:
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {}

    def opendir(self, path: str) -> int:
        return 0

    def releasedir(self, path: str, fi: Any) -> int:
        return 0

    def open(self, path: str, fi: Any) -> int:
        return 0

    def release(self, path: str, fi: Any) -> int:
        return 0

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        size = max(0, min(size, self._size - offset))
        with self._turn:
            # The kernel's read-ahead arrives on several threads: one a little ahead of the
            # stream waits for those before it rather than starting a stream of its own.
            self._turn.wait_for(
                lambda: self._at is None or not self._at < offset <= self._at + 16 * READ_BYTES,
                timeout=_IN_ORDER_S,
            )
            if self._at != offset:
                self._reopen(offset)
            assert self._response is not None
            data = self._response.read(size)
            self._at = offset + len(data)
            self._turn.notify_all()
            return data

    def _reopen(self, offset: int) -> None:
        if self._connection is not None:
            self._connection.close()
        self.requests += 1
        self._connection = http.client.HTTPConnection(self._host, self._port, timeout=30)
        self._connection.request("GET", self._target, headers={"Range": f"bytes={offset}-"})
        self._response = self._connection.getresponse()
        if self._response.status != 206:
            raise OSError(errno.EIO, f"the host answered {self._response.status}")
        self._at = offset

    def destroy(self, path: str) -> None:
        print(f"thin pipe: {self.requests} ranged requests", file=sys.stderr, flush=True)


def main() -> None:
    mountpoint, size = sys.argv[1], int(sys.argv[2])
    url = sys.stdin.readline().strip()
    binding = load_binding("auto")
    options: dict[str, Any] = {"ro": True, "fsname": "thinpipe"}
    if binding.libfuse_major == 3:
        options["max_read"] = READ_BYTES
    else:
        options.update(max_read=128 * 1024, max_readahead=128 * 1024)
    binding.serve(ThinPipe(url, size), mountpoint, options)


if __name__ == "__main__":
    main()
