"""Generic TRM trainer: deep supervision + ACT + AdamW (or AdamATan2) + EMA, over any (inputs, labels) tensors.

Per batch (the paper's Algorithm / the reference `pretrain.py`, reorganised batch-by-batch):

    (y, z) = initial carry
    for s in 1..n_sup:
        y, z, logits, q = model.step(embed(x), y, z)        # carry comes back detached
        loss = CE(logits, labels) + w * BCE(q, "prediction entirely correct")
        loss.backward(); opt.step(); ema.update()           # one optimizer step per supervision step
        halted |= (q > 0 and s >= min_steps) or s == n_sup   # ACT
        keep only not-halted samples for the next step

Choice (documented as asked): the reference keeps a persistent carry and refills halted slots with fresh
samples from the stream; we instead run each batch to completion and stop as soon as every sample in it
has halted. Per-sample losses are divided by the *full* batch size, so each (sample, step) pair carries the
same weight as in the reference (where the batch stays full). Exploration as in HRM/TRM: with probability
halt_exploration_prob a sample gets a random minimum of 2..n_sup steps before it may halt.

Checkpoints and the max_steps stop are taken at batch boundaries (a batch's carry is never saved), which is
what makes resume exact: data order is a function of (seed, epoch), the exploration RNG state is saved.

Selection: ``select_fn(ema)`` (given to ``train``) scores the EMA model after every epoch from
``select_from_epoch`` on; the best-scoring snapshot is kept in the checkpoint (``selected``) and is what
``model_from_checkpoint`` returns. The recipe scores by validation with a safety criterion (fewest wrong
remediations that pass the gate, then the most decisions right).

Progress: on a terminal a bar over batches with the epoch, optimizer steps, loss and accuracy; otherwise
(a log file, CI) one plain line every ``log_every_s`` seconds and at each epoch's end.
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint
from .model import IGNORE_INDEX, TRM, TRMConfig, count_parameters
from .optim import AdamATan2, stablemax_cross_entropy

CHECKPOINT = "checkpoint.pt"
META = "train_meta.json"


@dataclass
class TrainConfig:
    lr: float = 1e-4  # paper default; the small cpu preset tolerates ~1e-3
    weight_decay: float = 0.1  # paper uses 0.1 (ARC/Maze) to 1.0 (Sudoku)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100  # optimizer steps of linear warm-up
    schedule: str = "constant"  # "constant" | "cosine" (cosine decays over batches, see _lr_at)
    min_lr_ratio: float = 0.1
    epochs: int = 10
    max_steps: int | None = None  # optimizer steps; checked at batch boundaries
    batch_size: int = 64
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"  # "cpu" | "cuda" | "auto"
    bf16: bool = True  # autocast to bfloat16, CUDA only
    grad_clip: float | None = 1.0
    checkpoint_every: int = 500  # optimizer steps
    halt_loss_weight: float = 0.5  # reference: lm_loss + 0.5 * q_halt_loss
    loss: str = "softmax"  # "softmax" cross-entropy | "stablemax" (the paper's)
    optimizer: str = "adamw"  # "adamw" | "adamatan2" (the paper's)
    ema_warmup: bool = True  # EMA decay min(decay, (1+step)/(10+step)); the paper's EMA is plain
    log_every_s: float = 30.0  # progress line interval when the output is not a terminal
    select_from_epoch: int = 1  # with select_fn: epochs before this one are not candidates (undertrained)
    eval_every_epochs: int = 1
    eval_batch_size: int = 256
    num_threads: int | None = None  # torch intra-op threads on CPU (None: leave as is)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]  (JSON round trip gives a list)
        if self.schedule not in ("constant", "cosine"):
            raise ValueError("schedule must be 'constant' or 'cosine'")
        if self.loss not in ("softmax", "stablemax"):
            raise ValueError("loss must be 'softmax' or 'stablemax'")
        if self.optimizer not in ("adamw", "adamatan2"):
            raise ValueError("optimizer must be 'adamw' or 'adamatan2'")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return cls(**d)


# ---------------------------------------------------------------- helpers


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def as_tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs Long[N,L,F], labels Long[N,L]) from a tuple, a TensorDataset or any map-style dataset."""
    if isinstance(ds, (tuple, list)) and len(ds) == 2 and all(isinstance(t, torch.Tensor) for t in ds):
        x, y = ds
    elif hasattr(ds, "tensors"):
        x, y = ds.tensors[:2]
    else:
        items = [ds[i] for i in range(len(ds))]
        x = torch.stack([torch.as_tensor(a) for a, _ in items])
        y = torch.stack([torch.as_tensor(b) for _, b in items])
    x, y = x.long(), y.long()
    if x.dim() != 3 or y.dim() != 2 or x.shape[:2] != y.shape:
        raise ValueError(f"expected inputs [N,L,F] and labels [N,L], got {tuple(x.shape)}, {tuple(y.shape)}")
    return x, y


