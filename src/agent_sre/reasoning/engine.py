"""What the trm-reasoning service runs: a batch of alerts in, one verdict per alert out.

``TRMEngine`` wraps the TRM's chain stage (``agent_sre.trm.infer.TRMStage``): one ``predict_batch`` call
(one forward pass with ACT halting) for the whole batch, then the stage's own threshold rule per alert, so
the service and the in-process stage abstain on exactly the same alerts. ``DecisionEngine`` adapts
anything with ``predict_batch(list[Alert]) -> list[Decision | Exception]``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from ..alerts import Alert
from ..chain.base import Abstain
from ..decision import Decision

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    decision: Decision | None  # the model's (validated) proposal; None when it produced nothing valid
    abstain: str | None = None  # why the proposal should not be used (below threshold, invalid, ...)
    confidence: float = 0.0
    iterations: int | None = None  # ACT supervision steps used
    q_halt: float | None = None


class Engine(Protocol):
    def decide_batch(self, alerts: list[Alert]) -> Sequence[Verdict | BaseException]: ...


class BatchPredictor(Protocol):
    def predict_batch(self, alerts: list[Alert]) -> Sequence[Decision | BaseException]: ...


class DecisionEngine:
    """Adapter for the small protocol ``predict_batch(alerts) -> list[Decision | Exception]``."""

    def __init__(self, predictor: BatchPredictor, info: dict[str, Any] | None = None):
        self.predictor = predictor
        self.info = dict(info or {})

    def decide_batch(self, alerts: list[Alert]) -> list[Verdict | BaseException]:
        out: list[Verdict | BaseException] = []
        for r in self.predictor.predict_batch(alerts):
            if isinstance(r, Decision):
                out.append(Verdict(r, None, r.confidence, r.iterations))
            elif isinstance(r, Abstain):
                out.append(Verdict(None, str(r)))
            else:
                out.append(r)
        return out


class TRMEngine:
    def __init__(self, stage: Any, info: dict[str, Any] | None = None):
        self.stage = stage  # agent_sre.trm.infer.TRMStage
        self.info = dict(info or {})

    @classmethod
    def load(cls, model_dir: str | Path, threshold: float | None = None, backend: str | None = None) -> "TRMEngine":
        """``backend``: ``torch`` | ``onnx`` | ``auto`` (default, env ``TRM_BACKEND``): ONNX Runtime when it is
        installed and its export agrees with torch on a probe batch, else torch (the reason is logged)."""
        from ..trm.infer import DEFAULT_THRESHOLD, TRMStage

        th = DEFAULT_THRESHOLD if threshold is None else threshold
        backend = (backend or os.environ.get("TRM_BACKEND", "") or "auto").strip().lower()
        if backend not in ("auto", "torch", "onnx"):
            raise ValueError(f"TRM_BACKEND must be auto, torch or onnx, not {backend!r}")
        threads = _torch_threads()
        stage = TRMStage.from_path(model_dir, threshold=th)
        model = stage.predictor.model
        used, why = "torch", "requested" if backend == "torch" else ""
        if backend == "auto" and stage.predictor.device.type != "cpu":
            why = f"model on {stage.predictor.device}: ONNX Runtime path is CPU-only"
        elif backend in ("auto", "onnx"):
            try:
                from .onnx_backend import use_onnx

                use_onnx(stage.predictor, threads)
                used, why = "onnx", "onnxruntime " + _ort_version()
            except Exception as e:  # noqa: BLE001 - auto falls back; onnx explicitly requested must fail loudly
                if backend == "onnx":
                    raise RuntimeError(f"TRM_BACKEND=onnx unusable: {type(e).__name__}: {e}") from e
                why = f"onnx unavailable ({type(e).__name__}: {str(e)[:120]})"
                log.warning("TRM backend: torch, %s", why)
        cfg = getattr(model, "cfg", None)
        info = {"model_dir": str(model_dir), "threshold": th, "backend": used, "backend_note": why,
                "parameters": sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None,
                "hidden": getattr(cfg, "hidden", None), "n_sup": getattr(cfg, "n_sup", None),
                "seq_len": getattr(cfg, "seq_len", None),
                "threads": threads}
        return cls(stage, info)

    def decide_batch(self, alerts: list[Alert]) -> list[Verdict | BaseException]:
        preds = self.stage.predictor.predict_batch(alerts)
        out: list[Verdict | BaseException] = []
        for a, p in zip(alerts, preds):
            try:
                d = self.stage._judge(a, p)  # the stage's threshold rule, shared with the in-process path
                out.append(Verdict(d, None, p.confidence, p.iterations, p.q_halt))
            except Abstain as e:
                out.append(Verdict(p.decision, str(e), p.confidence, p.iterations, p.q_halt))
        return out


def _torch_threads() -> int | None:
    try:
        import torch

        n = os.environ.get("TORCH_THREADS", "").strip()
        if n.isdigit() and int(n) > 0:
            torch.set_num_threads(int(n))
        else:
            # Default: leave one core to the event loop / HTTP. On a 2-core host shared with other work,
            # 2 intra-op threads measured 10-50x slower than 1 (spinning threads fighting for the cores).
            torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - 1)))
        return torch.get_num_threads()
    except Exception:  # pragma: no cover
        return None


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
