"""Decision quality and speed of agent-sre's deciders against simple alternatives, side by side.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/compare.py            # full run, writes docs/bench/
    .venv/bin/python bench/compare.py --help

One command, one held-out split: ``trm.generator.generate(n, seed)`` + ``split(seed, by="name")`` (test
alert names and annotation templates never occur in training), plus the public dev set
(``/work/shared/eval/public_alerts.jsonl``; evaluation only, never trained on). Methods (see
``bench/baselines.py`` for exactly how each works): runbook rules, TF-IDF + logistic regression,
MiniLM 1-nearest-neighbour, the packaged TRM (cpu preset), the paper preset when ``--paper-model-dir``
holds GPU-trained weights, and the full chain. With ``--rules-dir``, the TRM and TF-IDF + LR (fit on the
same training split) are also scored on the alerts a real rule set fires (``bench/real_rules.py``). Ablations: the recursion removed (n = T = N_sup = 1)
trained here next to the cpu preset under the same budget, ACT on/off, accuracy per supervision steps.

Writes ``results.json``, ``results.md`` and three PNGs into ``--out`` (default ``docs/bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import baselines as bl  # noqa: E402

PUBLIC = Path("/work/shared/eval/public_alerts.jsonl")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running one method


def run_method(m: bl.BenchMethod, test: list[dict], public: list[dict], *, latency_n: int, batch: int,
               with_speed: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {"method": m.name}
    alerts = [r["alert"] for r in test]
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(alerts), batch):
        preds.extend(m.predict_batch(alerts[i:i + batch]))
    dt = time.perf_counter() - t0
    row["test"] = bl.score(test, preds, subset=False)
    pub = m.predict_batch([r["alert"] for r in public]) if public else None
    row["public"] = bl.score(public, pub, subset=True) if public else None
    row["_public_preds"] = pub
    row["batched_throughput_aps"] = len(alerts) / dt if dt > 0 else None
    row["batch_size"] = batch
    if with_speed and latency_n:
        sample = alerts[:latency_n]
        for a in sample[:min(5, len(sample))]:  # warm-up (lazy loads, allocator)
            m.predict_one(a)
        times = []
        for a in sample:
            t = time.perf_counter()
            m.predict_one(a)
            times.append((time.perf_counter() - t) * 1000)
        row["latency_ms"] = {"p50": bl.percentile(times, 50), "p99": bl.percentile(times, 99), "n": len(times)}
    row["size_bytes"] = m.size_bytes()
    row["train_s"] = m.train_s
    row["train_note"] = m.train_note
    row["_preds"] = preds
    return row


def thresholded(row: dict[str, Any], test: list[dict], public_preds: list[bl.Pred] | None, public: list[dict],
                threshold: float, name: str) -> dict[str, Any]:
    """The same predictions seen through the chain stage: below ``threshold`` it abstains."""

    def cut(preds: list[bl.Pred]) -> list[bl.Pred]:
        return [p if p.abstained or p.confidence >= threshold else
                bl.Pred(None, {}, p.confidence, abstained=True, steps=p.steps) for p in preds]

    out = {k: v for k, v in row.items() if k not in ("test", "public", "_preds", "_public_preds")}
    out["method"] = name
    out["test"] = bl.score(test, cut(row["_preds"]), subset=False)
    out["public"] = bl.score(public, cut(public_preds), subset=True) if public_preds is not None else None
    out["note"] = f"same forward passes as {row['method']}; abstains below confidence {threshold}"
    return out


# --------------------------------------------------------------------------- TRM training (ablation)


def shown(p: Any) -> str:
    """A path as the committed results show it: relative to the repository, so they name no one's
    home directory; anything that is neither an absolute nor an existing path unchanged."""
    s = str(p)
    if s.startswith("-") or not (os.path.isabs(s) or os.path.exists(s)):
        return s
    return os.path.relpath(s, ROOT)


def find_train_meta(model_dir: Path | None, explicit: Path | None = None) -> Path | None:
    """train_meta.json of an exported model: given, beside it, or the training run under runs/ whose export
    has the same weights (sha256 in config.json) as ``model_dir``."""
    if explicit is not None:
        return explicit
    if model_dir is None:
        return None
    for p in (model_dir / "train_meta.json", model_dir.parent / "run" / "train_meta.json",
              model_dir.parent / "train_meta.json"):
        if p.is_file():
            return p
    try:
        sha = json.loads((model_dir / "config.json").read_text())["weights_sha256"]
    except (OSError, KeyError, ValueError):
        return None
    for cfg in sorted((ROOT / "runs").glob("*/*/config.json")):
        try:
            if json.loads(cfg.read_text()).get("weights_sha256") == sha and \
                    (cfg.parent.parent / "run" / "train_meta.json").is_file():
                return cfg.parent.parent / "run" / "train_meta.json"
        except (OSError, ValueError):
            continue
    return None


def load_train_meta(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def member_train_metas(model_dir: Path, explicit: list[Path] | None) -> list[Path]:
    """Every member's train_meta.json: the ones given, else the first member's (``find_train_meta``)
    and, for an ensemble, ``run-k/train_meta.json`` beside its run (``train``'s layout). [] when any
    is missing: a training time that leaves a member out would be wrong."""
    if explicit:
        return list(explicit)
    first = find_train_meta(model_dir)
    if first is None:
        return []
    try:
        n = len(json.loads((model_dir / "config.json").read_text()).get("extra", {}).get("members") or [])
    except (OSError, ValueError):
        return []
    rest = [first.parent.parent / f"run-{k}" / "train_meta.json" for k in range(1, n + 1)]
    return [first, *rest] if all(p.is_file() for p in rest) else []


def train_trm(train: list[dict], val: list[dict], out: Path, *, base_cfg: dict[str, Any] | None, preset: str,
              overrides: dict[str, int], steps: int, seed: int, train_cfg: dict[str, Any],
              threads: int) -> tuple[Path, dict[str, Any]]:
    """The colleagues' pipeline (tokenizer from the training split, ``trm.train.train``, EMA export), with
    model-config overrides, which ``train_from_jsonl`` does not take. ``base_cfg``: the packaged model's
    config (architecture kept, vocabulary sizes from this tokenizer), else ``preset``."""
    import agent_sre.trm.train as trm_train_mod
    from agent_sre import catalog
    from agent_sre.trm.checkpoint import export, model_from_checkpoint
    from agent_sre.trm.encoding import Tokenizer, default_priority_keys
    from agent_sre.trm.recipe import encode_records
    from agent_sre.trm.model import TRMConfig
    from agent_sre.trm.train import TrainConfig

    tok = Tokenizer.build([r["alert"] for r in train], priority_keys=default_priority_keys())
    Xt, Yt = encode_records(tok, train)
    sizes = dict(seq_len=tok.seq_len, feature_vocab=tuple(tok.feature_vocab), n_out=tok.space.n_out)
    if base_cfg:
        mc = TRMConfig(**{**base_cfg, **sizes, **overrides})
    else:
        mc = TRMConfig.preset(preset, **sizes, **overrides)
    known = set(TrainConfig.__dataclass_fields__)
    tcd = {k: v for k, v in train_cfg.items() if k in known}
    # constant LR for both: a cosine schedule is laid out over epochs, which a max_steps run does not finish
    tcd.update(max_steps=steps, epochs=10_000, seed=seed, num_threads=threads, device="cpu",
               checkpoint_every=10**9, schedule="constant")
    tcd.setdefault("warmup_steps", min(100, max(1, steps // 10)))
    tcd["warmup_steps"] = min(int(tcd["warmup_steps"]), max(1, steps // 5))
    tc = TrainConfig(**tcd)
    m = trm_train_mod.train(mc, tc, (Xt, Yt), None, output_dir=out / "run", progress=False)
    ema, _ = model_from_checkpoint(out / "run" / "checkpoint.pt")
    export(ema, mc, out / "model", extra={"tokenizer": tok.to_dict(), "catalog_hash": catalog.catalog_hash(),
                                          "seed": seed, "preset": preset, "overrides": overrides})
    (out / "model" / "train_meta.json").write_text((out / "run" / "train_meta.json").read_text())
    hist = m.get("sup_steps_hist") or {}
    return out / "model", {"steps": m["steps"], "wall_s": m["wall_time_s"], "params": m["param_count"],
                           "batches": sum(hist.values()) // max(1, tc.batch_size) if hist else None,
                           "train_config": tc.to_dict()}


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_acc_latency(rows: list[dict], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, part, title in ((axes[0], "test", "held-out split (by name)"), (axes[1], "public", "public dev set")):
        for i, r in enumerate(rows):
            if not r.get("latency_ms") or not r.get(part):
                continue
            x, y = r["latency_ms"]["p50"], r[part]["exact_accuracy"]
            ax.scatter([x], [y], s=60, color=f"C{i % 10}", zorder=3)
            ax.errorbar([x], [y], xerr=[[0], [max(0.0, r["latency_ms"]["p99"] - x)]], color=f"C{i % 10}",
                        alpha=0.5, capsize=3)
            ax.annotate(r["method"], (x, y), textcoords="offset points", fontsize=8, color=f"C{i % 10}",
                        xytext=(6, (-1) ** i * (4 + 9 * (i % 3))))
        ax.set_xscale("log")
        ax.set_xlabel("latency per alert, ms (p50; bar to p99), log scale")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("exact accuracy (function + parameters)")
    fig.suptitle("Decision quality vs single-alert latency on this CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depth(depth: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for j, (name, d) in enumerate(depth.items()):
        if name.startswith("_"):
            continue
        ks = [c["max_steps"] for c in d["curve"]]
        ax.plot(ks, [c["test_exact"] for c in d["curve"]], "o-", color=f"C{j}", label=f"{name}: held-out exact")
        ax.plot(ks, [c["public_exact"] for c in d["curve"]], "s--", color=f"C{j}", alpha=0.6,
                label=f"{name}: public exact")
        if d.get("act_on"):
            ax.axhline(d["act_on"]["test_exact"], color=f"C{j}", ls=":", alpha=0.7,
                       label=f"{name}: ACT on (mean {d['act_on']['mean_steps']:.2f} steps), held-out")
    for k, (name, r) in enumerate((depth.get("_plain") or {}).items()):
        ax.scatter([1], [r["test_exact"]], marker="X", s=90, color=f"C{k + 5}", zorder=4,
                   label=f"{name} (held-out)")
    ax.set_xlabel("supervision steps run (ACT off, max_steps = k)")
    ax.set_ylabel("exact accuracy")
    ax.set_title("What the recursion buys: accuracy vs depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(rows: list[dict], path: Path, title: str = "Reliability on the held-out split") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    for i, r in enumerate(rows):
        bins = [b for b in r["test"]["reliability"] if b["n"]]
        if not bins:
            continue
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "-", color=f"C{i % 10}", alpha=0.6,
                label=f"{r['method']} (ECE {r['test']['ece']:.3f}, n={r['test']['answered']})")
        ax.scatter([b["confidence"] for b in bins], [b["accuracy"] for b in bins], color=f"C{i % 10}",
                   s=[min(120.0, 8 + 3 * b["n"] ** 0.5) for b in bins], zorder=3)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (bin mean, answered alerts; marker area ~ alerts in bin)")
    ax.set_ylabel("exact accuracy in bin")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def _fmt_size(b: int | None) -> str:
    if b is None:
        return "–"
    return f"{b / 1e6:.1f} MB" if b >= 1e6 else f"{b / 1e3:.0f} kB"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown(res: dict[str, Any], command: str) -> str:
    L = ["# agent-sre decision benchmark", "",
         f"Made by `{command}` in {res['runtime_s']:.0f} s on {res['env']['cpu']} "
         f"({res['env']['cores']} cores, torch threads {res['env']['torch_threads']}, "
         f"load average at start {res['env']['load_start']}, at end {res['env']['load_end']}), commit "
         f"`{res['env']['commit']}`.", "",
         f"Held-out split: {res['data']['source']} + "
         f"`split(seed={res['data']['seed']}, by=\"name\")`: train {res['data']['sizes']['train']}, "
         f"val {res['data']['sizes']['val']}, test {res['data']['sizes']['test']} (test alert names and annotation "
         f"templates never occur in training). {res['data']['split_check']}", "",
         f"Public dev set: {res['data']['public_n']} cases from `{res['data']['public']}` (evaluation only).", "",
         "## Held-out split", "",
         "| method | n | function acc | exact acc | remediations on no-action (resolved) | abstain | ECE | "
         "p50 ms | p99 ms | batched alerts/s | size on disk | training time |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["methods"]:
        if r.get("unavailable"):
            L.append(f"| {r['method']} | – | not available: {r['unavailable']} | | | | | | | | | |")
            continue
        t = r["test"]
        lat = r.get("latency_ms") or {}
        thr = r.get("batched_throughput_aps")
        tr = "–" if r.get("train_s") is None else f"{r['train_s']:.1f} s"
        L.append(f"| {r['method']} | {t['n']} | {_pct(t['function_accuracy'])} | {_pct(t['exact_accuracy'])} | "
                 f"{t['remediations_on_no_action']} ({t['remediations_on_resolved']}) | {_pct(t['abstention_rate'])} | "
                 f"{t['ece']:.3f} | {lat.get('p50', float('nan')):.2f} | {lat.get('p99', float('nan')):.2f} | "
                 f"{'–' if thr is None else f'{thr:.0f}'} | {_fmt_size(r.get('size_bytes'))} | {tr} |")
    L += ["", "## Public dev set", "",
          "| method | function acc | exact acc (score.py rule) | remediations on no-action (resolved) | abstain | ECE |",
          "|---|---|---|---|---|---|"]
    for r in res["methods"]:
        if r.get("unavailable") or not r.get("public"):
            continue
        t = r["public"]
        L.append(f"| {r['method']} | {_pct(t['function_accuracy'])} | {_pct(t['exact_accuracy'])} | "
                 f"{t['remediations_on_no_action']} ({t['remediations_on_resolved']}) | {_pct(t['abstention_rate'])} | "
                 f"{t['ece']:.3f} |")
    real = res.get("real_rules") or {}
    if real.get("methods"):
        inf = real["info"]
        L += ["", "## Real rule sets", "",
              f"`bench/real_rules.py` on `{real['rules_dir']}`: {inf['rules']} alerting rules in {inf['files']} files, "
              f"{inf['alerts']} synthesised alerts as Alertmanager delivers them, {inf['labelled']} with a label. Both "
              f"methods were fit on the same training split. \"at thr\": decided at the stage threshold (the "
              f"TRM's own, recorded with the model; 0.9 for TF-IDF); \"past gate\": wrong remediations at that "
              f"threshold that the stateless gate allows. Borderline rules are not in these rows.", "",
              "| method | threshold | rows | actionable exact (at thr) | no-action kept idle | wrong raw | "
              "wrong past gate | abstain | ECE |", "|---|---|---|---|---|---|---|---|---|"]
        for name, m in real["methods"].items():
            for view in ("raw", "dedup"):
                t = m[view]
                L.append(f"| {name} | {m['threshold']} | {view} | {t['actionable_exact']}/{t['actionable']} "
                         f"({t['actionable_exact_at_threshold']}) | {t['no_action_idle']}/{t['no_action']} | "
                         f"{t['wrong_raw']} | {t['wrong_passing_gate']} | {t['abstained']} | {t['ece']:.3f} |")
        L += ["", "![reliability on real rule sets](reliability_real_rules.png)"]
    ab = res.get("ablations") or {}
    if ab:
        L += ["", "## Ablations: what the recursion buys", ""]
        if ab.get("recursion"):
            rc = ab["recursion"]
            L += [rc["note"], "",
                  "| model | n, T, N_sup | params | optimizer steps | train time | held-out fn acc | held-out exact | "
                  "public exact | remediations on no-action | p50 ms |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
            for m in rc["models"]:
                L.append(f"| {m['name']} | {m['n']}, {m['T']}, {m['n_sup']} | {m['params']:,} | {m['steps']} | "
                         f"{m['wall_s']:.0f} s | {_pct(m['test']['function_accuracy'])} | "
                         f"{_pct(m['test']['exact_accuracy'])} | {_pct(m['public']['exact_accuracy'])} | "
                         f"{m['test']['remediations_on_no_action']} | {m['latency_ms']['p50']:.2f} |")
        if ab.get("act"):
            L += ["", f"ACT at inference (packaged model; accuracy on the first {ab['act'].get('n')} held-out alerts):", "",
                  "| ACT | mean steps | held-out exact | public exact | p50 ms | p99 ms | batched alerts/s |",
                  "|---|---|---|---|---|---|---|"]
            for k, m in ab["act"].items():
                if k == "n":
                    continue
                L.append(f"| {k} | {m['mean_steps']:.2f} | {_pct(m['test_exact'])} | {_pct(m['public_exact'])} | "
                         f"{m['p50']:.2f} | {m['p99']:.2f} | {m['throughput']:.0f} |")
        for name, d in (ab.get("depth") or {}).items():
            if name.startswith("_"):
                continue
            L += ["", f"Accuracy vs supervision steps ({name}, ACT off, `max_steps = k`, first {d.get('n')} held-out "
                  f"alerts; ACT on: {_pct(d['act_on']['test_exact'])} exact at {d['act_on']['mean_steps']:.2f} "
                  f"mean steps):", "",
                  "| k | held-out fn acc | held-out exact | public exact |", "|---|---|---|---|"]
            for c in d["curve"]:
                L.append(f"| {c['max_steps']} | {_pct(c['test_fn'])} | {_pct(c['test_exact'])} | "
                         f"{_pct(c['public_exact'])} |")
    L += ["", "## Definitions", "", *[f"* {x}" for x in res["definitions"]], "",
          "![accuracy vs latency](accuracy_vs_latency.png)", "",
          *(["![accuracy vs depth](accuracy_vs_depth.png)", ""] if res.get("plots", {}).get("depth") else []),
          "![reliability](reliability.png)", ""]
    if res.get("notes"):
        L += ["## Notes", "", *[f"* {x}" for x in res["notes"]], ""]
    return "\n".join(L)


DEFINITIONS = [
    "function acc / exact acc: over ALL alerts; an abstention (escalation, invalid answer, below threshold) counts "
    "as \"no action\", which is what the agent then does. exact = right function and parameters: equal after "
    "catalog normalisation on the held-out split; on the public set every expected parameter must match, as "
    "score.py checks.",
    "remediations on no-action (resolved): any non-null function proposed for an alert whose expectation is no "
    "action (of those, resolved alerts). Must be 0.",
    "abstain: share of alerts the method did not decide (chain/rules: escalated after every stage fell through; "
    "TRM: invalid output, or below the stage threshold; baselines: output the catalog rejects).",
    "ECE: 10 equal-width bins, |mean confidence - exact accuracy| weighted by bin size, over answered alerts. "
    "Rules (and annotations) report confidence 1; logistic regression its max class probability; 1-NN the "
    "share of its 10 nearest neighbours agreeing with the nearest; TRM the predictor's confidence.",
    "latency: one alert per call (parse + decide), p50/p99 over the first alerts of the held-out test split, "
    "after 5 warm-up calls; batched alerts/s: the whole held-out test split in batches of --batch; both on this "
    "CPU with torch intra-op threads = --threads.",
    "size on disk: rules = runbook.yaml; TF-IDF+LR = pickled vectoriser, model and key table; 1-NN = the MiniLM "
    "model files + the float32 index + the neighbours' labels; TRM = exported model directory; chain = "
    "runbook + TRM.",
    "training time: measured here for the baselines; from train_meta.json for the TRM.",
]


# --------------------------------------------------------------------------- main


def _env(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "commit": commit,
            "load_start": round(os.getloadavg()[0], 2)}


def check_split(model_dir: Path | None, info: dict[str, Any]) -> tuple[bool | None, str]:
    """Does the packaged model record the same split (sizes and held-out templates) as ours?"""
    if model_dir is None or not (model_dir / "config.json").is_file():
        return None, "No packaged model to check the split against."
    extra = json.loads((model_dir / "config.json").read_text()).get("extra", {})
    theirs = extra.get("split")
    if not theirs:
        return None, "The model records no split: cannot confirm it never trained on this test split."
    same = (theirs.get("sizes") == info.get("sizes")
            and sorted(theirs.get("held_out_templates", {}).get("test", [])) ==
            sorted(info.get("held_out_templates", {}).get("test", [])))
    if same:
        return True, "The TRM model records the same split (sizes and held-out templates): it never saw this test split."
    return False, (f"WARNING: the TRM model records a different split ({theirs.get('sizes')} vs "
                   f"{info.get('sizes')}); its held-out numbers may include training alerts.")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from agent_sre.trm.infer import default_model_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=44000, help="alerts to generate (the shipped model's recipe)")
    ap.add_argument("--seed", type=int, default=0, help="split seed (and all training seeds)")
    ap.add_argument("--gen-seed", type=int, default=1, help="generate seed (the shipped model's recipe)")
    ap.add_argument("--data", type=Path, default=None,
                    help="the JSONL the TRM was trained from (instead of generating --n alerts)")
    ap.add_argument("--public", type=Path, default=PUBLIC, help="public dev set (evaluation only)")
    ap.add_argument("--model-dir", type=Path, default=None, help="TRM cpu preset export (default: packaged)")
    ap.add_argument("--paper-model-dir", type=Path, default=None, help="TRM paper preset export (GPU-trained)")
    ap.add_argument("--train-meta", type=Path, action="append", default=None,
                    help="train_meta.json of --model-dir, once per ensemble member, first member first (default: "
                         "beside it, or the runs/ export with the same weights, and its members' run-k/)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    ap.add_argument("--methods", default="rules,tfidf,knn,trm,paper,chain")
    ap.add_argument("--test-max", type=int, default=None, help="evaluate on the first N test alerts only")
    ap.add_argument("--knn-max-train", type=int, default=2000, help="1-NN index size (stratified subsample)")
    ap.add_argument("--knn-test-max", type=int, default=None,
                    help="1-NN is evaluated on the first N held-out test alerts (default: all; MiniLM embeds ~25 alerts/s on one core here)")
    ap.add_argument("--depth-test-max", type=int, default=1000,
                    help="the depth curve and ACT on/off use the first N held-out test alerts (N_sup passes each)")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: on a shared 2-core box two OpenMP threads wait on each other "
                         "and single-alert p90 latency jumps to hundreds of ms)")
    ap.add_argument("--threshold", type=float, default=0.9, help="TRM stage threshold for the stage row")
    ap.add_argument("--ablation", choices=["on", "off"], default="on")
    ap.add_argument("--ablation-steps", type=int, default=None,
                    help="optimizer steps for the recursion ablation pair (default: the packaged model's, "
                         "capped by --ablation-max-steps)")
    ap.add_argument("--ablation-max-steps", type=int, default=1500)
    ap.add_argument("--ablation-preset", default="cpu")
    ap.add_argument("--ablation-dir", type=Path, default=ROOT / "runs" / "bench-ablation")
    ap.add_argument("--lr", type=float, default=1e-3, help="ablation learning rate (train_from_jsonl's default)")
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--rules-dir", type=Path, default=None,
                    help="rule files to score TRM and TF-IDF on as well (bench/real_rules.py, its --labels)")
    ap.add_argument("--labels", type=Path, default=None, help="labels for --rules-dir (default: real_rules.py's)")
    ap.add_argument("--replot", action="store_true", help="only redraw the PNGs from --out/results.json")
    a = ap.parse_args(argv)
    if a.replot:
        res = json.loads((a.out / "results.json").read_text())
        present = [r for r in res["methods"] if not r.get("unavailable")]
        plot_acc_latency(present, a.out / "accuracy_vs_latency.png")
        plot_reliability([r for r in present if "@" not in r["method"]], a.out / "reliability.png")
        if res.get("plots", {}).get("depth"):
            plot_depth(res["ablations"]["depth"], a.out / "accuracy_vs_depth.png")
        return res
    command = "HF_HUB_OFFLINE=1 .venv/bin/python bench/compare.py " + " ".join(
        shown(x) for x in (argv if argv is not None else sys.argv[1:]))

    import torch

    torch.set_num_threads(a.threads)
    T0 = time.perf_counter()
    env = _env(a.threads)
    from agent_sre.trm import records as ds
    from agent_sre.trm.generator import generate

    import tempfile

    if a.data:
        log(f"reading {a.data} and splitting by name (seed {a.seed})")
        records = ds.merge([a.data])
        data_desc = f"`merge([{a.data}])`"
    else:
        log(f"generating {a.n} alerts (seed {a.gen_seed}) and splitting by name")
        # the training path exactly: `dataset generate` writes JSONL, train_from_jsonl merges (dedups) it
        with tempfile.TemporaryDirectory() as td:
            ds.write_jsonl(Path(td) / "gen.jsonl", generate(n=a.n, seed=a.gen_seed))
            records = ds.merge([Path(td) / "gen.jsonl"])
        data_desc = f"`generate(n={a.n}, seed={a.gen_seed})` (deduplicated by `merge`, as training does)"
    sp = ds.split(records, seed=a.seed, by="name")
    test = sp.test[:a.test_max] if a.test_max else sp.test
    public = []
    if a.public and a.public.is_file():
        public = [{"alert": c["alert"], "expect": c["expect"], "id": c.get("id")} for c in
                  (json.loads(ln) for ln in a.public.read_text().splitlines() if ln.strip())]
    model_dir = a.model_dir or default_model_path()
    if model_dir is not None and not (Path(model_dir) / "config.json").is_file():
        model_dir = None
    split_ok, split_note = check_split(Path(model_dir) if model_dir else None, sp.info)
    if split_ok is False:
        log(split_note)
    wanted = set(a.methods.split(","))
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    kw = dict(latency_n=a.latency_n, batch=a.batch)

    def go(m: bl.BenchMethod, sub: list[dict] | None = None) -> dict[str, Any]:
        t = test if sub is None else sub
        log(f"evaluating {m.name} on {len(t)} held-out + {len(public)} public alerts")
        r = run_method(m, t, public, **kw)
        rows.append(r)
        log(f"  {m.name}: exact {r['test']['exact_accuracy']:.4f} (public {r['public']['exact_accuracy'] if public else float('nan'):.4f}), "
            f"p50 {r.get('latency_ms', {}).get('p50', float('nan')):.2f} ms")
        return r

    if "rules" in wanted:
        go(bl.RulesMethod())
    tfidf = None
    if "tfidf" in wanted:
        m = tfidf = bl.TfidfLR(seed=a.seed)
        log(f"fitting {m.name} on {len(sp.train)} training alerts")
        m.fit(sp.train)
        go(m)
    if "knn" in wanted:
        m = bl.EmbedKNN(max_train=a.knn_max_train, seed=a.seed)
        log(f"embedding the 1-NN index ({min(len(sp.train), a.knn_max_train or len(sp.train))} alerts)")
        m.fit(sp.train)
        sub = test[:a.knn_test_max] if a.knn_test_max else test
        kw["latency_n"] = min(a.latency_n, 50)
        go(m, sub)
        kw["latency_n"] = a.latency_n
        knn_note = (f"minilm-1nn: its index holds {len(m.index_records)} of the {len(sp.train)} training alerts "
                    f"(stratified by function: `--knn-max-train`), its single-alert latency is measured on 50 alerts")
        if len(sub) < len(test):
            knn_note += f", and it is evaluated on the first {len(sub)} of the {len(test)} held-out test alerts"
        notes.append(knn_note + "; MiniLM embeds ~25 alerts/s on one core here.")
    trm_method = None
    if "trm" in wanted:
        if model_dir is None:
            rows.append({"method": "trm-cpu", "unavailable": "no packaged model (src/agent_sre/data/model/) and no --model-dir"})
        else:
            trm_method = bl.TRMMethod(Path(model_dir), name="trm-cpu")
            paths = member_train_metas(Path(model_dir), a.train_meta)
            tms = [load_train_meta(p) for p in paths]
            if tms and all(tms):
                trm_method.train_s = sum(float(tm["wall_time_s"]) for tm in tms)
                trm_method.train_note = "; ".join(
                    f"{shown(p)}: {tm.get('steps')} optimizer steps on {tm.get('device')}, "
                    f"{(tm.get('train_config') or {}).get('num_threads')} torch thread(s), {tm['wall_time_s']:.0f} s"
                    for p, tm in zip(paths, tms))
            r = go(trm_method)
            rows.append(thresholded(r, test, r["_public_preds"], public, a.threshold,
                                    f"trm-cpu@{a.threshold:g} (stage)"))
    paper_method = None
    if "paper" in wanted:
        pd = a.paper_model_dir
        if pd is None or not (pd / "config.json").is_file():
            rows.append({"method": "trm-paper", "unavailable": "no GPU-trained paper-preset weights given "
                         "(--paper-model-dir); none have been trained yet (it needs a GPU)"})
        else:
            paper_method = bl.TRMMethod(pd, name="trm-paper")
            go(paper_method)
    if "chain" in wanted:
        if os.environ.get("LLM_URL") or os.environ.get("TRM_API_URL"):
            notes.append("LLM_URL/TRM_API_URL were set: the chain row includes remote calls.")
        m = bl.ChainMethod(Path(model_dir) if model_dir else None)
        m.name = "chain"
        r = go(m)
        r["stages"] = m.stage_names

    # ---------------------------------------------------------------- real rule sets
    real: dict[str, Any] = {}
    if a.rules_dir is not None:
        import real_rules as rr

        labels = rr.load_labels(a.labels or rr.LABELS)
        cases, info = rr.build_cases(a.rules_dir, labels)
        scored = [c for c in cases if c["labelled"]]
        log(f"real rules: {info['rules']} rules, {len(cases)} alerts, {len(scored)} labelled")
        real = {"rules_dir": shown(a.rules_dir), "info": {**info, "alerts": len(cases), "labelled": len(scored)},
                "methods": {}}
        for name, m in (("trm-cpu", trm_method), ("tfidf-logreg", tfidf)):
            if m is None:
                continue
            thr = rr.stage_threshold(m, None)  # the TRM at its own stage threshold, TF-IDF at 0.9
            preds = [p for i in range(0, len(scored), 256) for p in m.predict_batch([c["alert"] for c in scored[i:i + 256]])]
            rep_ = rr.report(rr.score(scored, preds, thr), thr)
            real["methods"][name] = {"threshold": thr, **{k: rep_[k] for k in ("raw", "dedup", "borderline")}}
            log(f"  {name}: " + rr._line("", rep_["raw"]).strip())

    # ---------------------------------------------------------------- ablations
    ablations: dict[str, Any] = {}
    if a.ablation == "on" and trm_method is not None:
        depth: dict[str, Any] = {}
        act: dict[str, Any] = {}
        for label, base in (("trm-cpu", trm_method), ("trm-paper", paper_method)):
            if base is None:
                continue
            nsup = base.cfg.n_sup
            dsub = test[:a.depth_test_max] if a.depth_test_max else test
            log(f"depth curve for {label}: max_steps 1..{nsup}, ACT off, {len(dsub)} held-out alerts")
            curve = []
            off = None
            for k in range(1, nsup + 1):
                mk = bl.TRMMethod(base.model_dir, name=f"{label}-k{k}" if k < nsup else f"{label}-act-off",
                                  act=False, max_steps=k, predictor=base.base)
                last = k == nsup and label == "trm-cpu"  # k = N_sup with ACT off is "ACT off": time it too
                rk = run_method(mk, dsub, public, latency_n=a.latency_n if last else 0, batch=a.batch,
                                with_speed=last)
                curve.append({"max_steps": k, "test_fn": rk["test"]["function_accuracy"],
                              "test_exact": rk["test"]["exact_accuracy"],
                              "public_exact": rk["public"]["exact_accuracy"] if public else None,
                              "throughput": rk["batched_throughput_aps"]})
                off = rk
            on = next(r for r in rows if r["method"] == label)
            on_sub = bl.score(dsub, on["_preds"][:len(dsub)], subset=False)
            depth[label] = {"curve": curve, "n": len(dsub),
                            "act_on": {"test_exact": on_sub["exact_accuracy"], "mean_steps": on_sub["mean_steps"] or 0.0}}
            if label == "trm-cpu" and off is not None:
                act["n"] = len(dsub)
                for k, r, sc in (("on", on, on_sub), ("off", off, off["test"])):
                    act[k] = {"mean_steps": sc["mean_steps"], "test_exact": sc["exact_accuracy"],
                              "public_exact": r["public"]["exact_accuracy"] if public else None,
                              "p50": r["latency_ms"]["p50"], "p99": r["latency_ms"]["p99"],
                              "throughput": r["batched_throughput_aps"]}
        ablations["depth"] = depth
        ablations["act"] = act
    if a.ablation == "on" and "trm" in wanted:
        meta = load_train_meta(find_train_meta(Path(model_dir), (a.train_meta or [None])[0])) if model_dir else None
        meta_steps = int(meta["steps"]) if meta and meta.get("steps") is not None else None
        base_cfg = None
        if model_dir is not None:
            base_cfg = json.loads((Path(model_dir) / "config.json").read_text())["model"]
        train_cfg = dict((meta or {}).get("train_config") or {"lr": a.lr, "batch_size": a.train_batch})
        steps = a.ablation_steps or min(meta_steps or a.ablation_max_steps, a.ablation_max_steps)
        rec = {"note": "", "models": []}
        plain: dict[str, Any] = {}
        arch = "the packaged model's architecture" if base_cfg else f"the {a.ablation_preset} preset"
        for name, ov in (("recursive (as packaged)" if base_cfg else f"{a.ablation_preset} preset", {}),
                         ("plain 2-layer (n=T=N_sup=1)", {"n": 1, "T": 1, "n_sup": 1})):
            out = a.ablation_dir / ("recursive" if not ov else "plain")
            log(f"training {name} for {steps} optimizer steps (seed {a.seed})")
            mdir, info = train_trm(sp.train, sp.val, out, base_cfg=base_cfg, preset=a.ablation_preset, overrides=ov,
                                   steps=steps, seed=a.seed, train_cfg=train_cfg, threads=a.threads)
            mm = bl.TRMMethod(mdir, name=name)
            r = run_method(mm, test, public, **kw)
            cfg = mm.cfg
            rec["models"].append({"name": name, "n": cfg.n, "T": cfg.T, "n_sup": cfg.n_sup, "params": info["params"],
                                  "steps": info["steps"], "wall_s": info["wall_s"], "test": r["test"],
                                  "public": r["public"], "latency_ms": r["latency_ms"],
                                  "throughput": r["batched_throughput_aps"], "train_config": info["train_config"]})
            log(f"  {name}: exact {r['test']['exact_accuracy']:.4f} after {info['wall_s']:.0f} s of training")
            if ov:
                plain[name] = {"test_exact": r["test"]["exact_accuracy"]}
        tcfg = rec["models"][0]["train_config"]
        rec["note"] = (f"Both trained here with `trm.train.train` on the same training split and vocabulary, "
                       f"{arch}, seed {a.seed}, lr {tcfg['lr']} constant (after {tcfg['warmup_steps']} warm-up steps), "
                       f"batch {tcfg['batch_size']}, the rest of the packaged training config, "
                       f"max_steps {steps} (ran {rec['models'][0]['steps']} and {rec['models'][1]['steps']}: the trainer "
                       f"checks max_steps at batch boundaries, a batch takes up to N_sup steps) (packaged model: "
                       f"{meta_steps if meta_steps is not None else 'unknown'} steps; budget capped at "
                       f"{a.ablation_max_steps} so it finishes on this CPU). One supervision step is one optimizer "
                       f"step, so at equal steps the plain model sees up to N_sup times more batches.")
        ablations["recursion"] = rec
        ablations.setdefault("depth", {})["_plain"] = plain

    # ---------------------------------------------------------------- write
    a.out.mkdir(parents=True, exist_ok=True)
    present = [r for r in rows if not r.get("unavailable")]
    plot_acc_latency(present, a.out / "accuracy_vs_latency.png")
    plot_reliability([r for r in present if "@" not in r["method"]], a.out / "reliability.png")
    if real.get("methods"):  # calibration where it matters: the alerts real rule sets fire
        plot_reliability([{"method": f"{k} (raw)", "test": {**m["raw"], "answered": m["raw"]["n"]}}
                          for k, m in real["methods"].items()], a.out / "reliability_real_rules.png",
                         title="Reliability on real rule sets (all alerts)")
    has_depth = bool(ablations.get("depth") and any(not k.startswith("_") for k in ablations["depth"]))
    if has_depth:
        plot_depth(ablations["depth"], a.out / "accuracy_vs_depth.png")
    env["load_end"] = round(os.getloadavg()[0], 2)
    res = {"data": {"n": len(records), "source": data_desc, "seed": a.seed, "sizes": sp.info["sizes"], "test_evaluated": len(test),
                    "split_check": split_note, "split_matches_model": split_ok, "public": shown(a.public),
                    "public_n": len(public)},
           "env": env, "command": command, "model_dir": shown(model_dir) if model_dir else None,
           "methods": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
           "ablations": ablations, "real_rules": real, "definitions": DEFINITIONS, "notes": notes,
           "plots": {"depth": has_depth},
           "runtime_s": time.perf_counter() - T0}
    (a.out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    (a.out / "results.md").write_text(markdown(res, command))
    log(f"done in {res['runtime_s']:.0f} s: {a.out}/results.md")
    return res


if __name__ == "__main__":
    main()