def _check_labels(y: torch.Tensor, n_out: int) -> None:
    bad = (y != IGNORE_INDEX) & ((y < 0) | (y >= n_out))
    if bool(bad.any()):
        raise ValueError(f"labels must be in [0, {n_out}) or {IGNORE_INDEX}")


def _epoch_perm(seed: int, epoch: int, n: int) -> torch.Tensor:
    # Data order is a pure function of (seed, epoch): nothing to save for an exact resume.
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _lr_at(tc: TrainConfig, step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / max(1, tc.warmup_steps))
    if tc.schedule == "cosine":
        # Progress is measured in batches: with ACT the number of optimizer steps is not known upfront.
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return tc.lr * warm * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * cos)
    return tc.lr * warm


@torch.no_grad()
def _ema_update(ema: TRM, model: TRM, decay: float, step: int, warmup: bool = True) -> None:
    # Warm-started decay: a plain 0.999 EMA would still be ~the random init after a short run.
    d = min(decay, (1 + step) / (10 + step)) if warmup else decay
    ema_p = [p for p in ema.parameters()]
    torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - d)


@torch.no_grad()
def evaluate_accuracy(model: TRM, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Token accuracy, exact (whole-sequence) accuracy and mean ACT steps with `predict`."""
    tok_ok = tok_n = seq_ok = 0
    steps = 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model.predict(xb)
        pred = out["probs"].argmax(-1)
        mask = yb != IGNORE_INDEX
        ok = (pred == yb) & mask
        tok_ok += int(ok.sum())
        tok_n += int(mask.sum())
        seq_ok += int((ok | ~mask).all(-1).sum())
        steps += float(out["steps"].float().sum())
    n = max(1, len(x))
    return {"token_acc": tok_ok / max(1, tok_n), "exact_acc": seq_ok / n, "mean_steps": steps / n}


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# ---------------------------------------------------------------- training


SelectFn = Callable[[TRM], tuple[tuple[float, ...], dict[str, Any]]]


def train(model_cfg: TRMConfig, train_cfg: TrainConfig, train_set: Any, val_set: Any = None,
          output_dir: str | Path = "runs/trm", resume: bool = False, progress: bool = True,
          eval_fn: Callable[[TRM], dict[str, float]] | None = None,
          select_fn: SelectFn | None = None) -> dict[str, Any]:
    """Train; writes output_dir/checkpoint.pt (every checkpoint_every steps and at the end) and
    output_dir/train_meta.json. Returns metrics. The EMA model is the one evaluated (and the one
    `checkpoint.model_from_checkpoint` returns for export). ``select_fn(ema) -> (score, info)``:
    called after each epoch; the EMA snapshot with the highest score is kept as ``selected``."""
    threads_before = torch.get_num_threads()
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    try:  # the thread count is process-global: put it back for whoever called us
        return _train(model_cfg, train_cfg, train_set, val_set, output_dir, resume, progress, eval_fn, select_fn)
    finally:
        torch.set_num_threads(threads_before)


class _Progress:
    """A tqdm bar on a terminal; plain lines (every ``every_s`` seconds, and each epoch) elsewhere."""

    def __init__(self, enabled: bool, total: int, initial: int, epochs: int, every_s: float):
        import sys

        self.enabled, self.epochs, self.every_s, self.total = enabled, epochs, every_s, total
        self.tty = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, disable=not self.tty, desc="trm", dynamic_ncols=True)
        self.done, self.t0, self.last = initial, time.time(), time.time()

    def update(self, epoch: int, batch: int, n_batches: int, step: int, acc: dict[str, float]) -> None:
        self.done += 1
        loss = acc["loss"] / max(1, acc["n_steps"])
        exact = acc["exact"] / max(1, acc["n_halted"])
        if self.tty:
            self.bar.update(1)
            self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")
            self.bar.set_postfix(step=step, loss=f"{loss:.3f}", acc=f"{exact:.3f}",
                                 sup=f"{acc['sup_steps'] / max(1, acc['n_halted']):.2f}")
        elif self.enabled and time.time() - self.last >= self.every_s:
            self.last = time.time()
            self.write(f"epoch {epoch + 1}/{self.epochs}  batch {batch}/{n_batches}  optimizer step {step}  "
                       f"loss {loss:.4f}  exact {exact:.4f}  ({self.done}/{self.total} batches, "
                       f"{time.time() - self.t0:.0f} s)")

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.bar.write(line)
        else:
            import sys

            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def _train(mc: TRMConfig, tc: TrainConfig, train_set: Any, val_set: Any, output_dir: str | Path,
           resume: bool, progress: bool, eval_fn: Callable[[TRM], dict[str, float]] | None,
           select_fn: SelectFn | None = None) -> dict[str, Any]:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _resolve_device(tc.device)
    use_bf16 = tc.bf16 and device.type == "cuda"

    X, Y = as_tensors(train_set)
    _check_labels(Y, mc.n_out)
    Xv = Yv = None
    if val_set is not None:
        Xv, Yv = as_tensors(val_set)
        _check_labels(Yv, mc.n_out)

    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    np.random.seed(tc.seed % 2**32)
    model = TRM(mc).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt: torch.optim.Optimizer
    if tc.optimizer == "adamatan2":
        opt = AdamATan2(model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)
    explore_rng = torch.Generator().manual_seed(tc.seed + 1)

    N, B = len(X), tc.batch_size
    n_batches = math.ceil(N / B)
    total_batches = n_batches * tc.epochs
    step, epoch, batch_i, wall_before = 0, 0, 0, 0.0
    hist: Counter[int] = Counter()
    acc = _new_acc()
    metrics: dict[str, Any] = {}
    selected: dict[str, Any] | None = None  # {"epoch", "score", "info", "ema"}
    selection: list[dict[str, Any]] = []

    ck_path = out / CHECKPOINT
    if resume and ck_path.is_file():
        ck = load_checkpoint(ck_path, map_location=device)
        if ck["model_config"] != mc.to_dict():
            raise ValueError("resume: model config differs from the checkpoint's")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        step, epoch, batch_i = ck["step"], ck["epoch"], ck["batch_in_epoch"]
        hist, acc, metrics = Counter(ck["hist"]), ck["acc"], ck["metrics"]
        selected, selection = ck.get("selected"), ck.get("selection", [])
        wall_before = ck["wall_time_s"]
        explore_rng.set_state(ck["rng"]["explore"])
        _set_rng_state(ck["rng"]["global"])

    def save_checkpoint() -> None:
        _save_atomic({
            "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
            "step": step, "epoch": epoch, "batch_in_epoch": batch_i, "hist": dict(hist), "acc": acc,
            "metrics": metrics, "wall_time_s": wall_before + time.time() - t0,
            "selected": selected, "selection": selection,
            "rng": {"explore": explore_rng.get_state(), "global": _rng_state()},
            "model_config": mc.to_dict(), "train_config": tc.to_dict(), "torch_version": torch.__version__,
        }, ck_path)

    t0 = time.time()
    bar = _Progress(progress, total_batches, epoch * n_batches + batch_i, tc.epochs, tc.log_every_s)
    stop = tc.max_steps is not None and step >= tc.max_steps
    model.train()
    while epoch < tc.epochs and not stop:
        perm = _epoch_perm(tc.seed, epoch, N)
        while batch_i < n_batches:
            idx = perm[batch_i * B:(batch_i + 1) * B]
            last_ck = step
            step = _train_batch(model, ema, opt, tc, mc, X[idx].to(device), Y[idx].to(device), step,
                                (epoch * n_batches + batch_i) / total_batches, explore_rng, hist, acc,
                                use_bf16)
            batch_i += 1
            bar.update(epoch, batch_i, n_batches, step, acc)
            if tc.max_steps is not None and step >= tc.max_steps:
                stop = True
                break
            if step // tc.checkpoint_every > last_ck // tc.checkpoint_every:
                save_checkpoint()
        if batch_i >= n_batches:  # epoch finished (not cut short by max_steps)
            metrics.update(_epoch_metrics(acc))
            acc = _new_acc()
            epoch, batch_i = epoch + 1, 0
            if Xv is not None and (epoch % tc.eval_every_epochs == 0 or epoch == tc.epochs):
                ema.eval()
                metrics.update({f"val_{k}": v for k, v in
                                evaluate_accuracy(ema, Xv, Yv, tc.eval_batch_size, device).items()})
            line = f"epoch {epoch}/{tc.epochs} done, optimizer step {step}: " + ", ".join(
                f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            if select_fn is not None and epoch >= min(tc.select_from_epoch, tc.epochs):
                ema.eval()
                score, info = select_fn(ema)
                selection.append({"epoch": epoch, "step": step, "score": list(score), **info})
                better = selected is None or tuple(score) > tuple(selected["score"])
                if better:
                    selected = {"epoch": epoch, "score": list(score), "info": info,
                                "ema": {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}}
                line += f"; selection {info}" + (" (best so far)" if better else "")
            bar.write(line)
    bar.close()
    if acc["n_steps"]:  # partial epoch at a max_steps stop
        metrics.update(_epoch_metrics(acc))
    if eval_fn is not None:
        ema.eval()
        metrics.update(eval_fn(ema))
    save_checkpoint()

    wall = wall_before + time.time() - t0
    metrics.update({
        "steps": step, "epochs_completed": epoch, "wall_time_s": wall,
        "sup_steps_hist": {int(k): int(v) for k, v in sorted(hist.items())},
        "param_count": count_parameters(model), "checkpoint": str(ck_path),
        "selection": selection, "selected_epoch": selected["epoch"] if selected else None,
    })
    meta = {"seed": tc.seed, "torch_version": torch.__version__, "device": str(device), "bf16": use_bf16,
            "wall_time_s": wall, "steps": step, "resumed": bool(resume and wall_before > 0),
            "final": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "sup_steps_hist": metrics["sup_steps_hist"], "param_count": metrics["param_count"],
            "selection": selection, "selected_epoch": metrics["selected_epoch"],
            "model_config": mc.to_dict(), "train_config": tc.to_dict()}
    (out / META).write_text(json.dumps(meta, indent=2))
    return metrics


def _new_acc() -> dict[str, float]:
    return {"loss": 0.0, "ce": 0.0, "halt": 0.0, "n_steps": 0, "exact": 0, "n_halted": 0, "sup_steps": 0}


def _epoch_metrics(acc: dict[str, float]) -> dict[str, float]:
    n, h = max(1, acc["n_steps"]), max(1, acc["n_halted"])
    return {"train_loss": acc["loss"] / n, "train_ce": acc["ce"] / n, "train_halt_loss": acc["halt"] / n,
            "train_exact_acc": acc["exact"] / h, "train_mean_sup_steps": acc["sup_steps"] / h}


def _train_batch(model: TRM, ema: TRM, opt: torch.optim.Optimizer, tc: TrainConfig, mc: TRMConfig,
                 xb: torch.Tensor, yb: torch.Tensor, step: int, progress: float,
                 explore_rng: torch.Generator, hist: Counter, acc: dict, use_bf16: bool) -> int:
    """Deep supervision over one batch; returns the new global optimizer-step count."""
    xb = model.trim(xb)  # with mask_padding: drop the batch's all-padding tail (labels there are ignored)
    yb = yb[:, :xb.shape[1]]
    B, L = yb.shape
    dev = xb.device
    y, z = model.initial_carry(B, L)
    active = torch.arange(B, device=dev)
    # HRM/TRM exploration: some samples must run a random minimum number of steps before halting.
    explore = torch.rand(B, generator=explore_rng) < mc.halt_exploration_prob
    # (With N_sup = 1 there is nothing to explore: the only step is the last.)
    if mc.n_sup > 1:
        min_steps = (explore * torch.randint(2, mc.n_sup + 1, (B,), generator=explore_rng)).to(dev)
    else:
        min_steps = torch.zeros(B, dtype=torch.long, device=dev)
    for s in range(1, mc.n_sup + 1):
        xa, labels = xb[active], yb[active]
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            # Re-embed every step: each step's backward frees its graph, the embedding included.
            y, z, logits, q = model.step(model.embed(xa), y, z, model.keep_mask(xa))
        mask = labels != IGNORE_INDEX
        ce_fn = stablemax_cross_entropy if tc.loss == "stablemax" else F.cross_entropy
        tok = ce_fn(logits.float().transpose(1, 2), labels.clamp_min(0), reduction="none")
        ce = ((tok * mask).sum(-1) / mask.sum(-1).clamp_min(1)).sum()
        with torch.no_grad():
            correct = ((logits.argmax(-1) == labels) | ~mask).all(-1)
        halt_loss = F.binary_cross_entropy_with_logits(q, correct.float(), reduction="sum")
        loss = (ce + tc.halt_loss_weight * halt_loss) / B

        for g in opt.param_groups:
            g["lr"] = _lr_at(tc, step, progress)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        step += 1
        _ema_update(ema, model, tc.ema_decay, step, tc.ema_warmup)

        with torch.no_grad():
            halted = (q.detach() > 0) & (s >= min_steps[active]) if s < mc.n_sup else \
                torch.ones_like(correct)
            nh = int(halted.sum())
            if nh:
                hist[s] += nh
            acc["loss"] += float(loss.detach()) * B / len(active)  # per-active-sample mean for display
            acc["ce"] += float(ce.detach()) / len(active)
            acc["halt"] += float(halt_loss.detach()) / len(active)
            acc["n_steps"] += 1
            acc["exact"] += int((correct & halted).sum())
            acc["n_halted"] += nh
            acc["sup_steps"] += s * nh
        if nh == len(active):
            break
        keep = ~halted
        active, y, z = active[keep], y[keep], z[keep]
    return step
