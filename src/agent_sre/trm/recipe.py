"""The training recipe behind ``agent-sre train``: JSONL records in; vocabulary, split, training,
held-out evaluation and the export (weights, ONNX graph, tokenizer, catalog hash) out.
``reexport`` writes an export again from a training run or from another export."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from .. import catalog
from . import artifact
from .checkpoint import export, load_exported, model_from_checkpoint
from .records import labelled, merge, outcome_weighted, split
from .encoding import Tokenizer, default_priority_keys, label_relevance
from .evaluate import (THRESHOLDS, decision_rows, evaluate_records, pick_threshold, plot_confusion, plot_reliability,
                       safety)
from .infer import load_predictor
from .model import TRMConfig
from .train import TrainConfig, train


def encode_records(tok: Any, records: Iterable[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [N, L, F] and target classes [N, L] for labelled records."""
    X, Y = [], []
    for r in records:
        e = tok.encode(r["alert"])
        X.append(e.ids)
        Y.append(tok.labels(r["alert"], r["expect"], e))
    return torch.tensor(X, dtype=torch.long), torch.tensor(Y, dtype=torch.long)


# Each preset's training recipe (``TrainConfig`` fields; arguments of ``train_from_jsonl`` override them).
# cpu: measured on 2 shared CPU cores — AdamW, cosine lr 2e-3 after 50 warm-up steps, batch 64, EMA
#      0.995, 5 epochs, gradient clipping at 1.0: minutes on a laptop-class CPU.
# paper: the reference recipe (config/cfg_pretrain.yaml of the official code) — AdamATan2, lr 1e-4
#      constant after 2,000 warm-up steps, betas (0.9, 0.95), weight decay 0.1, global batch 768,
#      plain EMA 0.999, stablemax cross-entropy, no gradient clipping, bf16 on CUDA. For a GPU.
# tiny: unit tests.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(lr=2e-3, epochs=5, batch_size=64, schedule="cosine", ema_decay=0.995, warmup_steps=50),
    "paper": dict(lr=1e-4, epochs=100, batch_size=768, schedule="constant", warmup_steps=2000, weight_decay=0.1,
                  betas=(0.9, 0.95), ema_decay=0.999, ema_warmup=False, grad_clip=None, loss="stablemax",
                  optimizer="adamatan2"),
    "tiny": dict(lr=2e-3, epochs=2, batch_size=64, schedule="cosine", ema_decay=0.995, warmup_steps=20),
}
# Models trained (same data, split and vocabulary; other seeds) per preset; at inference their average
# chooses the answer and the least sure member sets its confidence (infer.Predictor.decode): members
# rarely share a confident mistake on an alert unlike their training data, so such a mistake comes out
# unsure (measured: see the README). The cost: training and inference times N.
MEMBERS: dict[str, int] = {"cpu": 2, "paper": 1, "tiny": 1}
SEQ_LEN = 64  # grid length: the labels of a 21-label kube-state-metrics alert leave ~30 annotation words
MAX_LABELS = 24  # label positions; beyond, the runbook's keys then the most decision-relevant ones


def validation_selector(tok: Tokenizer, records: list[dict[str, Any]], threshold: float):
    """``select_fn`` for ``train``: an EMA snapshot ranks by the wrong remediations that would pass the
    gate on validation at the stage ``threshold`` (fewer is better), then by the validation alerts it
    decides right there."""
    from .infer import Predictor, TorchTRM

    def select(model: Any) -> tuple[tuple[float, ...], dict[str, Any]]:
        rows = decision_rows(Predictor(TorchTRM(model), tok), records)
        s = safety(rows, threshold)
        exact = sum(r["right"] for r in rows) / max(1, len(rows))
        return (-s["wrong_allowed"], s["exact_decided"]), {
            "val_wrong_past_gate": s["wrong_allowed"], "val_right_decided": s["exact_decided"],
            "val_exact": round(exact, 5)}

    return select


