"""Alert storms against agent-sre: one decision per incident? (not a unit test; prints a table).

    .venv/bin/python bench/storms.py http [--seed 0] [--time-scale 1.0] [--env KEY=VALUE ...]
    .venv/bin/python bench/storms.py offline [--seed 0] [--storms 16] [--trm runs/incident ...]
    .venv/bin/python bench/storms.py settle [--seed 0] [--storms 64]
    .venv/bin/python bench/storms.py depth --trm runs/incident-rec --trm runs/incident-plain

``http``: for each storm of the set (``incidents.scenarios.storm_set``: 16 storms, 3 of each
incident kind, 2 of each control), start the real agent (``agent-sre serve``, a subprocess, fresh
STATE_DIR, BROKER_URL pointing at a loopback CloudEvent sink run here), POST Alertmanager's
webhooks to it at the instants Alertmanager would send them (grouped by alertname and namespace,
``group_wait`` 1 s, ``group_interval`` 2 s, times ``--time-scale``), wait until its inbox and
outbox are drained, and score the CloudEvents that reached the sink (triggers, escalations)
against the storm's ideal. ``--env INCIDENTS=false`` gives the agent without its incident layer.

``offline``: the same storms through the incident desk under a simulated clock (``storm_replay``),
with the deterministic correlator, and with each TRM run given by ``--trm`` in its place; plus
the agent without incidents. Same chain, same gate, same scoring.

``settle``: the offline replay over settle windows (0 to 30 s) and storm clocks (x1: Alertmanager
``group_wait`` 1 s, ``group_interval`` 2 s; x3: three times slower): ideal storms, excess triggers
and the delay added to the controls' actions, to choose ``INCIDENT_SETTLE_SECONDS``.

Figures: storms handled ideally (every ideal trigger sent once, nothing else, the expected number of
escalations, no unrelated alert held), triggers sent vs ideal, excess, forbidden actions (a pod
restarted on a down node, any action on a symptom), pod restarts on a down node, escalations,
storm-breaker openings.

``depth``: the incident TRMs on held-out views with the recursion cut to 1..N_sup supervision steps,
and with ACT deciding (the depth ablation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _support import LoopbackSink, free_port, stop, wait_up
from storm_replay import DecisionCache, Score, Sent, replay, score

from agent_sre import ce, keys
from agent_sre.agent import needs_nothing
from agent_sre.incidents.desk import Desk
from agent_sre.incidents.scenarios import Scenario, deliveries, storm_set

ROOT = Path(__file__).resolve().parents[1]
GROUP_WAIT, GROUP_INTERVAL = 1.0, 2.0


# ----------------------------------------------------------------------------------------- table

def table(rows: list[tuple[str, list[tuple[Scenario, Score]]]]) -> str:
    head = ("| method | ideal storms | triggers (ideal) | excess | forbidden | restarts on down node | "
            "escalations (expected) | unrelated held | breaker opened |")
    out = [head, "| --- " * 9 + "|"]
    for name, scored in rows:
        s = [sc for _, sc in scored]
        out.append(f"| {name} | {sum(x.ideal for x in s)}/{len(s)} | {sum(x.triggers for x in s)} "
                   f"({sum(x.ideal_triggers for x in s)}) | {sum(x.excess for x in s)} | "
                   f"{sum(x.forbidden for x in s)} | {sum(x.restarts_on_down_node for x in s)} | "
                   f"{sum(x.escalations for x in s)} ({sum(x.expected_escalations for x in s)}) | "
                   f"{sum(x.held_unrelated for x in s)} | {sum(x.storm_opened for x in s)} |")
    return "\n".join(out)


def by_kind(scored: list[tuple[Scenario, Score]]) -> str:
    kinds: dict[str, list[Score]] = {}
    for scn, s in scored:
        kinds.setdefault(scn.kind, []).append(s)
    return ", ".join(f"{k} {sum(x.ideal for x in v)}/{len(v)}" for k, v in kinds.items())


# ----------------------------------------------------------------------------------------- http

class Sink(LoopbackSink):
    """Keeps every CloudEvent the agent sends (the broker's place)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        super().__init__(lambda headers, body: self.events.append(ce.from_http(dict(headers), body)))


def _sent_from(events: list[Any], held: dict[str, str]) -> Sent:
    sent = Sent(held=held)
    for ev in events:
        data = ce.data_of(ev) or {}
        fp = (data.get("alert") or {}).get("fingerprint", "")
        if ev.get_type().endswith("lambda.trigger"):
            if data.get("step", 0) == 0:
                sent.triggers.append((data.get("lambda_function", ""), data.get("parameters") or {}, fp))
        elif ev.get_type().endswith("escalation"):
            sent.escalations.append((fp, str(data.get("code", ""))))
            sent.storm_opened |= "storm" in str(data.get("code", ""))
    return sent


def _drained(url: str) -> bool:
    try:
        doc = httpx.get(url + "/readyz", timeout=5).json()
    except httpx.HTTPError:
        return False
    ob = doc.get("outbox") or {}
    return not (ob.get("inbox") or {}).get("pending") and not (ob.get("events") or {}).get("pending")


def play_http(scn: Scenario, env: dict[str, str], time_scale: float, timeout: float) -> tuple[Sent, float]:
    sink = Sink()
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        keys.generate(Path(state) / "keys")  # a broker means signed triggers: a fresh key set per run
        penv = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "STATE_DIR": state, "BROKER_URL": sink.url,
                "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning",
                **keys.env(Path(state) / "keys", keys.AGENT_MOUNTS), **env}
        proc = subprocess.Popen([str(Path(sys.executable).parent / "agent-sre"), "serve"], env=penv, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_up(proc, url + "/readyz", 120):
                raise SystemExit(f"agent did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            plan = deliveries(scn, GROUP_WAIT, GROUP_INTERVAL, time_scale=time_scale)
            t0 = time.monotonic()
            with httpx.Client(timeout=30) as client:
                for d in plan:
                    wait = d.at - (time.monotonic() - t0)
                    if wait > 0:
                        time.sleep(wait)
                    r = client.post(url + "/webhook", json=d.payload)
                    if r.status_code != 202:
                        raise SystemExit(f"webhook refused: {r.status_code} {r.text[:300]}")
            played = time.monotonic() - t0
            end = time.time() + timeout
            time.sleep(0.5)
            while time.time() < end and not _drained(url):
                time.sleep(0.2)
            time.sleep(0.3)
            held: dict[str, str] = {}
            try:
                r = httpx.get(url + "/incidents", timeout=5)
                if r.status_code == 200:
                    held = {a["fingerprint"]: a.get("root") or "" for a in r.json().get("alerts", [])
                            if a.get("state") == "held"}
            except httpx.HTTPError:
                pass
        finally:
            stop(proc)
    with sink.lock:
        return _sent_from(list(sink.events), held), played


def cmd_http(a: argparse.Namespace) -> None:
    env = dict(kv.split("=", 1) for kv in a.env)
    storms = storm_set(a.seed)[: a.storms]
    scored = []
    for scn in storms:
        sent, played = play_http(scn, env, a.time_scale, a.timeout)
        s = score(scn, sent)
        scored.append((scn, s))
        flag = "ideal" if s.ideal else "NOT ideal"
        print(f"{scn.name:12s} {len(scn.alerts):3d} alerts, played {played:5.1f}s: {flag}: triggers {s.triggers} "
              f"(ideal {s.ideal_triggers}), escalations {s.escalations} (expected {s.expected_escalations}), "
              f"forbidden {s.forbidden}  [{'; '.join(scn.notes)}]", flush=True)
    label = "agent-sre serve " + (" ".join(a.env) if a.env else "(defaults)")
    print()
    print(table([(label, scored)]))
    print(f"\nby kind: {by_kind(scored)}")


# ----------------------------------------------------------------------------------------- offline

def _chain():
    from agent_sre.chain.chain import Chain

    return DecisionCache(Chain())


def run_offline(storms: list[Scenario], decide, make_desk, time_scale: float = 1.0) -> list[tuple[Scenario, Score, Sent]]:
    out = []
    for scn in storms:
        sent = replay(scn, decide, make_desk, group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL,
                      time_scale=time_scale)
        out.append((scn, score(scn, sent), sent))
    return out


def cmd_offline(a: argparse.Namespace) -> None:
    storms = storm_set(a.seed) if a.storms == 16 else [s for i in range(a.storms // 16 + 1)
                                                          for s in storm_set(a.seed + i)][: a.storms]
    decide = _chain()
    rows = [("no incident layer", lambda: None)]
    rows.append((f"correlator (settle {a.settle:g}s)",
                 lambda: lambda: Desk(settle_s=a.settle, needs_nothing=needs_nothing)))
    for run in a.trm:
        from agent_sre.trm.incident import TRMCorrelator

        trm = TRMCorrelator.load(run)
        rows.append((f"TRM {Path(run).name} (settle {a.settle:g}s)",
                     lambda trm=trm: lambda: Desk(settle_s=a.settle, needs_nothing=needs_nothing, correlator=trm)))
    results = []
    for name, factory in rows:
        t = time.time()
        res = run_offline(storms, decide, factory())
        results.append((name, [(scn, s) for scn, s, _ in res]))
        print(f"{name}: {time.time() - t:.1f}s; by kind: {by_kind([(scn, s) for scn, s, _ in res])}", flush=True)
        if a.verbose:
            for scn, s, _ in res:
                if not s.ideal:
                    print(f"   not ideal: {scn.name} {scn.notes} {s.row()}")
    print()
    print(table(results))


def cmd_settle(a: argparse.Namespace) -> None:
    storms = [s for i in range(a.storms // 16 + 1) for s in storm_set(a.seed + i)][: a.storms]
    decide = _chain()
    print("| storm clock | settle window (s) | ideal storms | excess triggers | forbidden | control storms: "
          "median / max seconds from first webhook to trigger |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scale in a.time_scales:
        for settle in a.windows:
            res = run_offline(storms, decide, lambda: Desk(settle_s=settle, needs_nothing=needs_nothing), scale)
            lat = [x for scn, _, sent in res if scn.kind == "control" for x in sent.latency]
            print(f"| x{scale:g} | {settle:g} | {sum(s.ideal for _, s, _ in res)}/{len(res)} | "
                  f"{sum(s.excess for _, s, _ in res)} | {sum(s.forbidden for _, s, _ in res)} | "
                  f"{statistics.median(lat):.1f} / {max(lat):.1f} |", flush=True)


def cmd_depth(a: argparse.Namespace) -> None:
    """Accuracy of each incident TRM on held-out views (storms of another seed), with the
    supervision steps forced to 1..N_sup and with ACT deciding."""
    import torch

    from agent_sre.trm import incident as I
    from agent_sre.trm.checkpoint import model_from_checkpoint
    from agent_sre.trm.model import IGNORE_INDEX

    X, Y = I.dataset(a.val_storms, 4242)
    print(f"{len(X)} held-out views of {a.val_storms} storms (seed 4242)\n")
    print("| model | n, T, N_sup | steps | exact (all alerts of a view right) | per alert |")
    print("| --- | --- | --- | --- | --- |")
    for run in a.trm:
        model, cfg = model_from_checkpoint(Path(run) / "checkpoint.pt")
        for k in [*range(1, cfg.n_sup + 1), "ACT"]:
            ok_tok = n_tok = ok_seq = steps = 0
            with torch.inference_mode():
                for i in range(0, len(X), 256):
                    xb, yb = X[i:i + 256], Y[i:i + 256]
                    out = model.predict(xb) if k == "ACT" else model.predict(xb, max_steps=k, halt_threshold=float("inf"))
                    pred, mask = out["probs"].argmax(-1), yb != IGNORE_INDEX
                    ok = (pred == yb) & mask
                    ok_tok, n_tok = ok_tok + int(ok.sum()), n_tok + int(mask.sum())
                    ok_seq += int((ok | ~mask).all(-1).sum())
                    steps += float(out["steps"].float().sum())
            print(f"| {Path(run).name} | {cfg.n}, {cfg.T}, {cfg.n_sup} | {k if k != 'ACT' else f'ACT ({steps / len(X):.2f})'} | "
                  f"{ok_seq / len(X):.1%} | {ok_tok / n_tok:.1%} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("http")
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--storms", type=int, default=16)
    h.add_argument("--time-scale", type=float, default=1.0)
    h.add_argument("--timeout", type=float, default=60.0, help="longest wait for the agent to drain, per storm")
    h.add_argument("--env", action="append", default=[], help="KEY=VALUE for the agent (repeatable)")
    o = sub.add_parser("offline")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--storms", type=int, default=16)
    o.add_argument("--settle", type=float, default=10.0)
    o.add_argument("--trm", action="append", default=[], help="a TRM incident run directory (repeatable)")
    o.add_argument("--verbose", action="store_true")
    s = sub.add_parser("settle")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--storms", type=int, default=64)
    s.add_argument("--windows", type=float, nargs="+", default=[0, 2, 4, 6, 10, 16, 30])
    s.add_argument("--time-scales", type=float, nargs="+", default=[1.0, 3.0],
                   help="the storm's clock: x3 = Alertmanager group_wait 3 s, group_interval 6 s, roots up to ~15 s late")
    d = sub.add_parser("depth")
    d.add_argument("--trm", action="append", default=[], required=True, help="a TRM incident run directory (repeatable)")
    d.add_argument("--val-storms", type=int, default=300)
    a = ap.parse_args()
    {"http": cmd_http, "offline": cmd_offline, "settle": cmd_settle, "depth": cmd_depth}[a.cmd](a)


if __name__ == "__main__":
    main()
