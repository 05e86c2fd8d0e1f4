"""TRM model: shapes, embedding, the paper's gradient structure, ACT at inference, presets."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from agent_sre.trm.model import TRM, TRMConfig, count_parameters

VOCAB = (11, 4, 7)


def tiny(**kw) -> TRMConfig:
    return TRMConfig.preset("tiny", seq_len=6, feature_vocab=VOCAB, n_out=5, **kw)


def rand_x(B: int, L: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, v, (B, L), generator=g) for v in VOCAB], -1)


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_shapes(mixer):
    torch.manual_seed(0)
    cfg = tiny(mixer=mixer)
    m = TRM(cfg)
    x = rand_x(3)
    y, z, logits, q = m(x)
    S = cfg.seq_len + cfg.n_prefix
    assert logits.shape == (3, 6, 5) and q.shape == (3,)
    assert y.shape == z.shape == (3, S, cfg.hidden)
    out = m.predict(x)
    assert out["probs"].shape == (3, 6, 5) and out["steps"].shape == (3,) and out["q_halt"].shape == (3,)
    assert torch.allclose(out["probs"].sum(-1), torch.ones(3, 6))


def test_embedding_sums_channels_and_padding_is_zero():
    torch.manual_seed(0)
    m = TRM(tiny())
    P = m.cfg.n_prefix
    w = torch.tensor([[[3, 0, 0]]]).expand(1, 6, 3)
    r = torch.tensor([[[0, 2, 0]]]).expand(1, 6, 3)
    both = w + r
    e = lambda t: m.embed(t)[:, P:]  # noqa: E731
    assert torch.count_nonzero(e(torch.zeros(1, 6, 3, dtype=torch.long))) == 0
    assert torch.allclose(e(both), e(w) + e(r), atol=1e-6)
    assert not torch.allclose(e(w), e(r))  # channels have separate tables (same id 2 vs 3 aside)
    # same id in two channels must hit different rows
    assert not torch.allclose(e(torch.tensor([[[2, 0, 0]]])), e(torch.tensor([[[0, 2, 0]]])))


def test_embed_rejects_bad_input():
    m = TRM(tiny())
    with pytest.raises(ValueError, match="out of range"):
        m.embed(torch.tensor([[[11, 0, 0]] * 6]))  # channel 0 vocab is 11: id 11 invalid
    with pytest.raises(ValueError):
        m.embed(torch.zeros(1, 6, 2, dtype=torch.long))  # wrong channel count
    with pytest.raises(ValueError):
        m.embed(torch.zeros(1, 7, 3, dtype=torch.long))  # longer than seq_len


def _count_net_calls(m: TRM):
    calls = []
    h = m.net.register_forward_hook(lambda mod, inp, out: calls.append((torch.is_grad_enabled(),
                                                                          out.requires_grad, inp[0].shape[0])))
    return calls, h


def test_step_recursion_counts_and_gradient_only_through_last_cycle():
    torch.manual_seed(0)
    cfg = tiny(n=3, T=3)
    m = TRM(cfg)
    calls, hook = _count_net_calls(m)
    x_emb = m.embed(rand_x(2))
    y0, z0 = (t.clone().requires_grad_(True) for t in m.initial_carry(2))
    y, z, logits, q = m.step(x_emb, y0, z0)
    hook.remove()
    per_cycle = cfg.n + 1
    assert len(calls) == cfg.T * per_cycle
    no_grad, with_grad = calls[: (cfg.T - 1) * per_cycle], calls[(cfg.T - 1) * per_cycle:]
    assert all(not g and not rg for g, rg, _ in no_grad)
    assert all(g and rg for g, rg, _ in with_grad)
    # carries come back detached; logits/q carry the graph
    assert y.grad_fn is None and z.grad_fn is None and not y.requires_grad
    assert logits.requires_grad and q.requires_grad
    (logits.sum() + q.sum()).backward()
    # the incoming carry only feeds no-grad cycles, so no gradient can reach it
    assert y0.grad is None and z0.grad is None
    assert m.tok_emb.weight.grad is not None and m.net.blocks[0].mlp.down.weight.grad is not None


def test_with_T1_gradient_does_reach_carry():
    # control for the test above: with no no-grad cycle the carry is differentiated
    m = TRM(tiny(T=1))
    y0, z0 = (t.clone().requires_grad_(True) for t in m.initial_carry(2))
    _, _, logits, _ = m.step(m.embed(rand_x(2)), y0, z0)
    logits.sum().backward()
    assert y0.grad is not None and y0.grad.abs().sum() > 0


def test_step_gradients_equal_explicit_reference():
    """T cycles with T-1 under no_grad == (T-1 cycles precomputed as constants) + a T=1 step."""
    torch.manual_seed(0)
    cfg = tiny(T=3)
    m = TRM(cfg)
    ref = TRM(dataclasses.replace(cfg, T=1))
    ref.load_state_dict(m.state_dict())
    x = rand_x(4)
    _, _, logits, q = m(x)
    (logits.square().mean() + q.sum()).backward()

    y, z = ref.initial_carry(4)
    x_emb = ref.embed(x)
    with torch.no_grad():
        for _ in range(cfg.T - 1):
            for _ in range(cfg.n):
                z = ref.net(x_emb + y + z)
            y = ref.net(y + z)
    _, _, logits_r, q_r = ref.step(x_emb, y, z)
    (logits_r.square().mean() + q_r.sum()).backward()
    assert torch.allclose(logits, logits_r, atol=1e-5)
    for (name, p), pr in zip(m.named_parameters(), ref.parameters()):
        assert p.grad is not None, name
        assert torch.allclose(p.grad, pr.grad, atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("bias, expected", [(50.0, 1), (-50.0, 4)])
def test_predict_act_forced_halting(bias, expected):
    torch.manual_seed(0)
    m = TRM(tiny())
    with torch.no_grad():
        m.q_head.bias.fill_(bias)
    calls, hook = _count_net_calls(m)
    out = m.predict(rand_x(5))
    hook.remove()
    assert out["steps"].tolist() == [expected] * 5
    assert len(calls) == expected * m.cfg.T * (m.cfg.n + 1)
    assert m.predict(rand_x(5), max_steps=2)["steps"].max() <= 2


def test_predict_per_sample_halting_matches_manual_loop():
    torch.manual_seed(1)
    cfg = tiny(n_sup=4)
    m = TRM(cfg)
    with torch.no_grad():  # a q head whose sign varies with the input and the step
        m.q_head.weight.normal_(0, 1.0)
        m.q_head.bias.zero_()
    B = 16
    x = rand_x(B, seed=3)
    with torch.no_grad():  # centre q so that roughly half the batch halts at step 1
        m.q_head.bias.fill_(-m(x)[3].median().item() - 1e-4)
    # manual reference: all samples, all steps
    with torch.no_grad():
        y, z = m.initial_carry(B)
        xe = m.embed(x)
        per_step = []
        for _ in range(cfg.n_sup):
            y, z, logits, q = m.step(xe, y, z)
            per_step.append((logits.softmax(-1), q))
    expected_steps = []
    for b in range(B):
        s = next((i + 1 for i, (_, q) in enumerate(per_step[:-1]) if q[b] > 0), cfg.n_sup)
        expected_steps.append(s)
    assert 1 < len(set(expected_steps))  # the test needs a mix of early and late halting

    calls, hook = _count_net_calls(m)
    out = m.predict(x)
    hook.remove()
    assert out["steps"].tolist() == expected_steps
    for b, s in enumerate(expected_steps):
        probs, q = per_step[s - 1]
        assert torch.allclose(out["probs"][b], probs[b], atol=1e-5)
        assert torch.allclose(out["q_halt"][b], torch.sigmoid(q[b]), atol=1e-6)
    # halted samples are dropped from later computation
    assert calls[0][2] == B and calls[-1][2] == sum(s == max(expected_steps) for s in expected_steps)


def test_config_roundtrip_and_validation():
    cfg = tiny(mixer="mlp")
    assert TRMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        TRMConfig.from_dict({**cfg.to_dict(), "hiden": 3})
    with pytest.raises(ValueError):
        tiny(mixer="conv")
    with pytest.raises(ValueError):
        TRMConfig.preset("huge", seq_len=4, feature_vocab=(5,), n_out=2)


def test_preset_parameter_counts(capsys):
    # a realistic alert vocabulary: words, roles, two hashed char-n-gram channels
    vocab = (4096, 16, 2048, 2048)
    counts = {}
    for name in ("paper", "cpu", "tiny"):
        m = TRM(TRMConfig.preset(name, seq_len=48, feature_vocab=vocab, n_out=64))
        counts[name] = (count_parameters(m), count_parameters(m.net))
    with capsys.disabled():
        print("\nTRM parameters (total incl. embeddings, shared net):", counts)
    total, net = counts["paper"]
    assert 6.5e6 < net < 7.5e6  # the paper's ~7M network
    assert 9e6 < total < 12e6
    assert counts["cpu"][0] < 2e6 and counts["tiny"][0] < counts["cpu"][0]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()  # tiny tensors: threads only add overhead (see test_train.py)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _padded(B: int, lengths: list[int], L: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.randint(1, v, (B, L), generator=g) for v in VOCAB], -1)
    for i, n in enumerate(lengths):
        x[i, n:] = 0  # trailing padding, as the tokenizer writes it
    return x


def test_masked_padding_makes_answers_independent_of_padding_and_batch():
    torch.manual_seed(0)
    m = TRM(tiny(mask_padding=True)).eval()
    x = _padded(3, [2, 4, 3])
    full = m.predict(x, max_steps=2)
    # the batch is cut to its longest alert (4): nothing is computed for the last 2 columns
    assert torch.equal(m.trim(x), x[:, :4])
    assert torch.all(full["probs"][:, 4:] == 0)
    for i, n in enumerate([2, 4, 3]):
        alone = m.predict(x[i:i + 1, :n], max_steps=2)  # no padding at all, no batch mates
        assert torch.allclose(full["probs"][i, :n], alone["probs"][0], atol=1e-5)
        assert torch.allclose(full["q_halt"][i], alone["q_halt"][0], atol=1e-5)


def test_unmasked_model_attends_to_padding():
    # The switch is real: the same weights without the mask answer differently once padding is cut.
    torch.manual_seed(0)
    m = TRM(tiny(mask_padding=False)).eval()
    x = _padded(1, [2])
    assert torch.equal(m.trim(x), x)
    a = m.predict(x, max_steps=1)["probs"][0, :2]
    b = m.predict(x[:, :2], max_steps=1)["probs"][0]
    assert not torch.allclose(a, b, atol=1e-4)


def test_configs_without_the_mask_key_load_unmasked():
    d = tiny(mask_padding=True).to_dict()
    assert TRMConfig.from_dict(d).mask_padding is True
    d.pop("mask_padding")  # exports written before the option existed
    assert TRMConfig.from_dict(d).mask_padding is False
