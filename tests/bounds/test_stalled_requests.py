"""A stalled request is cut off: every HTTP service (agent, functions, trm-reasoning), as the real
process, over real sockets. A client that sends the head and part of the body, or part of the head,
and stops, gets 408 and a closed connection after READ_TIMEOUT_SECONDS; meanwhile other requests
are answered at once (the stalled one ties nothing up)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_http

TIMEOUT = 2.0
SERVICES = {"serve": "/webhook", "serve-function": "/", "serve-reasoning": "/v1/decide"}


@pytest.fixture(scope="module", params=list(SERVICES))
def service(request, tmp_path_factory):
    command = request.param
    tmp = tmp_path_factory.mktemp(command)
    port = free_port()
    env = {**os.environ, "STATE_DIR": str(tmp), "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning",
           "READ_TIMEOUT_SECONDS": str(TIMEOUT), "USE_TRM": "false",
           "FUNCTION_LOCAL_MODE": "dry-run-only"}  # serve-function without keys: dry-run only
    for var in ("LLM_URL", "REDIS_URL", "BROKER_URL", "KUBECONFIG"):
        env.pop(var, None)
    exe = Path(sys.executable).with_name("agent-sre")
    proc = subprocess.Popen([str(exe), command], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", 60)
        yield command, port, url
    finally:
        proc.terminate()
        proc.wait(20)


def read_all(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection; and when it closed it."""
    sock.settimeout(limit)
    t0, data = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"connection still open after {limit} s; got {data[:200]!r}") from None
        if not chunk:
            return data, time.monotonic() - t0
        data += chunk


def stalled(port: int, first_bytes: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(first_bytes)
    return s


def test_a_body_that_stops_coming_gets_408_and_others_are_served_meanwhile(service):
    command, port, url = service
    head = (f"POST {SERVICES[command]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 5000\r\n\r\n").encode()
    s = stalled(port, head + b'{"alerts": [{"labels": ')
    t0 = time.monotonic()
    with httpx.Client(timeout=5) as c:  # while it stalls, the service answers others at once
        for _ in range(3):
            t = time.monotonic()
            assert c.get(url + "/healthz").status_code == 200
            assert time.monotonic() - t < TIMEOUT / 2  # answered long before the stalled one is cut off
    data, _ = read_all(s, 10)
    took = time.monotonic() - t0
    s.close()
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"not received within" in data
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 4, took


def test_a_head_that_stops_coming_gets_408(service):
    _, port, _ = service
    s = stalled(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
    data, took = read_all(s, 10)
    s.close()
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert took < TIMEOUT + 4
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))
    assert length == len(body) and json.loads(body) == {"error": "request head not received in time"}


def test_a_connection_that_sends_nothing_is_closed(service):
    _, port, _ = service
    s = stalled(port, b"")
    data, took = read_all(s, 10)
    s.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    assert took < TIMEOUT + 6


def test_a_complete_request_after_a_response_on_the_same_connection_still_works(service):
    """The head deadline is re-armed after each response, and a prompt client never meets it."""
    _, port, _ = service
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(2):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        head, _, body = got.partition(b"\r\n\r\n")
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
        while len(body) < length:
            body += s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"status":"ok"}', got[:200]
        time.sleep(TIMEOUT * 0.7)
    s.close()
