"""One Alertmanager webhook of 10,000 alerts to the real `agent-sre serve` (the shipped model in
process): answered 202 with a bounded answer, the agent stays under 600 MB resident, and no alert is
decided twice although the request lasts many times the inbox lease (OUTBOX_LEASE_SECONDS=2).
bench/memory.py prints the same figures for other sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from agent_sre import audit
from tests.helpers import free_port, wait_http

N = 10_000


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))


def test_a_10000_alert_webhook_stays_under_600_mb_and_decides_each_alert_once(tmp_path):
    port = free_port()
    env = {**os.environ, "STATE_DIR": str(tmp_path), "PORT": str(port), "HOST": "127.0.0.1",
           "LOG_LEVEL": "warning", "OUTBOX_LEASE_SECONDS": "2"}
    for var in ("LLM_URL", "REDIS_URL", "BROKER_URL", "USE_TRM", "TRM_API_URL", "MAX_BODY_BYTES"):
        env.pop(var, None)
    exe = Path(sys.executable).with_name("agent-sre")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "log", "wb"))
    url = f"http://127.0.0.1:{port}"
    alerts = [{"status": "firing", "labels": {"alertname": "PodCrashLoopBackOff", "namespace": f"ns{i % 40}",
                                              "pod": f"sonarr-6c5b7d9f4-{i:05d}", "container": "sonarr"},
               "annotations": {"summary": "container keeps crashing"}, "startsAt": "2026-11-29T10:00:00Z",
               "fingerprint": f"{i:016x}"} for i in range(N)]
    body = json.dumps({"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "{}:{}",
                       "alerts": alerts}).encode()
    try:
        wait_http(url + "/readyz", 60)
        before = rss_mb(proc.pid)
        r = httpx.post(url + "/webhook", content=body, headers={"content-type": "application/json"}, timeout=600)
        after = rss_mb(proc.pid)
        assert r.status_code == 202, r.text[:300]
        doc = r.json()
        assert doc["accepted"] == N and len(doc["outcomes"]) <= 100 and len(r.content) < 1_000_000
        assert sum(doc["summary"]["method"].values()) == N
        assert after < 600, f"RSS {before:.0f} -> {after:.0f} MB"
        # crash loops wait out the incident settle window (pending, durably), then are decided
        deadline = time.time() + 300
        while (st := httpx.get(url + "/readyz").json()["outbox"])["inbox"].get("pending") and time.time() < deadline:
            time.sleep(0.5)
        assert st["inbox"] == {"done": N}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    decided = Counter(rec["correlation_id"] for rec in audit.read(tmp_path / "audit.jsonl")
                      if rec["kind"] == "decision")
    assert len(decided) == N and max(decided.values()) == 1
    print(f"{N} alerts: RSS {before:.0f} -> {after:.0f} MB")
