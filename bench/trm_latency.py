"""TRM stage latency and batched throughput per preset (not a unit test; prints a table).

    .venv/bin/python bench/trm_latency.py [--presets cpu,paper] [--budget-s 100] [--model-dir DIR]

For each preset it measures the real chain stage (``agent_sre.chain.trm.TRMStage``: encode → one
``model.predict`` with ACT on the stage's model thread → decode → validate): single-alert latency
p50/p99 (one alert per call) and throughput at batch 64 (alerts/s). The packaged/trained model is measured when present (or --model-dir);
otherwise random weights at the preset's shape. An untrained halting head never halts (its bias starts
at "continue"), so random weights run all n_sup supervision steps: the *worst* case. The ``halt@1`` rows
force halting after the first step (the best case ACT can give a trained, confident model).
Backends: onnx (ONNX Runtime on the export's graph, one supervision step per session run; what serving
uses) and torch (eager, inference mode). Both run the same early-halting loop (``trm.halting``).
Runtime is bounded by --budget-s (default 110 s) plus model set-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # the checkout's package, and testsupport/ beside it

from agent_sre.alerts import parse_payload  # noqa: E402
from agent_sre.chain.trm import TRMStage  # noqa: E402
from agent_sre.trm.infer import default_model_path, load_predictor  # noqa: E402
from testsupport.models import random_export, sample_alerts  # noqa: E402

NEVER_HALT_EARLY = 0.0  # the predictor's default halting logit threshold
HALT_AT_ONCE = -1e9


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(stage: TRMStage, alerts, seconds: float, batch: int = 64) -> dict:
    """Half the time on single-alert calls, half on batched calls; never more than ``seconds`` + one call."""
    t0 = time.perf_counter()
    stage.batch(alerts[:1])  # warm-up
    first = time.perf_counter() - t0
    if first > seconds / 3:  # one alert already eats the budget: report that call, skip the rest
        ms = first * 1000
        return {"p50": ms, "p99": ms, "n_single": 1, "batch": 0, "aps": float("nan"), "calls": 0}
    lat: list[float] = []
    t_end = time.perf_counter() + seconds / 2
    i = 0
    while (time.perf_counter() < t_end and len(lat) < 2000) or len(lat) < 3:
        t0 = time.perf_counter()
        stage.batch([alerts[i % len(alerts)]])
        lat.append((time.perf_counter() - t0) * 1000)
        i += 1
    p50 = statistics.median(lat)
    # a batch of 64 costs less than 64 single calls; if even 64 * p50 / 4 does not fit, use a smaller batch
    while batch > 1 and batch * p50 / 4 / 1000 > seconds / 2:
        batch //= 2
    n, calls = 0, 0
    t0 = time.perf_counter()
    t_end = t0 + seconds / 2
    while time.perf_counter() < t_end or calls == 0:
        stage.batch([alerts[(n + k) % len(alerts)] for k in range(batch)])
        n += batch
        calls += 1
    dt = time.perf_counter() - t0
    return {"p50": p50, "p99": pct(lat, 99), "n_single": len(lat), "batch": batch, "aps": n / dt, "calls": calls}


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("onnxruntime", "torch"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            out.append(f"no {pkg}")
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--backends", default="onnx,torch")
    ap.add_argument("--budget-s", type=float, default=110.0)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of either backend (TORCH_THREADS)")
    args = ap.parse_args()
    started = time.perf_counter()
    load0 = os.getloadavg()[0]
    alerts = [parse_payload(a)[0] for a in sample_alerts(256, seed=7)]
    packaged = Path(args.model_dir) if args.model_dir else default_model_path()
    runs: list[tuple[str, Path, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="trm-bench-"))
    if packaged and (packaged / "config.json").exists():
        runs.append(("packaged", packaged, "trained"))
    for p in [x for x in args.presets.split(",") if x]:
        runs.append((p, random_export(tmp / p, p, seed=0), "random"))
    backends = [b for b in args.backends.split(",") if b]
    n_rows = len(runs) * len(backends) * 2
    rows = []
    for name, d, what in runs:
        for backend in backends:
            try:
                pred = load_predictor(d, backend=backend, threads=args.threads)
            except Exception as e:  # noqa: BLE001
                print(f"{name}/{backend}: unusable ({e})", flush=True)
                n_rows -= 2
                continue
            stage = TRMStage(predictor=pred, threshold=0.0)
            cfg = pred.model.cfg
            params = pred.info.get("parameters") or 0
            for mode, thr in (("ACT" if what == "trained" else "no-halt", NEVER_HALT_EARLY), ("halt@1", HALT_AT_ONCE)):
                stage.predictor.halt_threshold = thr
                left = args.budget_s - (time.perf_counter() - started)
                per_row = max(2.0, left / max(1, n_rows - len(rows)))
                r = measure(stage, alerts, per_row)
                row = (name, what, backend, f"D={cfg.hidden} L={cfg.seq_len} n={cfg.n} T={cfg.T} sup={cfg.n_sup}",
                       f"{params / 1e6:.2f}M", mode, r)
                rows.append(row)
                print(f"  measured {name}/{backend}/{mode} in {per_row:.0f}s budget: p50 {r['p50']:.1f} ms, "
                      f"{r['aps']:.1f} alerts/s @{r['batch']}", file=sys.stderr, flush=True)
    print(f"\nTRM stage (encode + predict with ACT + decode + validate), {os.cpu_count()} CPU cores, "
          f"{versions()}, {args.threads} thread(s); load average at start "
          f"{load0:.1f}, at end {os.getloadavg()[0]:.1f}.\nsingle = one alert per call; batched = B alerts per "
          f"call (64 unless it could not fit the time budget; '-' = one single call already exceeded it). no-halt = random weights never halt (all sup "
          f"steps, worst case); halt@1 = forced halt after step 1 (ACT best case).\n")
    hdr = (f"{'preset':<9} {'weights':<8} {'backend':<7} {'shape':<29} {'params':>7} {'halting':<8} {'p50 ms':>8} "
           f"{'p99 ms':>8} {'n':>5} {'B':>3} {'alerts/s':>9}")
    print(hdr)
    print("-" * len(hdr))
    for name, what, backend, shape, params, mode, r in rows:
        print(f"{name:<9} {what:<8} {backend:<7} {shape:<29} {params:>7} {mode:<8} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['n_single']:>5} {r['batch'] or '-':>3} {r['aps']:>9.1f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
