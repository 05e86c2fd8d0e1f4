"""What the trm-reasoning service runs: a batch of alerts in, one verdict per alert out.

``TRMEngine`` serves the TRM with the chain's TRM stage's loader and rule (``trm.infer``:
``load_predictor`` and ``judge``): one ``predict_batch`` (one forward pass with early halting) for
the whole batch, then the threshold rule per alert, so the service and the in-process stage abstain
on exactly the same alerts. ``DecisionEngine`` adapts anything with
``predict_batch(list[Alert]) -> list[Decision | Exception]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from ..alerts import Alert
from ..decision import Abstain, Decision
from ..settings import TRMSettings, load
from ..trm.infer import Predictor, judge, load_predictor


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
    def __init__(self, predictor: Predictor, threshold: float, info: dict[str, Any] | None = None):
        self.predictor = predictor
        self.threshold = threshold
        self.info = {**predictor.info, "threshold": threshold, **(info or {})}

    @classmethod
    def load(cls, model_dir: str | Path, threshold: float | None = None, backend: str | None = None,
             settings: TRMSettings | None = None) -> "TRMEngine":
        """Load with TRM_BACKEND, TORCH_THREADS and DEVICE (``settings``, default the environment);
        ``threshold``/``backend`` override TRM_THRESHOLD/TRM_BACKEND. Raises ModelLoadError."""
        s = settings or load(TRMSettings)
        pred = load_predictor(model_dir, backend=backend or s.trm_backend, threads=s.torch_threads, device=s.device)
        return cls(pred, pred.threshold(threshold if threshold is not None else s.trm_threshold))

    def decide_batch(self, alerts: list[Alert]) -> list[Verdict | BaseException]:
        out: list[Verdict | BaseException] = []
        for a, p in zip(alerts, self.predictor.predict_batch(alerts)):
            try:
                d = judge(a, p, self.threshold)
                out.append(Verdict(d, None, p.confidence, p.iterations, p.q_halt))
            except Abstain as e:
                out.append(Verdict(p.decision, str(e), p.confidence, p.iterations, p.q_halt))
        return out
