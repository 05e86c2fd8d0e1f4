"""The training recipe behind ``agent-sre train``: JSONL records in; vocabulary, split, training,
held-out evaluation and the export (weights, ONNX graph, tokenizer, catalog hash) out.
``reexport`` writes an export again from a training run or from another export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from .. import catalog
from . import artifact
from .checkpoint import export, load_exported, model_from_checkpoint
from .records import labelled, merge, outcome_weighted, split
from .encoding import Tokenizer, default_priority_keys
from .evaluate import evaluate_records, plot_confusion, plot_reliability
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


# The recipe of the shipped model, measured on 2 shared CPU cores: the cpu preset (hidden 64, 4 heads,
# at most 4 supervision steps), L = 40, cosine lr 2e-3, EMA 0.995, 4 epochs (24,000 generated
# records, seed 1: about 6 minutes of training).
CPU_TRAIN_DEFAULTS: dict[str, Any] = {"schedule": "cosine", "ema_decay": 0.995, "warmup_steps": 50}


def train_from_jsonl(training_data: str | Path | list[str | Path], output_dir: str | Path, *, preset: str = "cpu",
                     seed: int = 0, split_by: str = "name", epochs: int = 4, lr: float = 2e-3,
                     batch_size: int = 64, max_steps: int | None = None, threshold: float = 0.9,
                     num_threads: int | None = 1, progress: bool = False,
                     extra_eval: dict[str, list[dict[str, Any]]] | None = None,
                     model_overrides: dict[str, Any] | None = None, seq_len: int = 40,
                     resume: bool = False, export_dir: str | Path | None = None, outcome_weight: int = 1,
                     **train_overrides: Any) -> dict[str, Any]:
    """Build the vocabulary from the training split, encode, train, evaluate on the held-out split
    (by alert name and template by default) and export the model with its tokenizer and catalog hash.
    Unlabelled records are skipped; ``outcome_weight`` repeats the training examples labelled by
    real outcomes (``records.outcome_weighted``).

    Writes into ``output_dir``: ``model/`` (the export with its ONNX graph, or ``export_dir``),
    ``metrics.json``, ``confusion.png``, ``reliability.png``, ``split.json`` and the training run
    (``run/``). Returns the metrics."""

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
    tok = Tokenizer.build([r["alert"] for r in sp.train], seq_len=seq_len, priority_keys=default_priority_keys())
    Xt, Yt = encode_records(tok, sp.train)
    Xv, Yv = encode_records(tok, sp.val)
    t_enc = time.time() - t0
    mc = TRMConfig.preset(preset, seq_len=tok.seq_len, feature_vocab=tok.feature_vocab, n_out=tok.space.n_out,
                          **(model_overrides or {}))
    tkw = {**(CPU_TRAIN_DEFAULTS if preset == "cpu" else {}), **train_overrides}
    tc = TrainConfig(lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, max_steps=max_steps,
                     num_threads=num_threads, **tkw)
    tm = train(mc, tc, (Xt, Yt), (Xv, Yv), output_dir=out / "run", progress=progress, resume=resume)
    ema, _cfg = model_from_checkpoint(out / "run" / "checkpoint.pt")
    extra = {"tokenizer": tok.to_dict(), "catalog_hash": catalog.catalog_hash(), "labels": tok.space.classes,
             "split": sp.info, "seed": seed, "preset": preset, "threshold": threshold}
    model_dir = Path(export_dir) if export_dir else out / "model"
    export(ema, mc, model_dir, extra=extra)
    pred = load_predictor(model_dir)  # the served path: the ONNX graph written (and checked) by export
    metrics: dict[str, Any] = {"train": {k: v for k, v in tm.items() if isinstance(v, (int, float))},
                               "sizes": sp.info["sizes"], "encode_s": t_enc,
                               "model": {"preset": preset, "seq_len": tok.seq_len,
                                         "feature_vocab": list(tok.feature_vocab), "n_out": tok.space.n_out,
                                         "params": int(sum(p.numel() for p in ema.parameters()))}}
    test = evaluate_records(pred, sp.test, threshold=threshold)
    metrics["test"] = test
    plot_confusion(test, out / "confusion.png", title=f"held-out ({split_by}) test")
    plot_reliability(test, out / "reliability.png", title=f"held-out ({split_by}) test")
    for name, recs in (extra_eval or {}).items():
        metrics[name] = evaluate_records(pred, recs, threshold=threshold)
    metrics["wall_s"] = time.time() - t0
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return metrics


def reexport(source: str | Path, export_dir: str | Path) -> Path:
    """Export again into ``export_dir``, with the ONNX graph. ``source`` is either a training output
    directory (the EMA weights of ``run/checkpoint.pt``, with the tokenizer and label space recorded
    in its ``model/``; e.g. after resuming a run) or an export (its weights and ``extra``: e.g. to
    add the graph to an export written before it existed)."""
    src = Path(source)
    if (src / artifact.CONFIG).is_file():
        model, cfg, extra = load_exported(src)
        return export(model, cfg, export_dir, extra=extra)
    extra = artifact.read(src / "model").extra
    ema, cfg = model_from_checkpoint(src / "run" / "checkpoint.pt")
    return export(ema, cfg, export_dir, extra=extra)
