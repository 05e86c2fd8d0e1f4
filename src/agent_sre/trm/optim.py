"""The paper's training pieces that torch does not ship: the AdamATan2 optimizer and the stablemax
cross-entropy (the ``paper`` preset trains with them; the ``cpu`` preset uses AdamW and softmax).

* ``AdamATan2`` (Everett et al. 2024): Adam whose update is ``a * atan2(m̂, b * sqrt(v̂))`` instead of
  ``m̂ / (sqrt(v̂) + eps)`` — scale-invariant, bounded by ``a * π / 2`` per step, no epsilon to tune —
  with decoupled weight decay as in AdamW.
* ``stablemax_cross_entropy`` (Prieto et al. 2025): cross-entropy over ``s(x) / Σ s(x)`` with
  ``s(x) = x + 1`` for ``x ≥ 0`` and ``1 / (1 - x)`` below, computed in float64; it does not push
  logits to grow without bound the way softmax does once the training set is fit.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch


class AdamATan2(torch.optim.Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.1, a: float = 1.27, b: float = 1.0):
        if lr < 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or weight_decay < 0:
            raise ValueError("AdamATan2: lr, weight_decay >= 0 and betas in [0, 1) required")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, a=a, b=b))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd, a, b = group["lr"], group["weight_decay"], group["a"], group["b"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                g = p.grad
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = st["m"] / (1 - b1 ** st["step"])
                v_hat = st["v"] / (1 - b2 ** st["step"])
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(torch.atan2(m_hat, b * v_hat.sqrt()), alpha=-lr * a)
        return loss


def _stablemax_log_probs(logits: torch.Tensor, dim: int) -> torch.Tensor:
    x = logits.double()
    s = torch.where(x >= 0, x + 1, 1 / (1 - x))
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, reduction: str = "none") -> torch.Tensor:
    """Like ``F.cross_entropy(logits, target)`` with classes on dim 1 (``[B, C, ...]``), over stablemax."""
    logp = _stablemax_log_probs(logits, dim=1)
    loss = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Class probabilities under stablemax (what a model trained with it is calibrated for)."""
    return _stablemax_log_probs(logits, dim).exp().to(logits.dtype)
