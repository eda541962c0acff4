"""Where one file's bytes are now: its URL kept usable, and requests to it that refresh and retry.

Notion-hosted URLs are presigned: they expire and change on every API fetch. A URL is
refreshed when it comes within a margin of its expiry, or when the host answers 403 (once,
however many readers saw the 403); 429, 5xx and transport errors are retried as the shared
policy says (retry.py: reads, so every transient failure). Redirects are followed here, at
most ``MAX_REDIRECTS``, to http and https only.

URL refreshes are single flights (flight.py): one call to Notion serves every reader that
needs it, each waiting at most ``op_deadline_s``, and no lock is held while Notion or the
host is asked. ``_location_lock`` guards only the current location and when it was obtained;
it is the innermost lock, never held across a call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .config import Settings
from .errors import FileHostError, NetworkError, NotionFSError, UrlExpiredError
from .filehttp import NO_AUTH, check_scheme, keep_dot_segments, redact_url
from .flight import SingleFlight
from .retry import RetryPolicy

__all__ = ["MAX_REDIRECTS", "FileUrl", "Location", "Resolver"]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Location:
    """Where a file's bytes are now. ``expires_at`` is epoch seconds; None never expires."""

    url: str
    expires_at: float | None
    external: bool = False


Resolver = Callable[[bool], Location]
"""``resolve(force_refresh)``: the current Location; True asks the Notion API again."""


