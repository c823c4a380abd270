"""A loopback HTTP proxy in front of a real docker-registry that answers as a hostile or broken
registry would, on the requests a rule picks: a status code, a redirect, other bytes, a stream
cut short. Every request it saw is logged, so tests can tell what sealer asked and sent."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class Answer:
    """What to answer instead of the registry; ``None`` fields pass the registry's through."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    edit: Callable[[bytes], bytes] | None = None  # applied to the registry's body
    cut_after: int | None = None  # send the full Content-Length but close after this many bytes


# a rule sees (method, path, how many times this method and path came before) and may answer instead
Rule = Callable[[str, str, int], Answer | None]


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, *rules: Rule) -> None:
        with self._lock:
            self.rules = list(rules)
            self.seen.clear()
            self._counts.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, method: str, path: str) -> Answer | None:
        with self._lock:
            n = self._counts.get((method, path), 0)
            self._counts[(method, path)] = n + 1
            for rule in self.rules:
                answer = rule(method, path, n)
                if answer is not None:
                    return answer
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy._answer(self.command, self.path)
                status, headers, data = self._forward(body) if not answer or answer.status is None else (0, {}, b"")
                if answer:
                    if answer.status is not None:
                        status, headers, data = answer.status, {}, answer.body or b""
                    headers.update(answer.headers)
                    if answer.body is not None:
                        data = answer.body
                    if answer.edit is not None:
                        data = answer.edit(data)
                with proxy._lock:
                    proxy.seen.append(Seen(self.command, self.path, status, dict(self.headers)))
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    cut = answer.cut_after if answer else None
                    self.wfile.write(data if cut is None else data[:cut])
                    if cut is not None:
                        self.close_connection = True

            def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                return resp.status, dict(resp.getheaders()), data

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        return Handler
