"""Shared by the bench scripts (benchmarks do not import from tests/): a free loopback port and a
loopback CloudEvent receiver that answers 202 and hands each POST to a callback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackSink:
    """HTTP/1.1 keep-alive receiver on 127.0.0.1; ``on_post(headers, body)`` runs under ``lock``."""

    def __init__(self, on_post: Callable[[Mapping[str, str], bytes], None]) -> None:
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with sink.lock:
                    on_post(self.headers, body)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
