"""A loopback CloudEvent receiver for the delivery tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent_sre import ce


class StatusSink:
    """A loopback CloudEvent receiver that records, per request, the status it answered."""

    def __init__(self, status: int = 202, delay: float = 0.0):
        self.status = status
        self.delay = delay
        self.log: list[tuple[int, dict[str, str], bytes]] = []
        sink = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                want = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(want)
                if sink.delay:
                    time.sleep(sink.delay)
                # A sender killed mid-request leaves a short body: like any HTTP server, refuse it
                # rather than accept half an event.
                code = sink.status if len(body) == want else 400
                sink.log.append((code, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def accepted_ids(self) -> list[str]:
        return [h["ce-id"] for code, h, _ in self.log if code < 300]

    def events(self, accepted_only=True):
        return [ce.from_http(h, b) for code, h, b in self.log if code < 300 or not accepted_only]
