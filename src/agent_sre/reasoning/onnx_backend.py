"""Optional ONNX Runtime backend for the TRM on CPU (``BACKEND=onnx``; needs the ``onnx`` extra).

One deep-supervision step — ``(x_emb, y, z) -> (y, z, logits, q_halt)``, i.e. T cycles of n+1 calls of the
tiny net — is exported to ONNX; the ACT loop (halt per alert, keep computing only the running ones) stays
in Python exactly as ``TRM.predict`` does it, and the embedding stays in torch (one lookup). ``OnnxTRM``
exposes the same ``predict(x, max_steps=None, halt_threshold=0.0)`` as the torch model, so the TRM's
``Predictor`` uses it unchanged. Outputs match torch to ~1e-5 (checked at load time on a probe batch).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from typing import Any

import torch

log = logging.getLogger(__name__)


class _Step(torch.nn.Module):
    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, x_emb: torch.Tensor, y: torch.Tensor, z: torch.Tensor):
        y, z, logits, q = self.model.step(x_emb, y, z)
        return y, z, logits, q


class OnnxTRM:
    def __init__(self, model: Any, threads: int | None = None):
        import onnxruntime as ort

        self.torch_model = model.eval()
        self.cfg = model.cfg
        S, D = self.cfg.seq_len + self.cfg.n_prefix, self.cfg.hidden
        ex = (torch.zeros(2, S, D), torch.zeros(2, S, D), torch.zeros(2, S, D))
        buf = io.BytesIO()
        from ..trm import model as trm_model

        def rms_norm_decomposed(h: torch.Tensor, eps: float) -> torch.Tensor:
            # Same math as trm.model.rms_norm; aten::rms_norm has no ONNX symbolic in the TorchScript exporter.
            hf = h.float()
            return (hf * torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + eps)).to(h.dtype)

        original = trm_model.rms_norm
        trm_model.rms_norm = rms_norm_decomposed
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about python-side shape checks
                torch.onnx.export(_Step(model), ex, buf, input_names=["x_emb", "y", "z"],
                                  output_names=["y_out", "z_out", "logits", "q_halt"],
                                  dynamic_axes={k: {0: "batch"} for k in ("x_emb", "y", "z", "y_out", "z_out",
                                                                          "logits", "q_halt")},
                                  opset_version=17, dynamo=False)
        finally:
            trm_model.rms_norm = original
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        n = threads or int(os.environ.get("TORCH_THREADS", "0") or 0) or torch.get_num_threads()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        self.threads = n

    def eval(self) -> "OnnxTRM":
        return self

    def parameters(self):
        return self.torch_model.parameters()

    def _step(self, x_emb, y, z):
        y, z, logits, q = self.session.run(None, {"x_emb": x_emb, "y": y, "z": z})
        return y, z, logits, q

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, max_steps: int | None = None, halt_threshold: float = 0.0) -> dict:
        import numpy as np

        m, cfg = self.torch_model, self.cfg
        max_steps = max_steps or cfg.n_sup
        B, L = x.shape[:2]
        x_emb = np.ascontiguousarray(m.embed(x).float().numpy())
        y0, z0 = m.initial_carry(B, L)
        y, z = np.ascontiguousarray(y0.float().numpy()), np.ascontiguousarray(z0.float().numpy())
        probs = np.empty((B, L, cfg.n_out), dtype=np.float32)
        steps = np.zeros(B, dtype=np.int64)
        q_prob = np.zeros(B, dtype=np.float32)
        active = np.arange(B)
        for s in range(1, max_steps + 1):
            y, z, logits, q = self._step(x_emb, y, z)
            halt = q > halt_threshold if s < max_steps else np.ones_like(q, dtype=bool)
            if halt.any():
                lg = logits[halt]
                e = np.exp(lg - lg.max(-1, keepdims=True))
                done = active[halt]
                probs[done] = e / e.sum(-1, keepdims=True)
                steps[done] = s
                q_prob[done] = 1 / (1 + np.exp(-q[halt]))
                if halt.all():
                    break
                keep = ~halt
                active, x_emb, y, z = active[keep], x_emb[keep], y[keep], z[keep]
        return {"probs": torch.from_numpy(probs), "steps": torch.from_numpy(steps), "q_halt": torch.from_numpy(q_prob)}


def use_onnx(predictor: Any, threads: int | None = None, check: bool = True) -> Any:
    """Swap the predictor's torch model for ONNX Runtime; verify it agrees with torch on a probe batch."""
    onnx_model = OnnxTRM(predictor.model, threads)
    if check:
        cfg = onnx_model.cfg
        g = torch.Generator().manual_seed(0)
        x = torch.stack([torch.randint(0, v, (3, cfg.seq_len), generator=g) for v in cfg.feature_vocab], -1)
        a = predictor.model.predict(x, max_steps=2)
        b = onnx_model.predict(x, max_steps=2)
        diff = float((a["probs"] - b["probs"]).abs().max())
        if diff > 1e-3:
            raise RuntimeError(f"ONNX export disagrees with torch (max |dp| = {diff:.2e})")
    predictor.model = onnx_model
    return predictor
