"""A pod replaced while the broker is down loses nothing: `agent-sre serve` stopped with SIGTERM
stops taking requests, answers the ones in flight, and leaves every pending alert and event in the
outbox, released for the next process; a new `agent-sre serve` on the same state delivers each
accepted alert's trigger, one id per alert (exactly once in effect: a function remembers ids).

Real processes, real HTTP; the first broker answers 503 to everything, the second accepts.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time

import httpx

from tests.delivery.sinks import StatusSink, wait_delivered
from tests.delivery.test_kill9 import POLICY, start
from tests.gate.support import alert, alert_doc, webhook
from tests.helpers import free_port, wait_http


def pods_of(hook: dict) -> list[str]:
    return [a["labels"]["pod"] for a in hook["alerts"]]


def test_sigterm_with_the_broker_down_leaves_everything_for_the_next_pod(tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    down, up = StatusSink(status=503), StatusSink(status=202)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, down.url, port)
    accepted: set[str] = set()
    codes: list[int | str] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**9))

    def post(c: httpx.Client, hook: dict) -> None:
        try:
            r = c.post(url + "/webhook", json=hook)
        except httpx.HTTPError as e:
            with lock:
                codes.append(type(e).__name__)
            return
        with lock:
            codes.append(r.status_code)
            if r.status_code == 202:
                accepted.update(pods_of(hook))

    def small_requests() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                with lock:
                    pods = [f"pod-{next(counter)}" for _ in range(5)]
                post(c, webhook(*[alert_doc(alert(namespace="media", pod=p, fingerprint=p)) for p in pods]))

    big = webhook(*[alert_doc(alert(namespace="media", pod=f"big-{i}", fingerprint=f"big-{i}"))
                    for i in range(1500)])
    try:
        wait_http(url + "/healthz", 60)
        clients = [threading.Thread(target=small_requests, daemon=True) for _ in range(3)]
        for t in clients:
            t.start()
        deadline = time.time() + 30
        while len(accepted) < 100 and time.time() < deadline:
            time.sleep(0.01)
        big_client = threading.Thread(target=lambda: post(httpx.Client(timeout=120), big), daemon=True)
        big_client.start()
        time.sleep(0.5)  # the big request is being worked on
        proc.send_signal(signal.SIGTERM)
        t0 = time.time()
        # uvicorn shuts down gracefully, then exits by the signal it caught (-15): the agent's
        # shutdown said what it left behind.
        assert proc.wait(60) in (0, -signal.SIGTERM)
        took = time.time() - t0
        assert "left in the outbox for the next process" in (tmp_path / f"serve-{port}.log").read_text()
        stop.set()
        big_client.join(30)
        for t in clients:
            t.join(10)
        # It stopped taking requests: nothing listens any more.
        try:
            httpx.get(url + "/healthz", timeout=2)
            raise AssertionError("the stopped agent still answers")
        except httpx.ConnectError:
            pass
        assert {f"big-{i}" for i in range(1500)} <= accepted  # the request in flight was finished, not cut
        assert all(c in (202, 503) or isinstance(c, str) for c in codes), set(codes)  # never a 500
        assert not any(code < 300 for code, _, _ in down.log)  # the broker was down throughout

        # Everything pending stays in the outbox — a trigger, or the alert itself while it waits out
        # the incident settle window — and no lease holds it: the next pod may take it at once.
        with sqlite3.connect(tmp_path / "state" / "outbox.db") as db:
            pending = dict(db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
            waiting = db.execute("SELECT count(*) FROM inbox WHERE state='pending'").fetchone()[0]
            held = db.execute("SELECT count(*) FROM events WHERE state='pending' AND (owner IS NOT NULL "
                              "OR lease_until>0)").fetchone()[0]
            held += db.execute("SELECT count(*) FROM inbox WHERE state='pending' AND (owner IS NOT NULL "
                               "OR lease_until>0)").fetchone()[0]
        assert pending.get("pending", 0) + waiting >= len(accepted) and held == 0, (pending, waiting, held)

        proc = start(tmp_path, up.url, port)  # the next pod, same state, the broker back
        wait_http(url + "/healthz", 60)

        got, st = wait_delivered(url, up, accepted, 90)
        missing = accepted - set(got)
        assert not missing, f"{len(missing)} accepted alerts never delivered, e.g. {sorted(missing)[:5]}"
        assert all(len(ids) == 1 for ids in got.values())  # one trigger id per alert
        assert st["events"].get("dead", 0) == 0 and st["inbox"].get("dead", 0) == 0
        print(f"SIGTERM: exit in {took:.1f} s; {len(accepted)} alerts accepted by the first agent, "
              f"{len(got)} delivered by the second, one id each")
    finally:
        stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        down.close()
        up.close()
