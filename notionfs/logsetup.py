"""Logging for the command line: one handler, and a filter that keeps secrets out."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

logger = logging.getLogger("notionfs")


class RedactingFilter(logging.Filter):
    """Scrubs the token and signed-URL query strings from every record, as a last defence."""

    _QUERY = re.compile(r"(https?://[^\s?\"'<>]+)\?[^\s\"'<>]*")

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def add_secret(self, secret: str) -> None:
        if secret:
            self._secrets.append(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._QUERY.sub(r"\1?<redacted>", message)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "<token>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "<token>")
            record.exc_text = self._QUERY.sub(r"\1?<redacted>", text)
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
        return True

def configure_logging(debug: bool, log_file: str | None = None) -> RedactingFilter:
    redactor = RedactingFilter()
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # httpx logs full URLs (signed query strings included) at INFO: keep it quiet.
    for noisy in ("httpx", "httpcore", "fuse"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor
