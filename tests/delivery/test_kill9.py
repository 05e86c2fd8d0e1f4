"""kill -9 in the middle of a burst: every alert answered 202 ends up delivered, no alert gets two ids.

Real processes: `agent-sre serve` as a subprocess with STATE_DIR, SIGKILL while webhooks and
deliveries are in flight, a second `agent-sre serve` on the same STATE_DIR finishes the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from agent_sre import audit, signing
from tests.delivery.sinks import StatusSink, wait_delivered
from tests.gate.support import alert, alert_doc, webhook
from tests.helpers import free_port, wait_http
from tests.keys import key_files

POLICY = """
mode: execute
defaults: {enabled: true, cooldown_seconds: 0}
functions: {pod-restart: {cooldown_seconds: 0}}
budget: {per_target_per_hour: 100000, global_per_hour: 100000}
storm: {distinct_targets: 100000}
"""


def start(tmp: Path, sink_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "STATE_DIR": str(tmp / "state"), "BROKER_URL": sink_url, "PORT": str(port),
           "HOST": "127.0.0.1", "USE_TRM": "0", "DRY_RUN": "true", "POLICY_PATH": str(tmp / "policy.yaml"),
           "LOG_LEVEL": "warning", "RETRY_BASE_SECONDS": "0.05", "RETRY_MAX_SECONDS": "0.5",
           "RETRY_MAX_ATTEMPTS": "100", **key_files(tmp / "keys")[0]}
    env.pop("LLM_URL", None)
    env.pop("REDIS_URL", None)
    exe = Path(sys.executable).with_name("agent-sre")
    return subprocess.Popen([str(exe), "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / f"serve-{port}.log", "wb"))


def test_sigkill_mid_burst_loses_no_accepted_alert_and_sends_no_second_id(tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    sink = StatusSink(delay=0.002)  # deliveries take a little time: some are in flight at the kill
    port = free_port()
    proc = start(tmp_path, sink.url, port)
    url = f"http://127.0.0.1:{port}"
    accepted: set[str] = set()
    sent: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**9))

    def client(worker: int) -> None:
        with httpx.Client(timeout=5.0) as c:
            while not stop.is_set():
                with lock:
                    batch = [f"pod-{next(counter)}" for _ in range(5)]
                    sent.update(batch)
                hook = webhook(*[alert_doc(alert(namespace="media", pod=p, fingerprint=p)) for p in batch])
                try:
                    r = c.post(url + "/webhook", json=hook)
                except httpx.HTTPError:
                    if stop.is_set():
                        return
                    time.sleep(0.01)
                    continue
                if r.status_code == 202:
                    with lock:
                        accepted.update(batch)

    try:
        wait_http(url + "/healthz", 60)
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.time() + 30
        while len(accepted) < 300 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests and deliveries in flight
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
        at_kill = len(sink.log)
        assert len(accepted) >= 300

        proc = start(tmp_path, sink.url, port)  # same STATE_DIR: resumes the inbox and the outbox
        wait_http(url + "/healthz", 60)

        got, st = wait_delivered(url, sink, accepted, 60)
        missing = accepted - set(got)
        assert not missing, f"{len(missing)} accepted alerts never delivered, e.g. {sorted(missing)[:5]}"
        assert set(got) <= sent  # nothing invented
        # one id per alert: a redelivery after the crash reuses the id, so a function acts once
        assert all(len(ids) == 1 for ids in got.values())
        ids = Counter(h["ce-id"] for code, h, _ in sink.log if code < 300)
        assert len(ids) == len(got)
        resent = sum(n - 1 for n in ids.values())
        print(f"accepted {len(accepted)}, delivered {len(got)} distinct ids, {resent} redelivered after the "
              f"kill (same id), {at_kill} deliveries before the kill")
        assert st["inbox"].get("dead", 0) == 0 and st["events"].get("dead", 0) == 0
        keys = key_files(tmp_path / "keys")[0]  # the set start() wrote
        res = audit.verify(tmp_path / "state" / "audit.jsonl", key=audit.load_key(keys["AUDIT_HMAC_KEY"]),
                           ring=signing.KeyRing.load(keys["AGENT_PUBLIC_KEYS"]), require_checkpoint=True)
        assert res.ok, res.summary()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        sink.close()
