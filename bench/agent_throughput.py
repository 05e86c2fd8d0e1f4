"""End-to-end agent throughput over HTTP (not a unit test; prints a table).

    .venv/bin/python bench/agent_throughput.py [--seconds 20] [--concurrency 16] [--group 1,10]

Starts the real agent (`agent-sre serve`, a subprocess: FastAPI + the decision chain + gate + outbox +
audit, state in a temporary STATE_DIR) with BROKER_URL pointing at a loopback CloudEvent sink run by this
script, then POSTs Alertmanager webhooks (``--group`` alerts each, every alert unique so dedup does not
short-cut it) from ``--concurrency`` concurrent clients for ``--seconds`` per group size. Reports
alerts/s accepted, request latency, HTTP errors, and CloudEvents that reached the sink (trigger and
escalation), after waiting for the outbox to drain. Extra agent env: ``--env KEY=VALUE`` (repeatable),
e.g. ``--env USE_TRM=false`` or ``--env TRM_API_URL=http://127.0.0.1:8081``.
Bounded: about (seconds + 15) per group size.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from agent_sre import keys
from _support import LoopbackSink, free_port, stop, wait_up

ROOT = Path(__file__).resolve().parents[1]


class Sink(LoopbackSink):
    """Counts the CloudEvents that arrive, by type."""

    def __init__(self) -> None:
        self.types: Counter[str] = Counter()
        super().__init__(lambda headers, _body: self.types.update([headers.get("ce-type", "?")]))

    def total(self) -> int:
        with self.lock:
            return sum(self.types.values())


def webhook(run: int, start: int, n: int) -> dict:
    # A crash-loop alert under a name the runbook does not know, so the TRM decides it (the runbook
    # decides the names it lists before any model is asked).
    alerts = []
    for i in range(start, start + n):
        alerts.append({"status": "firing", "labels": {"alertname": "ContainerCrashLooping", "namespace": "bench",
                                                      "pod": f"app-{run}-{i}-5c8d9", "container": "app",
                                                      "severity": "warning"},
                       "annotations": {"summary": f"app-{run}-{i} is crash looping"},
                       "startsAt": "2026-11-24T10:00:00Z", "fingerprint": f"{run:04x}{i:012x}"})
    return {"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": f"bench-{run}-{start}",
            "alerts": alerts}


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, all its threads (Linux /proc)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, run: int, group: int, seconds: float, concurrency: int) -> dict:
    """``concurrency`` threads, each with one keep-alive connection (http.client: the lightest
    client in the standard library, so the generator takes as little as it can of the 2 cores
    it shares with the agent), POST webhooks back to back for ``seconds``."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    lat: list[float] = []
    errors: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))
    sent = [0]
    t_end = time.perf_counter() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        my_lat, my_methods, my_errors, my_sent = [], Counter(), Counter(), 0
        while time.perf_counter() < t_end:
            with lock:
                k = next(counter)
            body = json.dumps(webhook(run, k * group, group)).encode()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/webhook", body, {"content-type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 202:
                    my_errors[f"HTTP {r.status}"] += 1
                else:
                    for o in json.loads(data).get("outcomes", []):
                        my_methods[o["decision"]["method"]] += 1
            except (OSError, http.client.HTTPException) as e:
                my_errors[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            my_lat.append(time.perf_counter() - t0)
            my_sent += group
        conn.close()
        with lock:
            lat.extend(my_lat)
            methods.update(my_methods)
            errors.update(my_errors)
            sent[0] += my_sent

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    lat.sort()
    return {"alerts": sent[0], "seconds": dt, "aps": sent[0] / dt, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000, "errors": dict(errors), "methods": dict(methods)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--group", default="1,10")
    ap.add_argument("--env", action="append", default=[])
    args = ap.parse_args()
    sink = Sink()
    port = free_port()
    state = tempfile.mkdtemp(prefix="agent-bench-")
    keys.generate(Path(state) / "keys")  # a broker means signed triggers: a fresh key set per run
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "BROKER_URL": sink.url, "STATE_DIR": state,
           "LOG_LEVEL": "warning", "DRY_RUN": "true", **keys.env(Path(state) / "keys", keys.AGENT_MOUNTS)}
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    exe = ROOT / ".venv" / "bin" / "agent-sre"
    cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m", "agent_sre.cli", "serve"]
    proc = subprocess.Popen(cmd, env=env, cwd=state, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_up(proc, url + "/healthz", 60):
            raise SystemExit(f"agent did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        ready = httpx.get(url + "/readyz", timeout=5).json()
        # warm-up (imports, first decisions)
        load(url, 0, 1, 1.0, 2)
        rows = []
        for run, group in enumerate([int(g) for g in args.group.split(",")], start=1):
            before = sink.total()
            cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
            r = load(url, run, group, args.seconds, args.concurrency)
            r["agent_cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, r["alerts"])
            r["load_cpu_ms"] = (time.process_time() - own0) * 1000 / max(1, r["alerts"])
            want = r["alerts"]
            deadline = time.time() + 15
            while sink.total() - before < want and time.time() < deadline:
                time.sleep(0.2)
            r["events"] = sink.total() - before
            r["drain_s"] = 15 - max(0.0, deadline - time.time())
            rows.append((group, r))
    finally:
        stop(proc)
    print(f"\nagent-sre serve on {os.cpu_count()} CPU cores (load average now {os.getloadavg()[0]:.1f}); "
          f"stages {ready.get('stages')}; gate mode {ready.get('mode')}; concurrency {args.concurrency}; "
          f"{args.seconds:.0f} s per row; sink = loopback CloudEvent receiver; CPU columns = CPU time per "
          f"alert of the agent process and of this script (load generator + sink)\n")
    hdr = (f"{'alerts/webhook':>14} {'alerts':>7} {'alerts/s':>9} {'req p50 ms':>10} {'req p99 ms':>10} "
           f"{'errors':>7} {'events out':>10} {'drain s':>8} {'agent CPU':>10} {'bench CPU':>10}  decided by")
    print(hdr)
    print("-" * len(hdr))
    for group, r in rows:
        print(f"{group:>14} {r['alerts']:>7} {r['aps']:>9.1f} {r['p50_ms']:>10.1f} {r['p99_ms']:>10.1f} "
              f"{sum(r['errors'].values()):>7} {r['events']:>10} {r['drain_s']:>8.1f} {r['agent_cpu_ms']:>7.2f} ms {r['load_cpu_ms']:>7.2f} ms  {r['methods']}")
        if r["errors"]:
            print(f"{'':>14} errors: {r['errors']}")
    print(f"\nevents at the sink by type: {dict(sink.types)}")


if __name__ == "__main__":
    main()
