"""The ONNX graph answers as PyTorch does: the one early-halting loop run by both backends, padded
rows, padding masks and rows halting at different steps included; and an export that disagrees is
refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_sre.trm import onnx
from agent_sre.trm.model import TRM, TRMConfig

VOCAB = (11, 4, 7)


def _model(mask_padding: bool, seed: int = 0) -> TRM:
    torch.manual_seed(seed)
    return TRM(TRMConfig.preset("tiny", seq_len=8, feature_vocab=VOCAB, n_out=5, mask_padding=mask_padding)).eval()


def _padded(lengths: list[int], seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.randint(1, v, (len(lengths), 8), generator=g) for v in VOCAB], -1)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return x


def _mixed_halting(m: TRM, x: torch.Tensor) -> None:
    """Give the q head weights whose sign varies with the row and the step, centred so that some rows
    halt at step 1 and others later."""
    with torch.no_grad():
        m.q_head.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(7))
        m.q_head.bias.zero_()
        m.q_head.bias.fill_(-m(x)[3].median().item() - 1e-4)


@pytest.mark.parametrize("mask_padding", [True, False])
def test_onnx_matches_torch_on_padded_batches_with_mixed_halting(mask_padding, tmp_path):
    m = _model(mask_padding)
    x = _padded([3, 8, 5, 2, 8, 1, 0, 6])
    _mixed_halting(m, x)
    graph = onnx.OnnxTRM(onnx.export(m, tmp_path / "model.onnx"), m.cfg, threads=1)
    full = m.predict(x)
    assert len(set(full["steps"].tolist())) > 1  # the test needs rows that halt at different steps
    for batch in (x, x[[0, 3]], x[2:3], x[6:7]):  # cut to 8, 3, 5 and 1 columns when masked
        a, b = m.predict(batch), graph.predict(batch.numpy())
        assert b["probs"].shape == tuple(a["probs"].shape) == (len(batch), 8, 5)
        assert np.array_equal(a["steps"].numpy(), b["steps"])
        assert np.allclose(a["probs"].numpy(), b["probs"], atol=1e-4)
        assert np.allclose(a["q_halt"].numpy(), b["q_halt"], atol=1e-5)
    if mask_padding:  # nothing past the batch's longest alert is computed or answered
        cut = graph.predict(x[[0, 3]].numpy())
        assert np.all(cut["probs"][:, 3:] == 0)


def test_the_graph_checks_its_input_as_the_model_does(tmp_path):
    m = _model(False)
    graph = onnx.OnnxTRM(onnx.export(m, tmp_path / "model.onnx"), m.cfg)
    with pytest.raises(ValueError, match="out of range"):
        graph.predict(np.full((1, 8, 3), 11, dtype=np.int64))
    with pytest.raises(ValueError, match="sequence length"):
        graph.predict(np.zeros((1, 9, 3), dtype=np.int64))


def test_export_refuses_a_graph_that_disagrees_with_torch(tmp_path):
    m = _model(False)
    path = onnx.export(m, tmp_path / "model.onnx")
    other = _model(False, seed=1)  # other weights: the graph no longer answers as this model does
    with pytest.raises(onnx.ExportMismatch):
        onnx.compare(other, onnx.OnnxTRM(path, other.cfg))
    assert onnx.compare(m, onnx.OnnxTRM(path, m.cfg)) <= onnx.TOLERANCE


def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    m = _model(False).train()
    onnx.export(m, tmp_path / "model.onnx")
    assert m.training and next(m.parameters()).device.type == "cpu"