def train_from_jsonl(training_data: str | Path | list[str | Path], output_dir: str | Path, *, preset: str = "cpu",
                     seed: int = 0, split_by: str = "name", epochs: int | None = None, lr: float | None = None,
                     batch_size: int | None = None, max_steps: int | None = None, threshold: float = 0.9,
                     num_threads: int | None = 1, progress: bool = False,
                     extra_eval: dict[str, list[dict[str, Any]]] | None = None,
                     model_overrides: dict[str, Any] | None = None, seq_len: int = SEQ_LEN,
                     max_labels: int = MAX_LABELS, select: bool = True, calibrate_threshold: bool = False,
                     members: int | None = None,
                     resume: bool = False, export_dir: str | Path | None = None, outcome_weight: int = 1,
                     **train_overrides: Any) -> dict[str, Any]:
    """Build the vocabulary from the training split, encode, train, evaluate on the held-out split
    (by alert name and template by default) and export the model with its tokenizer and catalog hash.
    Unlabelled records are skipped; ``outcome_weight`` repeats the training examples labelled by
    real outcomes (``records.outcome_weighted``).

    ``select``: among the epochs of the second half of training (earlier ones are undertrained and
    merely timid), keep the one whose EMA weights let the fewest wrong remediations through the gate on
    validation at ``threshold``, then decide the most validation alerts right (``validation_selector``).
    ``calibrate_threshold``: record instead the lowest of ``evaluate.THRESHOLDS`` (>= ``threshold``)
    at which no wrong remediation passes on validation. Off by default: measured, it bought the
    generated validation set its zero at the price of half the actionable alerts of real rule sets.
    ``metrics["validation"]`` has the figures at every threshold, and ``safe`` says whether nothing
    wrong passes at the recorded one.

    ``members`` (default ``MEMBERS[preset]``): models trained on the same split and vocabulary with
    seeds ``seed``, ``seed + 1000``, ...; each selected on its own, exported together (member ``k`` in
    ``model/member-k``) and served as their average. Validation and test figures are the ensemble's.

    Writes into ``output_dir``: ``model/`` (the export with its ONNX graph, or ``export_dir``),
    ``metrics.json``, ``confusion.png``, ``reliability.png``, ``split.json`` and the training runs
    (``run/``, ``run-1/``...). Returns the metrics."""

    t0 = time.time()
    paths = training_data if isinstance(training_data, list) else [training_data]
    records = labelled(merge(paths))  # collected records not labelled yet are left out
    sp = split(records, seed=seed, by=split_by)
    # Examples labelled by real outcomes (dataset collect) count ``outcome_weight`` times in training.
    sp.train = outcome_weighted(sp.train, outcome_weight)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "split.json").write_text(json.dumps({**sp.info, "records": len(records),
                                                 "data": [str(p) for p in paths]}, indent=2))
    tok = Tokenizer.build([r["alert"] for r in sp.train], seq_len=seq_len, priority_keys=default_priority_keys(),
                          max_labels=max_labels, relevance=label_relevance(sp.train))
    Xt, Yt = encode_records(tok, sp.train)
    Xv, Yv = encode_records(tok, sp.val)
    t_enc = time.time() - t0
    mc = TRMConfig.preset(preset, seq_len=tok.seq_len, feature_vocab=tok.feature_vocab, n_out=tok.space.n_out,
                          **(model_overrides or {}))
    given = {"lr": lr, "epochs": epochs, "batch_size": batch_size}
    tkw = {**TRAIN_PRESETS.get(preset, {}), **{k: v for k, v in given.items() if v is not None}, **train_overrides}
    tkw.setdefault("select_from_epoch", max(1, (int(tkw.get("epochs", 1)) + 1) // 2))
    n_members = max(1, members if members is not None else MEMBERS.get(preset, 1))
    selector = validation_selector(tok, sp.val, threshold) if select and sp.val else None
    runs, emas = [], []
    for k in range(n_members):
        tc = TrainConfig(seed=seed + 1000 * k, max_steps=max_steps, num_threads=num_threads, **tkw)
        if progress and n_members > 1:
            print(f"member {k + 1}/{n_members} (seed {tc.seed})", file=sys.stderr, flush=True)
        runs.append(train(mc, tc, (Xt, Yt), (Xv, Yv), output_dir=out / ("run" if k == 0 else f"run-{k}"),
                          progress=progress, resume=resume, select_fn=selector))
        emas.append(model_from_checkpoint(out / ("run" if k == 0 else f"run-{k}") / "checkpoint.pt")[0])
    tm, ema = runs[0], emas[0]
    model_dir = Path(export_dir) if export_dir else out / "model"
    names = [f"member-{k}" for k in range(1, n_members)]
    extra = {"tokenizer": tok.to_dict(), "catalog_hash": catalog.catalog_hash(), "labels": tok.space.classes,
             "split": sp.info, "seed": seed, "preset": preset, "threshold": threshold,
             "selected_epoch": tm.get("selected_epoch"), "members": names}

    def export_all(extra: dict[str, Any]) -> None:
        for k, (name, m, r) in enumerate(zip(names, emas[1:], runs[1:]), start=1):
            export(m, mc, model_dir / name, extra={"member": k, "seed": seed + 1000 * k,
                                                   "selected_epoch": r.get("selected_epoch")})
        export(ema, mc, model_dir, extra=extra)  # config.json of the whole last: the export is complete

    export_all(extra)
    pred = load_predictor(model_dir)  # the served path: the ONNX graph written (and checked) by export
    val_rows = decision_rows(pred, sp.val)
    chosen, safe = pick_threshold(val_rows, floor=threshold) if calibrate_threshold else (
        threshold, safety(val_rows, threshold)["wrong_allowed"] == 0)
    if chosen != threshold:  # record the validated threshold with the model (the stage reads it)
        export_all({**extra, "threshold": chosen, "threshold_from": "validation"})
        pred = load_predictor(model_dir)
    metrics: dict[str, Any] = {"train": {k: v for k, v in tm.items() if isinstance(v, (int, float))},
                               "sizes": sp.info["sizes"], "encode_s": t_enc,
                               "model": {"preset": preset, "seq_len": tok.seq_len, "max_labels": tok.max_labels,
                                         "feature_vocab": list(tok.feature_vocab), "n_out": tok.space.n_out,
                                         "params": int(sum(p.numel() for p in ema.parameters())),
                                         "members": n_members, "threshold": chosen,
                                         "selected_epoch": tm.get("selected_epoch")},
                               "selection": tm.get("selection", []),
                               "members": [{"seed": seed + 1000 * k, "selected_epoch": r.get("selected_epoch"),
                                            "selection": r.get("selection", []), "steps": r.get("steps"),
                                            "wall_time_s": r.get("wall_time_s")} for k, r in enumerate(runs)],
                               "validation": {"n": len(val_rows), "threshold": chosen, "safe": safe,
                                              "chosen": safety(val_rows, chosen),
                                              "at": [safety(val_rows, t) for t in THRESHOLDS]}}
    test = evaluate_records(pred, sp.test, threshold=chosen)
    test["through_gate"] = safety(decision_rows(pred, sp.test), chosen)
    metrics["test"] = test
    plot_confusion(test, out / "confusion.png", title=f"held-out ({split_by}) test")
    plot_reliability(test, out / "reliability.png", title=f"held-out ({split_by}) test")
    for name, recs in (extra_eval or {}).items():
        metrics[name] = evaluate_records(pred, recs, threshold=chosen)
    metrics["wall_s"] = time.time() - t0
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return metrics


def format_summary(m: dict[str, Any], model_dir: Path) -> str:
    """What ``agent-sre train`` prints last: the gate figures on validation, the held-out test, and how
    to use the model — or, loudly, that validation or the held-out test still lets a wrong remediation
    through."""
    v, t = m["validation"], m["test"]["through_gate"]
    at = v["chosen"]
    lines = [f"validation ({v['n']} alerts), stage threshold {v['threshold']}: {at['allowed']} remediations pass "
             f"the gate, {at['wrong_allowed']} of them wrong; {at['actionable_exact_decided']}/{at['actionable']} "
             f"actionable alerts decided exactly",
             f"held-out test ({t['n']} alerts), threshold {t['threshold']}: {t['allowed']} remediations pass the gate, "
             f"{t['wrong_allowed']} of them wrong; {t['actionable_exact_decided']}/{t['actionable']} actionable "
             f"alerts decided exactly",
             f"selected epoch {m['model'].get('selected_epoch')} of {m['train'].get('epochs_completed')}"]
    if not v["safe"]:
        safe_at = next((a["threshold"] for a in v["at"] if a["wrong_allowed"] == 0 and a["threshold"] >= v["threshold"]),
                       None)
        lines.append(f"WARNING: NOT SAFE ON VALIDATION — at its stage threshold {v['threshold']}, "
                     f"{at['wrong_allowed']} wrong remediation(s) pass the gate on validation"
                     + (f" (none from {safe_at} up: TRM_THRESHOLD={safe_at} trades coverage for that)" if safe_at
                        else "") + ". Keep it in suggest or dry-run mode, or retrain (another seed, more data).")
    if t["wrong_allowed"]:
        lines.append(f"WARNING: NOT SAFE ON THE HELD-OUT TEST — {t['wrong_allowed']} wrong remediation(s) pass the "
                     f"gate on alert names and templates it never saw (`agent-sre evaluate --model {model_dir} "
                     f"--held-out` names them). Keep it in suggest or dry-run mode, or retrain.")
    lines.append(f"use it: MODEL_PATH={model_dir} agent-sre serve   "
                 f"(check first: agent-sre evaluate --model {model_dir} --data <records>)")
    return "\n".join(lines)


def reexport(source: str | Path, export_dir: str | Path) -> Path:
    """Export again into ``export_dir``, with the ONNX graph. ``source`` is either a training output
    directory (the selected EMA weights of ``run/checkpoint.pt`` and of each member's ``run-k/``, with
    the tokenizer and label space recorded in its ``model/``; e.g. after resuming a run) or an export
    (its weights, its members' and ``extra``: e.g. to add the graph to an export written before it
    existed)."""
    src = Path(source)
    out = Path(export_dir)
    if (src / artifact.CONFIG).is_file():
        exp = artifact.read(src)
        for m in artifact.members(exp):
            model, cfg, extra = load_exported(m.path)
            export(model, cfg, out / m.path.name, extra=extra)
        model, cfg, extra = load_exported(src)
        return export(model, cfg, out, extra=extra)
    exp = artifact.read(src / "model")
    for k, name in enumerate(exp.extra.get("members") or [], start=1):
        ema, cfg = model_from_checkpoint(src / f"run-{k}" / "checkpoint.pt")
        export(ema, cfg, out / name, extra=artifact.read(src / "model" / name).extra)
    ema, cfg = model_from_checkpoint(src / "run" / "checkpoint.pt")
    return export(ema, cfg, out, extra=exp.extra)
