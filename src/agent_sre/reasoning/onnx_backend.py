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

    def forward(self, x_emb: torch.Tensor, y: torch.Tensor, z: torch.Tensor, keep: torch.Tensor | None = None):
        y, z, logits, q = self.model.step(x_emb, y, z, keep)
        return y, z, logits, q


class OnnxTRM:
    def __init__(self, model: Any, threads: int | None = None):
        import onnxruntime as ort

        self.torch_model = model.eval()
        self.cfg = model.cfg
        S, D = self.cfg.seq_len + self.cfg.n_prefix, self.cfg.hidden
        # With mask_padding the graph also takes the attention mask, and the sequence axis is
        # dynamic so a batch runs only up to its longest alert, as in torch.
        self.masked = model.masks_padding
        ex = (torch.zeros(2, S, D), torch.zeros(2, S, D), torch.zeros(2, S, D))
        names = ["x_emb", "y", "z"]
        if self.masked:
            ex = ex + (torch.ones(2, S, dtype=torch.bool),)
            names.append("keep")
        axes = {k: {0: "batch"} for k in names + ["y_out", "z_out", "logits", "q_halt"]}
        if self.masked:
            for k in ("x_emb", "y", "z", "y_out", "z_out", "logits"):
                axes[k][1] = "seq"
            axes["keep"][1] = "seq"
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
                torch.onnx.export(_Step(model), ex, buf, input_names=names,
                                  output_names=["y_out", "z_out", "logits", "q_halt"], dynamic_axes=axes,
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

    def _step(self, x_emb, y, z, keep=None):
        feeds = {"x_emb": x_emb, "y": y, "z": z}
        if keep is not None:
            feeds["keep"] = keep
        y, z, logits, q = self.session.run(None, feeds)
        return y, z, logits, q

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, max_steps: int | None = None, halt_threshold: float = 0.0) -> dict:
        import numpy as np

        m, cfg = self.torch_model, self.cfg
        max_steps = max_steps or cfg.n_sup
        B, L_full = x.shape[:2]
        x = m.trim(x)
        L = x.shape[1]
        x_emb = np.ascontiguousarray(m.embed(x).float().numpy())
        keep_t = m.keep_mask(x)
        keep = None if keep_t is None else np.ascontiguousarray(keep_t.numpy())
        y0, z0 = m.initial_carry(B, L)
        y, z = np.ascontiguousarray(y0.float().numpy()), np.ascontiguousarray(z0.float().numpy())
        probs = np.zeros((B, L_full, cfg.n_out), dtype=np.float32)
        steps = np.zeros(B, dtype=np.int64)
        q_prob = np.zeros(B, dtype=np.float32)
        active = np.arange(B)
        for s in range(1, max_steps + 1):
            y, z, logits, q = self._step(x_emb, y, z, keep)
            halt = q > halt_threshold if s < max_steps else np.ones_like(q, dtype=bool)
            if halt.any():
                lg = logits[halt]
                e = np.exp(lg - lg.max(-1, keepdims=True))
                done = active[halt]
                probs[done, :L] = e / e.sum(-1, keepdims=True)
                steps[done] = s
                q_prob[done] = 1 / (1 + np.exp(-q[halt]))
                if halt.all():
                    break
                run = ~halt
                active, x_emb, y, z = active[run], x_emb[run], y[run], z[run]
                keep = None if keep is None else keep[run]
        return {"probs": torch.from_numpy(probs), "steps": torch.from_numpy(steps), "q_halt": torch.from_numpy(q_prob)}


def use_onnx(predictor: Any, threads: int | None = None, check: bool = True) -> Any:
    """Swap the predictor's torch model for ONNX Runtime; verify it agrees with torch on a probe batch."""
    onnx_model = OnnxTRM(predictor.model, threads)
    if check:
        cfg = onnx_model.cfg
        g = torch.Generator().manual_seed(0)
        x = torch.stack([torch.randint(1, v, (4, cfg.seq_len), generator=g) for v in cfg.feature_vocab], -1)
        x[1, cfg.seq_len // 2:] = 0  # padded rows too: the mask and the cut must agree with torch
        x[2:, 3:] = 0
        diff = 0.0
        for probe in (x, x[2:]):
            a = predictor.model.predict(probe, max_steps=2)
            b = onnx_model.predict(probe, max_steps=2)
            diff = max(diff, float((a["probs"] - b["probs"]).abs().max()))
        if diff > 1e-3:
            raise RuntimeError(f"ONNX export disagrees with torch (max |dp| = {diff:.2e})")
    predictor.model = onnx_model
    return predictor
