"""Load benchmark of the agent over HTTP, loopback only, bounded (≤ 60 s by default).

Starts `agent-sre serve` as a subprocess (fresh STATE_DIR, durable outbox, SQLite gate state,
audit log) with BROKER_URL pointing at a loopback CloudEvent sink in this process, then:

1. sustained: N client threads post one-alert webhooks for --duration seconds; prints accepted
   alerts/s and the p50/p99 latency of the 202 (which is returned after the alert is committed,
   decided and gated: the decision latency);
2. storm: --storm alerts in 50-alert webhooks as fast as the clients can; prints the outbox lag
   (alert accepted → trigger received by the sink) p50/p99/max and the largest backlog seen;
3. drain: waits for every accepted alert's trigger to reach the sink; prints "lost: N"
   (accepted alerts whose trigger never arrived; must be 0).

    .venv/bin/python bench/load_agent.py [--duration 15] [--concurrency 8] [--storm 3000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from agent_sre import keys
from _support import LoopbackSink, free_port, stop, wait_up

POLICY = """
mode: dry_run
defaults: {enabled: true, cooldown_seconds: 0}
functions: {pod-restart: {cooldown_seconds: 0}}
budget: {per_target_per_hour: 1000000, global_per_hour: 1000000}
storm: {distinct_targets: 1000000}
"""


class Sink(LoopbackSink):
    """Loopback receiver: pod name of each trigger → first arrival time."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.requests = 0
        super().__init__(self._record)

    def _record(self, headers, body: bytes) -> None:
        now = time.perf_counter()
        if headers.get("ce-type") != "io.homelab.agent-sre.lambda.trigger":
            return
        try:
            name = json.loads(body)["parameters"]["name"]
        except (ValueError, KeyError):
            name = None
        self.requests += 1
        if name:
            self.arrived.setdefault(name, now)


