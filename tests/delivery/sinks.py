"""A loopback CloudEvent receiver for the delivery tests."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from agent_sre import ce
from agent_sre.events import TRIGGER


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

    def trigger_ids_by_target(self) -> dict[str, set[str]]:
        """The ids of the accepted triggers, per target name (``parameters.name``)."""
        out: dict[str, set[str]] = defaultdict(set)
        for ev in self.events():
            if ev.get_type() == TRIGGER:
                out[(ce.data_of(ev) or {})["parameters"]["name"]].add(ev.get_id())
        return out


def wait_delivered(agent_url: str, sink: StatusSink, targets: set[str],
                   timeout: float) -> tuple[dict[str, set[str]], dict]:
    """Wait until ``sink`` accepted a trigger for every target and the agent's inbox and outbox have
    nothing pending (or ``timeout``); returns the triggers by target and the last outbox counts."""
    deadline = time.time() + timeout
    while True:
        st = httpx.get(agent_url + "/readyz").json()["outbox"]
        if targets <= set(sink.trigger_ids_by_target()) and not st["events"].get("pending") \
                and not st["inbox"].get("pending") or time.time() >= deadline:
            return sink.trigger_ids_by_target(), st
        time.sleep(0.2)
