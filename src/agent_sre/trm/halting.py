"""Adaptive computation time (ACT) at inference: the one loop that runs a batch through supervision
steps until each row halts. PyTorch (``TRM.predict``) and ONNX Runtime (``OnnxTRM.predict``) both
run it; each supplies only ``step``, the supervision step on its own arrays. The bookkeeping here is
numpy, so the loop needs no torch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# step(running) -> (logits [rows, length, n_out], q_halt logit [rows]) of the rows still running.
# ``running`` (bool over the rows of the previous call; None on the first call) says which rows to keep:
# the backend drops the others from its carry before it computes the step.
Step = Callable[[np.ndarray | None], tuple[np.ndarray, np.ndarray]]


def act(step: Step, batch: int, *, length: int, width: int, n_out: int, max_steps: int,
        halt_threshold: float = 0.0) -> dict[str, np.ndarray]:
    """Run up to ``max_steps`` supervision steps. A row halts at the first step whose halting logit
    exceeds ``halt_threshold`` (0.0 <=> sigmoid > 0.5), or at the last step; its answer is frozen
    there and it is not computed again.

    ``length``: positions the step computes (a padding-masked model cuts the batch to its longest
    row); ``width``: positions of the answer (columns past ``length`` stay 0).
    Returns probs [batch, width, n_out] float32, steps [batch] int64, q_halt [batch] float32 (the
    halting probability at the step each row stopped)."""
    probs = np.zeros((batch, width, n_out), dtype=np.float32)
    steps = np.zeros(batch, dtype=np.int64)
    q_halt = np.zeros(batch, dtype=np.float32)
    rows = np.arange(batch)  # original index of each running row
    running: np.ndarray | None = None
    for s in range(1, max_steps + 1):
        logits, q = step(running)
        halt = q > halt_threshold if s < max_steps else np.ones(len(q), dtype=bool)
        done = rows[halt]
        probs[done, :length] = softmax(logits[halt])
        steps[done] = s
        q_halt[done] = sigmoid(q[halt])
        if halt.all():
            break
        running = ~halt
        rows = rows[running]
    return {"probs": probs, "steps": steps, "q_halt": q_halt}


def real_length(x: np.ndarray) -> int:
    """Columns up to the last one that is not padding in some row (padding is all-zero and always
    trailing); at least 1. x: [B, L, F]."""
    real = np.flatnonzero((np.asarray(x) != 0).any(-1).any(0))
    return int(real[-1]) + 1 if len(real) else 1


def softmax(logits: np.ndarray) -> np.ndarray:
    lg = logits.astype(np.float32, copy=False)
    e = np.exp(lg - lg.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(q: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-q.astype(np.float32, copy=False)))).astype(np.float32)
