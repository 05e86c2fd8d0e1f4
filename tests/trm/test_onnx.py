"""The ONNX Runtime backend answers as PyTorch does, padding mask and batch cut included."""
from __future__ import annotations

import pytest
import torch

from agent_sre.trm.model import TRM, TRMConfig

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")  # scripts/setup installs it

from agent_sre.reasoning.onnx_backend import OnnxTRM  # noqa: E402

VOCAB = (11, 4, 7)


@pytest.mark.parametrize("mask_padding", [True, False])
def test_onnx_matches_torch_on_padded_batches(mask_padding):
    torch.manual_seed(0)
    m = TRM(TRMConfig.preset("tiny", seq_len=8, feature_vocab=VOCAB, n_out=5, mask_padding=mask_padding)).eval()
    onnx = OnnxTRM(m, threads=1)
    assert onnx.masked is mask_padding
    g = torch.Generator().manual_seed(3)
    x = torch.stack([torch.randint(1, v, (4, 8), generator=g) for v in VOCAB], -1)
    for i, n in enumerate([3, 8, 5, 2]):
        x[i, n:] = 0
    for batch in (x, x[[0, 3]], x[2:3]):  # cut to 8, 3 and 5 columns when masked
        a, b = m.predict(batch), onnx.predict(batch)
        assert a["probs"].shape == b["probs"].shape == (len(batch), 8, 5)
        assert torch.allclose(a["probs"], b["probs"], atol=1e-4)
        assert torch.equal(a["steps"], b["steps"])
