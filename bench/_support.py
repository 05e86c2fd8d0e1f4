"""Shared by the bench scripts (benchmarks do not import from tests/): a free loopback port, a
loopback CloudEvent receiver that answers 202 and hands each POST to a callback, and starting and
stopping a served process."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc: subprocess.Popen, url: str, timeout: float, poll_s: float = 0.2) -> bool:
    """Poll ``url`` until it answers 200: True; False once ``proc`` exits or ``timeout`` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(poll_s)


def stop(proc: subprocess.Popen, wait_s: float = 10.0) -> None:
    """SIGTERM (as a pod is stopped), then SIGKILL if it has not exited after ``wait_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


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
