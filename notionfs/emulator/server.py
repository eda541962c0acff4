"""The whole Notion emulator: the API on one loopback port, the signed-URL file host on another."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

import httpx

from notionfs.emulator.faults import ApiCounters, ApiFaults
from notionfs.emulator.feed import ChangeFeed, WorkspaceChanges
from notionfs.emulator.filehost import FileHost
from notionfs.emulator.httpserver import TrackingServer
from notionfs.emulator.index import WorkspaceIndex
from notionfs.emulator.model import FileSpec, Workspace
from notionfs.emulator.uploads import UploadStore
from notionfs.emulator.wan import NO_WAN, WanConditions, delay
from notionfs.emulator.writes import WritableApi

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as api.notion.com
    # Headers and body go out in two writes; without this, Nagle plus delayed ACKs
    # add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _ApiServer

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        raw_body = self.rfile.read(length) if length > 0 else b""
        # The latency is waited out here, on this connection's thread before the API takes
        # any lock, so concurrent calls overlap as they do over a real network.
        delay(self.server.api.faults.latency_s)
        response = self.server.api.handle(
            self.command, self.path, dict(self.headers.items()), raw_body
        )
        if self.server.api.take_cut():
            # Fault: the write was applied, but the client never hears back.
            self.close_connection = True
            return
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("api %s " + format, self.address_string(), *args)


class _ApiServer(TrackingServer):
    label = "api"
    allow_reuse_address = True  # resume_api rebinds the same port at once

    def __init__(self, address: tuple[str, int], api: WritableApi) -> None:
        self.api = api
        super().__init__(address, _ApiHandler)


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the emulator only listens on loopback addresses, not {host!r}")


class Emulator:
    """A local Notion: serves ``workspace`` live through the API and a signed-URL file host.

    Tests may mutate the workspace and then call ``refresh()``, or change it as Notion
    would through ``changes`` (edit times, search lag); ``feed`` holds the switches for how
    changes are reported. ``faults`` and ``filehost.faults`` make it misbehave, ``counters``
    and ``filehost.counters`` record. The integration may write (pages, blocks, file uploads)
    unless ``read_only``; ``uploads`` holds the file uploads and the workspace's plan ("free"
    or "paid").
    ``wan`` adds a wide-area network's delays and bandwidth (see ``wan.WanConditions``), at
    construction or while serving; ``faults.latency_s`` and ``filehost.link`` hold them.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        token: str = "secret_emulator_token",
        host: str = "127.0.0.1",
        port: int = 0,
        files_port: int = 0,
        expiry_s: float = 3600.0,
        rate_limit_rps: float = 0.0,
        rate_limit_burst: int = 10,
        short_pages: bool = True,
        read_only: bool = False,
        plan: str = "paid",
        feed: ChangeFeed | None = None,
        wan: WanConditions = NO_WAN,
    ) -> None:
        _check_loopback(host)
        self.workspace = workspace
        self._host = host
        self._port = port
        self._rate_limit_defaults = (rate_limit_rps, rate_limit_burst)
        self._wan_default = wan
        self.filehost = FileHost(
            host=host,
            port=files_port,
            ttfb_s=wan.ttfb_s,
            conn_bandwidth_bps=wan.conn_bandwidth_bps,
        )
        self.faults = ApiFaults(
            rate_limit_rps=rate_limit_rps,
            rate_limit_burst=rate_limit_burst,
            latency_s=wan.api_latency_s,
        )
        self.counters = ApiCounters()
        self.uploads = UploadStore(plan=plan, fetch=self._fetch_external)
        self._api = WritableApi(
            self._reindex(),
            reindex=self._reindex,
            uploads=self.uploads,
            read_only=read_only,
            token=token,
            signer=self.filehost,
            faults=self.faults,
            counters=self.counters,
            expiry_s=expiry_s,
            short_pages=short_pages,
            feed=feed if feed is not None else ChangeFeed(),
        )
        self.feed.use_clock(self.uploads.now)
        self.changes = WorkspaceChanges(self)
        self._server: _ApiServer | None = None
        self._started = False
        self._lifecycle_lock = threading.Lock()
        self.api_url = ""

    # ---- settings readable and settable at runtime -----------------------------------------

    @property
    def token(self) -> str:
        return self._api.token

    @token.setter
    def token(self, value: str) -> None:
        self._api.token = value

    @property
    def expiry_s(self) -> float:
        """Lifetime of the presigned URLs minted from now on."""
        return self._api.expiry_s

    @expiry_s.setter
    def expiry_s(self, value: float) -> None:
        self._api.expiry_s = value

    @property
    def short_pages(self) -> bool:
        return self._api.short_pages

    @short_pages.setter
    def short_pages(self, value: bool) -> None:
        self._api.short_pages = value

    @property
    def read_only(self) -> bool:
        """Whether writes answer 403, as for an integration that may only read content."""
        return self._api.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._api.read_only = value

    @property
    def clock(self) -> Callable[[], datetime]:
        """Now (an aware datetime) for writes, uploads and ``changes``: creation, edit and
        expiry times, and when search catches up with an edit."""
        return self.uploads.clock

    @clock.setter
    def clock(self, value: Callable[[], datetime]) -> None:
        self.uploads.clock = value

    @property
    def feed(self) -> ChangeFeed:
        """How changes are reported: rounded times, search lag, API edits, the clock."""
        return self._api.feed

    @feed.setter
    def feed(self, value: ChangeFeed) -> None:
        value.use_clock(self.uploads.now)
        self._api.feed = value

    @property
    def wan(self) -> WanConditions:
        """The network's conditions now: API latency, file-host TTFB and bandwidth."""
        link = self.filehost.link
        return WanConditions(self.faults.latency_s, link.ttfb_s, link.conn_bandwidth_bps)

    @wan.setter
    def wan(self, value: WanConditions) -> None:
        self.faults.latency_s = value.api_latency_s
        self.filehost.link.ttfb_s = value.ttfb_s
        self.filehost.link.conn_bandwidth_bps = value.conn_bandwidth_bps

    @property
    def files_url(self) -> str:
        return self.filehost.base_url

    @property
    def index(self) -> WorkspaceIndex:
        return self._api.index

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        with self._lifecycle_lock:
            if not self._started:
                self.filehost.start()
                self._listen()
                self._started = True
        return self

    def stop(self) -> None:
        with self._lifecycle_lock:
            if self._started:
                self._close_listener()
                self.filehost.stop()
                self._started = False

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def pause_api(self) -> None:
        """Stop listening and cut open connections: clients get "connection refused"."""
        with self._lifecycle_lock:
            self._close_listener()

    def resume_api(self) -> None:
        """Listen again on the same port."""
        with self._lifecycle_lock:
            if self._started and self._server is None:
                self._listen()

    def _listen(self) -> None:
        server = _ApiServer((self._host, self._port), self._api)
        self._port = server.server_address[1]
        self.api_url = f"http://{self._host}:{self._port}"
        self._api.base_url = self.api_url
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"notion-emulator-api:{self._port}",
            daemon=True,
        )
        thread.start()
        self._server = server
        logger.info("Notion emulator API listening on %s", self.api_url)

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()

    # ---- test controls -------------------------------------------------------------------

    def reset(self) -> None:
        """API faults, counters and the rate limiter, and the file host's, back to defaults
        (the rate limit and WAN conditions given at construction)."""
        rps, burst = self._rate_limit_defaults
        self.faults.reset(
            rate_limit_rps=rps, rate_limit_burst=burst, latency_s=self._wan_default.api_latency_s
        )
        self.counters.reset()
        self._api.bucket.reset()
        self.filehost.reset()  # its link conditions too: those given at construction

    def refresh(self) -> None:
        """Re-index after the workspace changed: new ids, new or replaced files."""
        self._api.refresh()

    def editing(self) -> AbstractContextManager[None]:
        """Change the workspace model inside, then re-index; requests wait meanwhile, so none
        sees a half-made change (``changes`` edits this way)."""
        return self._api.editing()

    def reading(self) -> AbstractContextManager[None]:
        """Read the workspace model inside while no write request is half applied (a test
        looking at what Notion holds now)."""
        return self._api.reading()

    def remote_edit(
        self,
        object_id: str,
        *,
        data: bytes | None = None,
        title: str | None = None,
        text: str | None = None,
    ) -> None:
        """Edit a page or block as another person would (see WritableApi.remote_edit)."""
        self._api.remote_edit(object_id, data=data, title=title, text=text)

    def _fetch_external(self, url: str) -> bytes:
        """An external_url import: only loopback hosts answer (the emulator has no network)."""
        host = httpx.URL(url).host
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"cannot reach {host} from the emulator")
        with httpx.Client(timeout=10.0, verify=False, follow_redirects=True) as client:
            response = client.get(url)
            response.raise_for_status()
            return response.content

    def _reindex(self) -> WorkspaceIndex:
        self.workspace.assign_ids()
        index = WorkspaceIndex(self.workspace)
        for spec in index.files.values():
            self.filehost.register(spec)
        return index

    def touch(self, obj: Any) -> None:
        """Mark ``obj`` edited now (``clock``) and refresh."""
        self.changes.touch(obj)

    def file_spec(self, file_id: str) -> FileSpec:
        spec = self._api.index.file(file_id)
        if spec is None:
            raise KeyError(file_id)
        return spec

    def api_transport(self) -> httpx.MockTransport:
        """An in-process httpx transport to the API (no socket). File URLs in its answers
        point at the file host, which serves only after ``start()``."""

        def handle(request: httpx.Request) -> httpx.Response:
            delay(self.faults.latency_s)
            answer = self._api.handle(
                request.method,
                request.url.raw_path.decode("ascii"),
                request.headers,
                request.read(),
            )
            if self._api.take_cut():
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            return httpx.Response(answer.status, json=answer.body, headers=answer.headers)

        return httpx.MockTransport(handle)
