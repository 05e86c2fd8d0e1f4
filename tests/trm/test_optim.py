"""The paper's optimizer and loss: AdamATan2 and stablemax cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agent_sre.trm.optim import AdamATan2, stablemax, stablemax_cross_entropy


def test_adam_atan2_minimises_with_bounded_steps():
    p = torch.nn.Parameter(torch.tensor([4.0, -3.0, 0.5]))
    opt = AdamATan2([p], lr=0.05, weight_decay=0.0)
    prev = p.detach().clone()
    for _ in range(400):
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
        assert float((p.detach() - prev).abs().max()) <= 0.05 * 1.27 * math.pi / 2 + 1e-6
        prev = p.detach().clone()
    assert float(p.detach().abs().max()) < 0.1


def test_adam_atan2_is_scale_invariant_and_decays_weights():
    """Scaling the loss does not change the update (no epsilon); weight decay shrinks unused weights."""
    runs = []
    for scale in (1.0, 1e4):
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        opt = AdamATan2([p], lr=0.01, weight_decay=0.0)
        for _ in range(5):
            opt.zero_grad()
            (scale * (p - 3).pow(2).sum()).backward()
            opt.step()
        runs.append(p.detach().clone())
    assert torch.allclose(runs[0], runs[1], atol=1e-6)
    q = torch.nn.Parameter(torch.tensor([1.0]))
    opt = AdamATan2([q], lr=0.1, weight_decay=0.5)
    q.grad = torch.zeros(1)
    opt.step()
    assert float(q.detach()) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        AdamATan2([q], lr=-1)


def test_stablemax_cross_entropy():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, 3.0]], requires_grad=True)
    target = torch.tensor([0, 2])
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits)).detach()
    want = -torch.log(s[torch.arange(2), target] / s.sum(-1))
    got = stablemax_cross_entropy(logits, target)
    assert torch.allclose(got.float(), want, atol=1e-6)
    got.sum().backward()
    assert torch.isfinite(logits.grad).all()
    p = stablemax(logits.detach())
    assert torch.allclose(p.sum(-1), torch.ones(2)) and int(p[0].argmax()) == 0
    # classes on dim 1 for sequence targets, as F.cross_entropy takes them
    seq = torch.randn(4, 5, 7)
    tgt = torch.randint(0, 5, (4, 7))
    assert stablemax_cross_entropy(seq, tgt).shape == F.cross_entropy(seq, tgt, reduction="none").shape
