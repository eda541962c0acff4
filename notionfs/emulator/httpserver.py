"""A threaded HTTP server that knows its open connections and drops them quietly."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)


class TrackingServer(ThreadingHTTPServer):
    """Tracks live connections so they can be cut at once (on stop, or to play "Notion is
    down"), and treats a client dropping its connection as routine, not a traceback."""

    daemon_threads = True
    label = "server"

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def close_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            logger.debug("%s connection dropped", self.label, exc_info=True)
            return
        logger.error("%s request failed", self.label, exc_info=True)

    def close_connections(self) -> None:
        """Shut every open connection down, so blocked handlers return and clients see EOF."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
