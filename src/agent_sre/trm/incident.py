"""The TRM over a set of alerts: for each firing alert, act, escalate for the incident, or
"symptom of alert k".

The same evidence as the deterministic correlator (``incidents.evidence.Facts``), put in one grid:

* up to ``K`` alerts, ``P = 3`` positions each: the alert itself, then two pointers (a pod: its
  node and its ReplicaSet; a Flux object: the first two sources or dependencies it names);
* channels: segment (self / pointer kind), what the alert is about (node outage, each Flux kind,
  pod, workload, volume...), an *entity id*, evidence flags (the message says "source not ready",
  the message names a failure of its own), when it started (rank among the alerts), and its slot.

Entity ids are local to one grid: the first object named gets 1, the next 2, ... (shuffled in
training), so matching "the node this pod runs on" with "the node that is down" is matching two
equal ids, whatever the names; nothing depends on a vocabulary of names.

Output (at each alert's first position): ``ACT`` (decide on its own), ``LEAD`` (speak for an
incident with no alert of its own cause: escalate once) or ``SYM + k`` (a symptom of the alert in
slot k). ``TRMCorrelator`` turns the answers into ``correlate.Role``s, so the desk can use the
model in place of the correlator.

Training data: generated storms (``incidents.scenarios``) seen after each Alertmanager delivery,
with a share of two storms mixed into one view; the label of an alert is the first of its causes
that is firing in that view (the truth the generator records), else ``ACT``.

    python -m agent_sre.trm.incident train --out runs/incident [--n-sup 4 --n 2 --T 2]
    python -m agent_sre.trm.incident eval --model runs/incident
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from ..alerts import Alert
from ..incidents import scenarios as S
from ..incidents.correlate import Role
from ..incidents.evidence import FLUX_KINDS, Facts, facts, words
from .checkpoint import model_from_checkpoint
from .model import IGNORE_INDEX, TRM, TRMConfig
from .train import TrainConfig, evaluate_accuracy, train

K = 32  # alerts per grid
P = 3  # positions per alert
L = K * P
SEG_SELF, SEG_NODE, SEG_RS, SEG_UP = 1, 2, 3, 4
CLASSES = ["node-outage", "node", *[f"flux:{k}" for k in FLUX_KINDS], "flux-source?", "flux", "pod", "workload",
           "volume", "other"]
N_ENT = 3 * K + 4
N_TIME = 10
ACT, LEAD, SYM = 0, 1, 2
N_OUT = SYM + K
FEATURES = (5, len(CLASSES) + 1, N_ENT + 1, 9, N_TIME + 1, K + 1)  # vocab per channel (0 = padding)


def _class(f: Facts) -> int:
    if f.subject == "node":
        name = "node-outage" if f.outage else "node"
    elif f.subject == "flux":
        if f.flux_kind:
            name = f"flux:{f.flux_kind}"
        else:
            name = "flux-source?" if "source" in words(f.alertname) else "flux"
    else:
        name = f.subject
    return CLASSES.index(name) + 1


def _flags(f: Facts) -> int:
    return 1 + int(f.upstream_hint) + 2 * int(f.own_cause) + 4 * int(f.node is not None)


def encode(fs: list[Facts], rng: random.Random | None = None) -> tuple[torch.Tensor, list[str]]:
    """Facts (in arrival order, at most K) → x Long[L, 6] and the fingerprint in each slot."""
    fs = fs[:K]
    ents: dict[tuple[str, str, str], int] = {}
    ids = list(range(1, N_ENT + 1))
    if rng is not None:
        rng.shuffle(ids)
    flux_names: dict[str, list[tuple[str, str]]] = {}
    for f in fs:
        if f.subject == "flux" and f.ident is not None:
            flux_names.setdefault(f.ident.name, []).append((f.ident.namespace, f.ident.name))

    def ent(kind: str, ns: str, name: str) -> int:
        key = (kind, ns, name)
        if key not in ents:
            if len(ents) >= N_ENT:
                return 0
            ents[key] = ids[len(ents)]
        return ents[key]

    def flux_ent(ns: str, name: str, own_ns: str) -> int:
        if not ns:  # named without a namespace: the firing object of that name (own namespace first)
            found = flux_names.get(name, [])
            ns = next((n for n, _ in found if n == own_ns), found[0][0] if found else own_ns)
        return ent("flux", ns, name)

    starts = sorted({f.started for f in fs if f.started is not None})
    x = torch.zeros(L, len(FEATURES), dtype=torch.long)
    for i, f in enumerate(fs):
        rank = 1 + min(N_TIME - 1, starts.index(f.started)) if f.started is not None else N_TIME
        own = 0
        if f.ident is not None:
            kind = "flux" if f.subject == "flux" else f.ident.kind
            own = ent(kind, f.ident.namespace, f.ident.name)
        base = i * P
        x[base] = torch.tensor([SEG_SELF, _class(f), own, _flags(f), rank, i + 1])
        ptrs: list[tuple[int, int]] = []
        if f.subject == "pod":
            if f.node:
                ptrs.append((SEG_NODE, ent("node", "", f.node)))
            if f.replicaset is not None:  # its owner: the Deployment when the name tells, else the ReplicaSet
                ptrs.append((SEG_RS, ent("deployment", f.replicaset.namespace, f.deployment) if f.deployment
                             else ent("replicaset", f.replicaset.namespace, f.replicaset.name)))
        elif f.subject == "flux" and f.ident is not None:
            for r in f.upstream[:2]:
                ptrs.append((SEG_UP, flux_ent(r.namespace, r.name, f.ident.namespace)))
        for j, (seg, e) in enumerate(ptrs[:P - 1]):
            x[base + 1 + j] = torch.tensor([seg, 0, e, 0, 0, i + 1])
    return x, [f.fp for f in fs]


# ------------------------------------------------------------------------------------------ truth

def truth_labels(view: list[S.StormAlert]) -> dict[str, tuple[int, str | None]]:
    """For alerts present in ``view``: (ACT | LEAD | SYM, root fingerprint for SYM)."""
    present = {a.fingerprint: a for a in view}
    out: dict[str, tuple[int, str | None]] = {}
    leads: dict[str, str] = {}
    for a in view:
        if a.truth == "symptom" or a.truth == "lead":
            if a.cause is None and a.incident:  # a rollout with no alert for its cause: the earliest pod leads
                if a.incident not in leads:
                    members = [m for m in view if m.incident == a.incident and m.cause is None]
                    if len(members) >= 2:
                        leads[a.incident] = min(members, key=lambda m: (m.starts, m.fingerprint)).fingerprint
    for a in view:
        c, seen = a.cause, set()
        root = None
        while c is not None and id(c) not in seen:
            seen.add(id(c))
            if c.fingerprint in present:
                root = c.fingerprint
            c = c.cause
        # the nearest firing cause is enough; chains resolve to the ultimate one like the correlator
        if root is not None:
            out[a.fingerprint] = (SYM, root)
        elif a.incident in leads:
            lead = leads[a.incident]
            out[a.fingerprint] = (LEAD, None) if a.fingerprint == lead else (SYM, lead)
        else:
            out[a.fingerprint] = (ACT, None)
    return out


def _views(scn: S.Scenario, rng: random.Random) -> list[list[S.StormAlert]]:
    """The storm as the agent sees it after each delivery (alerts delivered so far)."""
    by_fp = scn.by_fp()
    seen: dict[str, S.StormAlert] = {}
    out = []
    for d in S.deliveries(scn, rng.choice([0.5, 1.0, 2.0]), rng.choice([1.0, 2.0, 4.0])):
        for a in d.payload["alerts"]:
            if a["status"] == "firing":
                seen.setdefault(a["fingerprint"], by_fp[a["fingerprint"]])
        out.append(list(seen.values()))
    return out


def example(view: list[S.StormAlert], rng: random.Random | None) -> tuple[torch.Tensor, torch.Tensor]:
    alerts = [Alert.model_validate(a.alert_doc()) for a in view]
    fs = [facts(a) for a in alerts][:K]
    x, slots = encode(fs, rng)
    truth = truth_labels(view)
    y = torch.full((L,), IGNORE_INDEX, dtype=torch.long)
    slot_of = {fp: i for i, fp in enumerate(slots)}
    for i, fp in enumerate(slots):
        cls, root = truth.get(fp, (ACT, None))
        if cls == SYM:
            cls = SYM + slot_of[root] if root in slot_of else ACT
        y[i * P] = cls
    return x, y


def dataset(n: int, seed: int, mix: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Grids from ``n`` generated storms (seeds ``seed*100000 + i``), every delivery's view, a share
    ``mix`` of them with a second storm of another kind firing at the same time."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(n):
        kind = S.KINDS[i % len(S.KINDS)]
        scn = S.generate(kind, seed * 100000 + i)
        views = _views(scn, rng)
        if rng.random() < mix:
            other = S.generate(rng.choice(S.KINDS), seed * 100000 + n + i)
            extra = other.alerts[:rng.randint(1, len(other.alerts))]
            views = [v + extra for v in views] + [list(extra) + views[-1]]
        for v in views:
            order = sorted(v, key=lambda a: (a.at, a.fingerprint))
            if rng.random() < 0.5:
                rng.shuffle(order)  # the slot order carries no meaning
            x, y = example(order[:K], rng)
            xs.append(x)
            ys.append(y)
    return torch.stack(xs), torch.stack(ys)


# ------------------------------------------------------------------------------------------ use

class TRMCorrelator:
    """The model as a correlator: Facts of the firing alerts → Roles (same contract as
    ``correlate.correlate``). Alerts beyond ``K`` are left alone."""

    def __init__(self, model: TRM):
        self.model = model.eval()

    @classmethod
    def load(cls, run_dir: str | Path) -> "TRMCorrelator":
        model, _ = model_from_checkpoint(Path(run_dir) / "checkpoint.pt")
        return cls(model)

    def __call__(self, fs: list[Facts]) -> dict[str, Role]:
        fs = sorted(fs, key=lambda f: (f.started if f.started is not None else float("inf"), f.fp))
        if not fs:
            return {}
        x, slots = encode(fs)
        with torch.inference_mode():
            pred = self.model.predict(x[None])["probs"][0].argmax(-1)
        cls = {fp: int(pred[i * P]) for i, fp in enumerate(slots)}
        parent: dict[str, str] = {}
        for i, fp in enumerate(slots):
            c = cls[fp]
            if c >= SYM and c - SYM < len(slots) and slots[c - SYM] != fp:
                parent[fp] = slots[c - SYM]
        roles: dict[str, Role] = {}
        for fp in slots:
            cur, seen = fp, {fp}
            while cur in parent and parent[cur] not in seen:
                cur = parent[cur]
                seen.add(cur)
            if cur != fp:
                inc = f"lead:{cur}" if cls.get(cur) == LEAD else cur
                roles[fp] = Role("symptom", root=cur, incident=inc, reason="the incident model says so")
        rooted = {r.root for r in roles.values()}
        for fp in [f.fp for f in fs]:
            if fp in roles:
                continue
            if cls.get(fp) == LEAD:
                roles[fp] = Role("lead", incident=f"lead:{fp}", reason="the incident model: lead of an incident")
            elif fp in rooted:
                roles[fp] = Role("root", incident=fp, reason="the incident model: root of an incident")
            else:
                roles[fp] = Role("alone", reason="the incident model: unrelated")
        return roles


# ------------------------------------------------------------------------------------------ training

def model_config(preset: str = "cpu", **overrides: Any) -> TRMConfig:
    return TRMConfig.preset(preset, seq_len=L, feature_vocab=FEATURES, n_out=N_OUT, **overrides)


def train_incident(out: str | Path, *, n_storms: int = 800, seed: int = 0, preset: str = "cpu",
                   epochs: int = 40, max_steps: int | None = 600, lr: float = 2e-3, weight_decay: float = 0.01,
                   progress: bool = True, threads: int | None = 2, **overrides: Any) -> dict[str, Any]:
    """Train on ``n_storms`` generated storms (validation: 150 storms of other seeds) for at most
    ``max_steps`` optimizer steps; the run directory holds checkpoint.pt and train_meta.json.
    Attention ignores padding (``mask_padding``): a view of 3 alerts costs 9 positions, not 96."""
    t0 = time.time()
    X, Y = dataset(n_storms, seed)
    Xv, Yv = dataset(150, seed + 7919)
    mc = model_config(preset, **{"mask_padding": True, **overrides})
    tc = TrainConfig(lr=lr, weight_decay=weight_decay, epochs=epochs, max_steps=max_steps, batch_size=64,
                     warmup_steps=50, seed=seed, device="cpu", checkpoint_every=10**9,
                     eval_every_epochs=epochs + 1, num_threads=threads, schedule="cosine")
    metrics = train(mc, tc, (X, Y), (Xv, Yv), output_dir=out, progress=progress)
    metrics.update({"examples": len(X), "val_examples": len(Xv), "data_s": round(time.time() - t0, 1)})
    model, _ = model_from_checkpoint(Path(out) / "checkpoint.pt")
    metrics.update({f"val_{k}": v for k, v in evaluate_accuracy(model.eval(), Xv, Yv).items()})
    Path(out, "incident_meta.json").write_text(json.dumps({"n_storms": n_storms, "seed": seed, "preset": preset,
                                                           "overrides": overrides, "epochs": epochs,
                                                           "max_steps": max_steps, "lr": lr,
                                                           "weight_decay": weight_decay,
                                                           **{k: v for k, v in metrics.items()
                                                              if isinstance(v, (int, float, str))}}, indent=2))
    return metrics


def evaluate(run_dir: str | Path, n: int = 300, seed: int = 4242) -> dict[str, float]:
    model, _ = model_from_checkpoint(Path(run_dir) / "checkpoint.pt")
    X, Y = dataset(n, seed)
    return evaluate_accuracy(model.eval(), X, Y)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m agent_sre.trm.incident", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--storms", type=int, default=800)
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--max-steps", type=int, default=600)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n", type=int)
    t.add_argument("--T", type=int)
    t.add_argument("--n-sup", type=int)
    e = sub.add_parser("eval")
    e.add_argument("--model", required=True)
    a = ap.parse_args(list(argv) if argv is not None else None)
    if a.cmd == "train":
        ov = {k: v for k, v in (("n", a.n), ("T", a.T), ("n_sup", a.n_sup)) if v is not None}
        m = train_incident(a.out, n_storms=a.storms, epochs=a.epochs, max_steps=a.max_steps, seed=a.seed, **ov)
        print(json.dumps({k: v for k, v in m.items() if isinstance(v, (int, float))}, indent=2))
    else:
        print(json.dumps(evaluate(a.model), indent=2))


if __name__ == "__main__":
    main()
