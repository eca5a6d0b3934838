"""Structured JSON logs carrying the request id, with secrets redacted before they are written."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Keys whose values are never written, wherever they appear in a log record's extras.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|private|credential|jwt",
    re.IGNORECASE,
)
# Bearer tokens and JWT-shaped strings that slip into free text.
_SECRET_TEXT = re.compile(
    r"((?i:bearer)\s+)[A-Za-z0-9\-_.~+/=]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)
REDACTED = "[REDACTED]"

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message", "taskName"}
)


def redact(value: Any, key: str | None = None) -> Any:
    """Return `value` with secret-looking keys and token-looking strings masked."""
    if key is not None and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, value)
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for attr, value in record.__dict__.items():
            if attr not in _STANDARD_ATTRS and attr != "request_id":
                entry[attr] = redact(value, attr)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's output to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Uvicorn's own access log would print raw query strings; `http.py` logs requests instead.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every plugin it loads at INFO; only its warnings matter at start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # HTTP clients narrate every request; our access log already records what matters.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime
