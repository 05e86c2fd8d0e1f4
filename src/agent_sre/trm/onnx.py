"""The TRM as an ONNX graph: written at export (needs torch), run with ONNX Runtime (needs only
onnxruntime and numpy: this module imports torch inside ``export`` and ``check`` alone).

The graph is one supervision step from token ids, the embedding included::

    inputs   x [B, L, F] int64 (0 = padding), y, z [B, n_prefix + L, D] float32: the carry
    outputs  y_out, z_out: the next carry; logits [B, L, n_out]; q_halt [B]: the halting logit;
             y_init, z_init [D]: the model's fixed starting carry (constants, read once at load)

The batch axis is dynamic, and so is the sequence axis of a padding-masked model, which computes a
batch only up to its longest alert. The early-halting loop around the step is ``halting.act``, the
loop PyTorch runs too. ``export`` checks the graph against PyTorch on probe batches (padded rows, the
model's own halting and every step): the same halting steps, probabilities within ``TOLERANCE``.
"""
from __future__ import annotations

import copy
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .config import TRMConfig
from .halting import act, real_length

log = logging.getLogger(__name__)

INPUTS = ["x", "y", "z"]
OUTPUTS = ["y_out", "z_out", "logits", "q_halt"]
INITIAL = ["y_init", "z_init"]
OPSET = 17
TOLERANCE = 1e-3  # largest |Δ probability| (and |Δ halting probability|) allowed against PyTorch


class ExportMismatch(RuntimeError):
    """The ONNX graph does not answer as the PyTorch model does."""


class OnnxTRM:
    """A TRM served by ONNX Runtime on CPU. ``predict`` takes and returns numpy arrays, with the same
    contract as ``TRM.predict``."""

    name = "onnx"

    def __init__(self, path: str | Path, cfg: TRMConfig, threads: int = 1):
        import onnxruntime as ort

        self.cfg = cfg
        self.threads = max(1, int(threads))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        got = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        if got != (INPUTS, OUTPUTS + INITIAL):
            raise ValueError(f"{path} is not a TRM step graph (inputs {got[0]}, outputs {got[1]})")
        L, S, D = cfg.seq_len, cfg.seq_len + cfg.n_prefix, cfg.hidden
        y0, z0 = self.session.run(INITIAL, {"x": np.zeros((1, L, len(cfg.feature_vocab)), np.int64),
                                            "y": np.zeros((1, S, D), np.float32),
                                            "z": np.zeros((1, S, D), np.float32)})
        self.y_init, self.z_init = y0.astype(np.float32), z0.astype(np.float32)
        self._vocab = np.asarray(cfg.feature_vocab, dtype=np.int64)

    def predict(self, x: np.ndarray, max_steps: int | None = None,
                halt_threshold: float = 0.0) -> dict[str, np.ndarray]:
        cfg = self.cfg
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 3 or x.shape[2] != len(cfg.feature_vocab):
            raise ValueError(f"x must be [B, L, {len(cfg.feature_vocab)}], got {x.shape}")
        if x.shape[1] > cfg.seq_len or (cfg.mixer == "mlp" and x.shape[1] != cfg.seq_len):
            raise ValueError(f"sequence length {x.shape[1]} does not fit seq_len={cfg.seq_len} ({cfg.mixer})")
        if ((x < 0) | (x >= self._vocab)).any():
            raise ValueError("input ids out of range for feature_vocab")
        B, width = x.shape[:2]
        if cfg.masks_padding:
            x = x[:, :real_length(x)]
        L = x.shape[1]
        S = L + cfg.n_prefix
        feeds = {"x": np.ascontiguousarray(x),
                 "y": np.ascontiguousarray(np.broadcast_to(self.y_init, (B, S, cfg.hidden))),
                 "z": np.ascontiguousarray(np.broadcast_to(self.z_init, (B, S, cfg.hidden)))}

        def step(running: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            if running is not None:
                for k in INPUTS:
                    feeds[k] = np.ascontiguousarray(feeds[k][running])
            feeds["y"], feeds["z"], logits, q = self.session.run(OUTPUTS, feeds)
            return logits, q

        return act(step, B, length=L, width=width, n_out=cfg.n_out, max_steps=max_steps or cfg.n_sup,
                   halt_threshold=halt_threshold)


# ---------------------------------------------------------------------------- export (torch)


def export(model: Any, path: str | Path, *, check: bool = True) -> Path:
    """Write ``model`` (a ``TRM``) as the step graph to ``path``; with ``check``, load it with ONNX
    Runtime and compare it with the PyTorch model (``check``), raising ``ExportMismatch``."""
    import torch

    cfg: TRMConfig = model.cfg
    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model is left as it was
    path = Path(path)
    L, S, D = cfg.seq_len, cfg.seq_len + cfg.n_prefix, cfg.hidden
    example = (torch.zeros(2, L, len(cfg.feature_vocab), dtype=torch.long), torch.zeros(2, S, D),
               torch.zeros(2, S, D))
    axes: dict[str, dict[int, str]] = {k: {0: "batch"} for k in INPUTS + OUTPUTS}
    if cfg.masks_padding:
        for k in ("x", "y", "z", "y_out", "z_out", "logits"):
            axes[k][1] = "seq"
    _register_rms_norm()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on the Python-side input checks of ``embed``
        torch.onnx.export(_step_module(model), example, str(path), input_names=INPUTS, output_names=OUTPUTS + INITIAL,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    if check:
        diff = compare(model, OnnxTRM(path, cfg, threads=1))
        log.info("ONNX graph %s agrees with PyTorch (max |dp| %.1e)", path, diff)
    return path


def compare(model: Any, graph: OnnxTRM, tolerance: float = TOLERANCE) -> float:
    """Run probe batches through both: rows of every length from full to all-padding, alone and in a
    batch, with the model's own halting and with every step. Returns the largest difference in
    probability; raises ExportMismatch when a row halts at another step or a difference exceeds
    ``tolerance``."""
    import torch

    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    lengths = sorted({cfg.seq_len, cfg.seq_len - 1, cfg.seq_len // 2, 3, 1, 0}, reverse=True)
    x = torch.stack([torch.randint(1, v, (len(lengths), cfg.seq_len), generator=g) for v in cfg.feature_vocab], -1)
    for i, n in enumerate(lengths):
        x[i, max(0, n):] = 0
    worst = 0.0
    for probe in (x, x[2:4], x[-1:]):
        for threshold in (0.0, math.inf):  # the model's own halting; never halt early (every step)
            a = model.predict(probe, halt_threshold=threshold)
            b = graph.predict(probe.numpy(), halt_threshold=threshold)
            if not np.array_equal(a["steps"].numpy(), b["steps"]):
                raise ExportMismatch(f"ONNX graph halts at steps {b['steps'].tolist()}, PyTorch at "
                                     f"{a['steps'].tolist()}")
            diff = max(float(np.abs(a["probs"].numpy() - b["probs"]).max()),
                       float(np.abs(a["q_halt"].numpy() - b["q_halt"]).max()))
            worst = max(worst, diff)
    if worst > tolerance:
        raise ExportMismatch(f"ONNX graph disagrees with PyTorch (max |dp| = {worst:.2e} > {tolerance})")
    return worst


def _step_module(model: Any) -> Any:
    import torch

    class Step(torch.nn.Module):
        """One supervision step from token ids, the embedding inside (see the module docstring)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x, y, z):
            m = self.model
            y, z, logits, q = m.step(m.embed(x, bag=False), y, z, m.keep_mask(x))
            return y, z, logits, q, m.y_init.clone(), m.z_init.clone()

    return Step()



def _register_rms_norm() -> None:
    """aten::rms_norm has no ONNX form before opset 23 in the TorchScript exporter: spell it out
    (x / sqrt(mean(x²) + eps) over the last axis, the only one the model normalises; no learned gain)."""
    import torch
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx.symbolic_helper import parse_args

    @parse_args("v", "none", "none", "f")
    def rms_norm(g, x, shape, weight, eps):
        mean_sq = g.op("ReduceMean", g.op("Mul", x, x), axes_i=[-1], keepdims_i=1)
        denom = g.op("Sqrt", g.op("Add", mean_sq, g.op("Constant", value_t=torch.tensor(eps, dtype=torch.float32))))
        return g.op("Div", x, denom)

    register_custom_op_symbolic("aten::rms_norm", rms_norm, OPSET)
