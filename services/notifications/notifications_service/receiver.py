"""A webhook receiver to try subscriptions locally (and the one the tests and `make bench` run): a
process on loopback that verifies every request with the `standardwebhooks` package and appends what
it accepted to a JSON-lines file.

    python -m notifications_service.receiver --port 18950 --route /hooks/a=whsec_... \
        --route /hooks/b=whsec_... --out received.jsonl [--status 204] [--delay-ms 0] [--summary]

Each accepted request is one line, written and flushed before the answer:
`{"path", "webhook_id", "received_at" (unix s), "body" (the parsed JSON)}` (with `--summary`, instead
of the body: the event's `id`, `time` and `subject`); a request whose signature does not verify is
answered 401 and logged with `"error"`. `--status 410` answers Gone (after verifying). HTTP/1.1
keep-alive, a minimal parser (Content-Length bodies only). Not a production server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import IO

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20


class Receiver:
    def __init__(
        self,
        routes: dict[str, Webhook],
        out: IO[str],
        status: int,
        delay_s: float,
        summary: bool = False,
        extra_headers: str = "",
        body_bytes: int = 0,
    ) -> None:
        self.summary = summary
        self.extra_headers = extra_headers
        self.body = b"x" * body_bytes
        self.routes = routes
        self.out = out
        self.status = status
        self.delay_s = delay_s

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    break
                body = await reader.readexactly(length)
                status = self.handle(method, path, headers, body)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                head_out = (
                    f"HTTP/1.1 {status} X\r\n{self.extra_headers}Content-Length: {len(self.body)}\r\n\r\n"
                )
                writer.write(head_out.encode() + self.body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        webhook = self.routes.get(path)
        if method != "POST" or webhook is None:
            return 404
        record: dict[str, object] = {
            "path": path,
            "webhook_id": headers.get("webhook-id"),
            "received_at": time.time(),
        }
        try:
            parsed = webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            record["error"] = str(exc)
            self.write(record)
            return 401
        if self.summary:
            record.update(id=parsed.get("id"), time=parsed.get("time"), subject=parsed.get("subject"))
        else:
            record["body"] = parsed
        self.write(record)
        return self.status

    def write(self, record: dict[str, object]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--route", action="append", default=[], help="/path=whsec_... (repeatable)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--status", type=int, default=204)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--summary", action="store_true", help="log the event's id and time, not the body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' added to each answer")
    parser.add_argument("--body-bytes", type=int, default=0, help="answer with a body of this many bytes")
    args = parser.parse_args(argv)
    routes = {}
    for route in args.route:
        path, secret = route.split("=", 1)
        routes[path] = Webhook(secret)
    with open(args.out, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - once, before serving
        extra = "".join(f"{header}\r\n" for header in args.header)
        receiver = Receiver(
            routes, out, args.status, args.delay_ms / 1000, args.summary, extra, args.body_bytes
        )
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", args.port, reuse_address=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"listening on 127.0.0.1:{args.port}", flush=True)
        async with server:
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
