"""Agent memory against the size of one webhook (not a unit test; prints a table).

    .venv/bin/python bench/memory.py [--sizes 1,100,1000,3000,10000] [--cli .venv/bin/agent-sre]

For each size N it starts a fresh `agent-sre serve` (default settings, the shipped model in process,
state in a temporary STATE_DIR, the in-process broker), posts ONE Alertmanager webhook of N
`PodCrashLoopBackOff` alerts (distinct pods over 40 namespaces) and reads /proc/PID/status: VmRSS
before the request and after the answer, and VmHWM (the peak). It then reads the audit log to
check that every alert was decided exactly once (a request that outlives its inbox lease would
have some alerts decided a second time by the background worker). Target: RSS under 600 MB at
10,000 alerts, no alert decided twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from _support import free_port, stop

ROOT = Path(__file__).resolve().parents[1]


def status(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024
    return out


def webhook(n: int) -> bytes:
    alerts = [{"status": "firing", "labels": {"alertname": "PodCrashLoopBackOff", "namespace": f"ns{i % 40}",
                                              "pod": f"sonarr-6c5b7d9f4-{i:05d}", "container": "sonarr",
                                              "severity": "critical"},
               "annotations": {"summary": "container keeps crashing"}, "startsAt": "2026-11-29T10:00:00Z",
               "fingerprint": f"{i:016x}"} for i in range(n)]
    return json.dumps({"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "{}:{}",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": alerts}).encode()


def run_once(cli: str, n: int, timeout: float = 600) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="memory-") as state:
        env = {**os.environ, "STATE_DIR": state, "LOG_LEVEL": "warning"}
        log = open(Path(state) / "log", "w+")
        p = subprocess.Popen([cli, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            t0 = time.time()
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                        break
                except OSError:
                    if p.poll() is not None or time.time() - t0 > 60:
                        log.seek(0)
                        raise RuntimeError(f"serve did not start: {log.read()[-300:]}") from None
                    time.sleep(0.05)
            before = status(p.pid)
            body = webhook(n)
            req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            t1 = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    code, answer = r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                code, answer = e.code, {}
            took = time.perf_counter() - t1
            after = status(p.pid)
            time.sleep(1.0)  # let the background worker run: a second decision would show in the audit
            decided = Counter(rec["correlation_id"] for f in sorted(Path(state).glob("audit.jsonl*"))
                              for rec in map(json.loads, open(f)) if rec.get("kind") == "decision")
            return {"n": n, "code": code, "s": took, "body_mb": len(body) / 2**20, "before": before["VmRSS"],
                    "after": after["VmRSS"], "peak": after["VmHWM"], "decided": len(decided),
                    "twice": sum(1 for c in decided.values() if c > 1),
                    "answer_outcomes": len(answer.get("outcomes", []))}
        finally:
            stop(p, 30)
            log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,100,1000,3000,10000")
    ap.add_argument("--cli", default=str(ROOT / ".venv" / "bin" / "agent-sre"))
    args = ap.parse_args()
    rows = [run_once(args.cli, int(n)) for n in args.sizes.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| alerts per request | body | HTTP | time | RSS before | RSS after | peak RSS | decided | twice | "
          "outcomes in answer |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['body_mb']:.1f} MiB | {r['code']} | {r['s']:.1f} s | {r['before']:.0f} MB | "
              f"{r['after']:.0f} MB | {r['peak']:.0f} MB | {r['decided']:,} | {r['twice']} | "
              f"{r['answer_outcomes']} |")


if __name__ == "__main__":
    main()
