"""Structured JSON logs, one object per line, stamped with the request's correlation id.

`configure_logging("profile")` (called by `create_service_app` at startup) sends the root logger to
stderr as JSON and routes uvicorn's own loggers through it. Every line carries `ts`, `level`,
`logger`, `message`, `service`, and `correlation_id` / `causation_id` from `shared.context` when set;
`extra={...}` fields are added as top-level members.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from shared import context

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # color_message: uvicorn's ANSI twin
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            body["service"] = self.service
        correlation = context.correlation_id.get()
        if correlation:
            body["correlation_id"] = correlation
        causation = context.causation_id.get()
        if causation and causation != correlation:
            body["causation_id"] = causation
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in body:
                body[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["exc_type"] = record.exc_info[0].__name__
            body["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        return orjson.dumps(body, default=str).decode()


def configure_logging(
    service: str,
    *,
    level: int | str | None = None,
    json: bool = True,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON; safe to call more than once.

    The level defaults to `EE_LOG_LEVEL` (INFO). Handlers that others attached to the root logger
    (pytest's log capture, for one) are left alone; only the handler this function added before is
    replaced. uvicorn's loggers propagate to the root so their lines are JSON too; its access log is
    quietened because the service's middleware logs each request with its route and correlation id,
    and httpx's line per request sent is quietened too (below).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ee_json_handler", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(JsonFormatter(service) if json else plain)
    handler._ee_json_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if level is not None else os.environ.get("EE_LOG_LEVEL", "INFO").upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request it sends at INFO. Its one heavy user is the webhook dispatcher, whose
    # deliveries are recorded with their outcome in its own table: a few of `make bench`'s bursts
    # left 438,832 such lines in the notifications log. Its warnings still come through.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
