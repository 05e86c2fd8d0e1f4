"""Cold start and memory of the services (not a unit test; prints a table).

    .venv/bin/python bench/footprint.py [--runs 3] [--cli .venv/bin/agent-sre] [--commands serve,...]

For each command (`serve`, `serve-function`, `serve-reasoning`, with the shipped model and the
default settings, state in a temporary STATE_DIR) it starts the real process on a loopback port and
measures the time from the start of the process to the first 200 on /readyz (for `serve` and
`serve-reasoning` that includes loading the TRM), the resident memory (VmRSS) right after, and
whether libtorch or ONNX Runtime is mapped into the process (/proc/PID/maps). Each command runs
``--runs`` times; the table shows the median and the range. ``--cli`` measures another install (e.g.
a virtual environment made with `pip install .`, the runtime without torch).
Targets for `serve`: ready within 1.5 s, RSS at most 200 MB, libtorch not loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from _support import free_port, stop

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mapped(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        text = f.read()
    return {name for name, lib in (("libtorch", "libtorch"), ("onnxruntime", "onnxruntime")) if lib in text}


def start_once(cli: str, command: str, timeout: float = 60) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="footprint-") as state:
        env = {**os.environ, "STATE_DIR": state, "LOG_LEVEL": "warning"}
        if command == "serve-function":  # it does not start without its keys: give it a fresh set
            subprocess.run([cli, "keys", "generate", "--out", f"{state}/keys"], check=True, capture_output=True)
            env.update(AGENT_PUBLIC_KEYS=f"{state}/keys/agent-public-keys",
                       FUNCTION_SIGNING_KEY=f"{state}/keys/function-signing-key/function.pem")
        log = open(Path(state) / "log", "w+")
        t0 = time.perf_counter()
        p = subprocess.Popen([cli, command, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            ready = None
            while time.perf_counter() - t0 < timeout and p.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                        if r.status == 200:
                            ready = time.perf_counter() - t0
                            break
                except OSError:
                    time.sleep(0.01)
            if ready is None:
                log.seek(0)
                raise RuntimeError(f"{command} not ready in {timeout:.0f} s: {log.read()[-300:]}")
            return {"ready_s": ready, "rss_mb": rss_mb(p.pid), "mapped": mapped(p.pid)}
        finally:
            stop(p, 10)
            log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli", default=str(ROOT / ".venv" / "bin" / "agent-sre"))
    ap.add_argument("--commands", default="serve,serve-function,serve-reasoning")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    rows = []
    for command in [c for c in args.commands.split(",") if c]:
        runs = [start_once(args.cli, command) for _ in range(args.runs)]
        rows.append((command, runs))
    print(f"\n{args.cli}, {os.cpu_count()} CPU cores, {args.runs} runs each (median, range); load average "
          f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end.\n")
    print(f"{'command':<16} {'ready (s)':<18} {'RSS (MB)':<15} {'libtorch':<9} onnxruntime")
    for command, runs in rows:
        ready = [r["ready_s"] for r in runs]
        rss = [r["rss_mb"] for r in runs]
        libs = set.union(*(r["mapped"] for r in runs))
        ready_s = f"{statistics.median(ready):.2f} ({min(ready):.2f}-{max(ready):.2f})"
        rss_s = f"{statistics.median(rss):.0f} ({min(rss):.0f}-{max(rss):.0f})"
        print(f"{command:<16} {ready_s:<18} {rss_s:<15} {'LOADED' if 'libtorch' in libs else 'no':<9} "
              f"{'yes' if 'onnxruntime' in libs else 'no'}")


if __name__ == "__main__":
    main()