def webhook(pods: list[str]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "bench", "groupKey": "g", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {},
            "alerts": [{"status": "firing", "fingerprint": p, "startsAt": "2026-11-25T08:00:00Z",
                        "labels": {"alertname": "PodCrashLoopBackOff", "namespace": "bench", "pod": p},
                        "annotations": {}} for p in pods]}


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of sustained load")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--storm", type=int, default=3000, help="alerts in the storm phase")
    ap.add_argument("--drain-timeout", type=float, default=20.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="agent-sre-bench-"))
    (tmp / "policy.yaml").write_text(POLICY)
    sink = Sink()
    port = free_port()
    keys.generate(tmp / "keys")  # a broker means signed triggers: a fresh key set per run
    env = {**os.environ, "STATE_DIR": str(tmp / "state"), "BROKER_URL": sink.url, "PORT": str(port),
           "HOST": "127.0.0.1", "USE_TRM": "0", "POLICY_PATH": str(tmp / "policy.yaml"), "LOG_LEVEL": "warning",
           "RETRY_BASE_SECONDS": "0.1", **keys.env(tmp / "keys", keys.AGENT_MOUNTS)}
    env.pop("LLM_URL", None)
    env.pop("REDIS_URL", None)
    exe = Path(sys.executable).with_name("agent-sre")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "serve.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    accepted_at: dict[str, float] = {}
    lock = threading.Lock()
    seq = iter(range(10**9))
    try:
        if not wait_up(proc, url + "/healthz", 60, poll_s=0.1):
            print("agent did not start; see", tmp / "serve.log", file=sys.stderr)
            return 2

        # ---------------------------------------------------------------- 1. sustained
        latencies: list[float] = []
        errors = [0]
        stop_at = time.perf_counter() + args.duration

        def sustained() -> None:
            with httpx.Client(timeout=10) as c:
                while time.perf_counter() < stop_at:
                    with lock:
                        pod = f"s-{next(seq)}"
                    t0 = time.perf_counter()
                    try:
                        r = c.post(url + "/webhook", json=webhook([pod]))
                    except httpx.HTTPError:
                        errors[0] += 1
                        continue
                    t1 = time.perf_counter()
                    if r.status_code == 202:
                        with lock:
                            latencies.append(t1 - t0)
                            accepted_at[pod] = t1
                    else:
                        errors[0] += 1

        t0 = time.perf_counter()
        ts = [threading.Thread(target=sustained) for _ in range(args.concurrency)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        sustained_s = time.perf_counter() - t0
        n_sustained = len(latencies)

        # ---------------------------------------------------------------- 2. storm
        storm_pods = [f"storm-{i}" for i in range(args.storm)]
        chunks = [storm_pods[i:i + 50] for i in range(0, len(storm_pods), 50)]
        backlog = [0]
        storm_done = threading.Event()

        def watch() -> None:
            with httpx.Client(timeout=5) as c:
                while not storm_done.is_set():
                    try:
                        ob = c.get(url + "/readyz").json()["outbox"]
                        backlog[0] = max(backlog[0], ob["events"].get("pending", 0) + ob["inbox"].get("pending", 0))
                    except (httpx.HTTPError, KeyError, ValueError):
                        pass
                    time.sleep(0.1)

        def storm_client(mine: list[list[str]]) -> None:
            with httpx.Client(timeout=30) as c:
                for pods in mine:
                    try:
                        r = c.post(url + "/webhook", json=webhook(pods))
                    except httpx.HTTPError:
                        errors[0] += 1
                        continue
                    t1 = time.perf_counter()
                    if r.status_code == 202:
                        with lock:
                            for p in pods:
                                accepted_at[p] = t1
                    else:
                        errors[0] += 1

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        t0 = time.perf_counter()
        ts = [threading.Thread(target=storm_client, args=(chunks[i::args.concurrency],))
              for i in range(args.concurrency)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        storm_s = time.perf_counter() - t0

        # ---------------------------------------------------------------- 3. drain
        deadline = time.perf_counter() + args.drain_timeout
        while time.perf_counter() < deadline:
            with sink.lock:
                if all(p in sink.arrived for p in accepted_at):
                    break
            time.sleep(0.05)
        storm_done.set()
        with sink.lock:
            arrived = dict(sink.arrived)
            requests = sink.requests
        lost = [p for p in accepted_at if p not in arrived]
        lag = [arrived[p] - accepted_at[p] for p in storm_pods if p in arrived and p in accepted_at]
        sus_lat = latencies
        out = {
            "sustained_alerts_per_s": round(n_sustained / sustained_s, 1),
            "sustained_requests": n_sustained,
            "decision_latency_p50_ms": round(pct(sus_lat, 50) * 1000, 2),
            "decision_latency_p99_ms": round(pct(sus_lat, 99) * 1000, 2),
            "storm_alerts": args.storm,
            "storm_intake_alerts_per_s": round(args.storm / storm_s, 1),
            "outbox_lag_p50_ms": round(pct(lag, 50) * 1000, 1),
            "outbox_lag_p99_ms": round(pct(lag, 99) * 1000, 1),
            "outbox_lag_max_ms": round(max(lag) * 1000, 1) if lag else None,
            "max_backlog": backlog[0],
            "accepted": len(accepted_at),
            "delivered_distinct": len(arrived),
            "deliveries": requests,
            "errors": errors[0],
            "lost": len(lost),
            "cores": os.cpu_count(),
        }
        if args.json:
            print(json.dumps(out))
        else:
            print(f"sustained: {out['sustained_alerts_per_s']} alerts/s over HTTP "
                  f"({n_sustained} alerts, {args.concurrency} clients, {sustained_s:.1f}s)")
            print(f"decision latency (202 after commit+decide+gate): p50 {out['decision_latency_p50_ms']} ms, "
                  f"p99 {out['decision_latency_p99_ms']} ms")
            print(f"storm: {args.storm} alerts in {storm_s:.1f}s ({out['storm_intake_alerts_per_s']} alerts/s); "
                  f"outbox lag p50 {out['outbox_lag_p50_ms']} ms, p99 {out['outbox_lag_p99_ms']} ms, "
                  f"max {out['outbox_lag_max_ms']} ms; largest backlog {out['max_backlog']}")
            print(f"accepted {out['accepted']}, delivered {out['delivered_distinct']} distinct "
                  f"({requests} deliveries), errors {out['errors']}")
            print(f"lost: {out['lost']}")
        return 0 if not lost else 1
    finally:
        stop(proc, 15)
        sink.server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
