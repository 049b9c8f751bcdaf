"""`shared.logging.configure_logging`: JSON lines on the stream it is given, and what it quietens."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.logging import configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "uvicorn.access")}
    stream = io.StringIO()
    handler = configure_logging("testsvc", level="INFO", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, was in chatty.items():
            logging.getLogger(name).setLevel(was)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_services_own_lines_are_json_with_the_service_named(log_stream: io.StringIO) -> None:
    logging.getLogger("profile_service.api").info("profile %s created", "p-1", extra={"status": 201})
    [line] = lines(log_stream)
    assert (line["level"], line["logger"]) == ("INFO", "profile_service.api")
    assert line["message"] == "profile p-1 created"
    assert (line["service"], line["status"]) == ("testsvc", 201)


def test_httpx_says_only_what_went_wrong(log_stream: io.StringIO) -> None:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).info('HTTP Request: POST http://partner.example/hook "HTTP/1.1 200 OK"')
        logging.getLogger(name).warning("connection pool is full")
    assert [(line["logger"], line["level"]) for line in lines(log_stream)] == [
        ("httpx", "WARNING"),
        ("httpcore", "WARNING"),
    ]