class FileUrl:
    """One file's current URL, refreshed as it needs, and the requests made to it."""

    def __init__(
        self,
        key: str,
        resolve: Resolver,
        http: httpx.Client,
        settings: Settings,
        retry: RetryPolicy,
    ) -> None:
        self.key = key  # names the file in logs and errors; never the signed URL
        self._resolve = resolve
        self._http = http
        self._settings = settings
        self._retry = retry
        # Keyed by the URL being replaced ("" before the first): every reader that needs
        # that URL replaced, after its expiry or a 403, shares one call to Notion.
        self._refreshes: SingleFlight[str, Location] = SingleFlight(clock=time.monotonic)
        self._location_lock = threading.Lock()
        self._location: Location | None = None
        self._obtained_at = 0.0  # when the current location was handed to us

    # ---- location ----------------------------------------------------------------------

    def offer(self, location: Location) -> None:
        """A URL for this file from a fresh listing: adopt it when it outlives the one held,
        so an expiry costs no API call of its own."""
        with self._location_lock:
            held = self._location
            if (
                held is not None
                and location.expires_at is not None
                and held.expires_at is not None
                and location.expires_at > held.expires_at
                and urlsplit(location.url).path == urlsplit(held.url).path
            ):
                self._adopt(location)

    def _held(self) -> tuple[Location | None, float]:
        with self._location_lock:
            return self._location, self._obtained_at

    def current(self) -> Location:
        """The location to use now, refreshed first when it expires within the margin.

        While a refresh is under way, a reader whose URL has not expired yet goes on with it
        instead of waiting for Notion; only the reader that started the refresh (and readers
        whose URL is past its expiry) wait for the new one.
        """
        location, obtained_at = self._held()
        if location is None:
            self._replace(None, force=False)
            location, obtained_at = self._held()
            assert location is not None
        if not self._expiring(location, obtained_at):
            return location
        if self._refreshes.in_flight(location.url) and not self._expired(location):
            return location
        logger.debug("%s: URL expires within the margin; refreshing", self.key)
        return self._replace(location, force=True)

    def _replace(self, old: Location | None, *, force: bool) -> Location:
        """The location that replaces ``old`` (None: the first one), asked for once
        however many readers need it; each waits at most ``op_deadline_s``."""

        def work() -> Location:
            held = self._held()[0]
            if held is not None and (old is None or held.url != old.url):
                return held  # replaced meanwhile (a refresh that just landed, or an offer)
            location = self._resolve(force)  # a Notion call: no lock held
            with self._location_lock:
                self._adopt(location)
            return location

        return self._refreshes.run(
            "" if old is None else old.url,
            work,
            timeout_s=self._settings.op_deadline_s,
            what=f"{self.key}: URL refresh",
        )

    def _adopt(self, location: Location) -> None:
        """Take ``location`` as current (``_location_lock`` held)."""
        self._location, self._obtained_at = location, time.time()

    def _expiring(self, location: Location, obtained_at: float) -> bool:
        """Within the refresh margin of its expiry. The margin is at most a quarter of the
        lifetime we saw, so a short-lived URL is used before it is replaced (refreshing
        before every request would spend the API's rate limit on nothing)."""
        if location.expires_at is None:
            return False
        lifetime_s = max(0.0, location.expires_at - obtained_at)
        margin_s = min(self._settings.url_refresh_margin_s, lifetime_s / 4)
        return location.expires_at - time.time() < margin_s

    @staticmethod
    def _expired(location: Location) -> bool:
        return location.expires_at is not None and location.expires_at <= time.time()

    def _refresh_after_403(self, used: Location) -> None:
        """One refresh per rejected URL: readers that saw the 403 on it share the new one."""
        held = self._held()[0]
        if held is not None and held.url != used.url:
            return  # already replaced
        logger.info("%s: 403 from %s; refreshing its URL", self.key, redact_url(used.url))
        self._replace(used, force=True)

    # ---- requests ----------------------------------------------------------------------

    def send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        """One request (streamed), following at most MAX_REDIRECTS redirects to http(s) only."""
        for _ in range(MAX_REDIRECTS + 1):
            check_scheme(url)
            request = self._http.build_request(method, url, headers=headers)
            request.headers.pop("Authorization", None)
            try:
                response = self._http.send(
                    request, stream=True, follow_redirects=False, auth=NO_AUTH
                )
            except httpx.TransportError as exc:
                raise NetworkError(f"{method} {redact_url(url)}: {type(exc).__name__}") from exc
            if not response.is_redirect:
                return response
            response.close()
            url = str(response.url.join(response.headers["Location"]))
            logger.debug("%s: redirected to %s", self.key, redact_url(url))
        raise FileHostError(f"{self.key}: more than {MAX_REDIRECTS} redirects")

    def open(self, method: str, headers: dict[str, str]) -> httpx.Response:
        """A response that is neither a 403 nor a retryable failure, after refreshes and
        the retries the policy allows (every request here is a read)."""
        refreshed = False
        attempt = 0
        started = self._retry.now()
        while True:
            location = self.current()
            url = location.url if location.external else keep_dot_segments(location.url)
            try:
                response = self.send(method, url, headers)
            except NetworkError as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                delay_s = self._retry.delay_for_error(cause, attempt, read=True)
                attempt = self._back_off(exc, delay_s, attempt, started)
                continue
            status = response.status_code
            if status == 403:
                response.close()
                where = redact_url(location.url)
                if location.external:
                    raise FileHostError(f"{where} answered 403", status=403)
                if refreshed:
                    raise UrlExpiredError(f"{where} answered 403 after a URL refresh", 403)
                self._refresh_after_403(location)
                refreshed = True
                continue
            delay_s = self._retry.delay_for_status(status, response.headers, attempt, read=True)
            if delay_s is None:
                return response
            response.close()
            error = FileHostError(f"{redact_url(location.url)} answered {status}", status)
            attempt = self._back_off(error, delay_s, attempt, started)

    def _back_off(
        self, error: NotionFSError, delay_s: float | None, attempt: int, started: float
    ) -> int:
        """Wait ``delay_s`` before retry number ``attempt + 1``, or raise ``error`` when the
        policy allows no more."""
        if delay_s is None or not self._retry.allows(delay_s, attempt, started):
            raise error
        logger.info("%s: %s; retrying in %.2f s", self.key, error, delay_s)
        self._retry.sleep(delay_s)
        return attempt + 1
