"""Serving a trained TRM: load an export, predict batches of alerts, and the chain stage.

``Predictor.load(model_dir)`` reads the export (``checkpoint.load_exported``), rebuilds the tokenizer
from the vocabulary saved with it, and refuses a model trained on another catalog. ``predict_batch``
encodes all alerts and runs ONE ``model.predict`` call; each grid is decoded to the model's text
answer, parsed with the project's JSON parser and validated against the catalog.
"""

from __future__ import annotations

import os

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from .. import catalog
from ..alerts import Alert
from ..chain.base import Abstain
from ..decision import Decision, InvalidProposal
from .checkpoint import ModelLoadError, load_exported
from .encoding import Tokenizer, parse_answer

DEFAULT_THRESHOLD = 0.9


@dataclass
class Prediction:
    decision: Decision | None  # validated decision (no action included), None when invalid
    confidence: float
    iterations: int  # supervision steps used (ACT)
    q_halt: float
    text: str  # the model's raw text answer
    error: str | None = None  # why the answer was rejected
    probs_fn: dict[str, float] = field(default_factory=dict)

    @property
    def action(self) -> bool:
        return bool(self.decision and self.decision.lambda_function)


class Predictor:
    def __init__(self, model: Any, tokenizer: Tokenizer, meta: Mapping[str, Any] | None = None,
                 halt_threshold: float = 0.0, use_halt_confidence: bool = False):
        self.model = model.eval()
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.tok = tokenizer
        self.meta = dict(meta or {})
        self.halt_threshold = halt_threshold
        self.use_halt_confidence = use_halt_confidence

    @classmethod
    def load(cls, model_dir: str | Path, *, check_catalog: bool = True, **kw: Any) -> "Predictor":
        d = Path(model_dir)
        if not d.is_dir():
            raise ModelLoadError(f"model directory {d} does not exist")
        # DEVICE=cuda for the GPU variant of trm-reasoning; the CPU build is the default everywhere.
        device = str(kw.pop("device", None) or os.environ.get("DEVICE", "cpu")).strip() or "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"DEVICE={device} but this torch build has no CUDA device")
        model, cfg, extra = load_exported(d, device=device)
        if "tokenizer" not in extra:
            raise ModelLoadError(f"{d}: export has no tokenizer vocabulary (extra.tokenizer)")
        try:
            tok = Tokenizer.from_dict(extra["tokenizer"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"{d}: bad tokenizer vocabulary: {e}") from None
        want = extra.get("catalog_hash")
        if check_catalog and want != catalog.catalog_hash():
            raise ModelLoadError(f"{d}: model was trained for catalog {want}, this agent has "
                                 f"{catalog.catalog_hash()}; retrain the model")
        if tuple(cfg.feature_vocab) != tok.feature_vocab or cfg.n_out != tok.space.n_out or cfg.seq_len != tok.seq_len:
            raise ModelLoadError(f"{d}: model config does not fit its tokenizer (feature sizes / classes / length)")
        return cls(model, tok, extra, **kw)

    # predict_batch = encode -> forward -> decode. The three are separate so a server can run only
    # ``forward`` (native code, GIL released) on its model thread and the Python-heavy encode and
    # decode on the callers' threads, overlapping them with the next batch's forward pass.
    def encode(self, alerts: list[Alert | Mapping[str, Any]]) -> tuple[list[Any], torch.Tensor]:
        encs = [self.tok.encode(a) for a in alerts]
        return encs, torch.tensor([e.ids for e in encs], dtype=torch.long, device=self.device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One batched ``model.predict`` (ACT loop included); CPU tensors out."""
        with torch.inference_mode():
            out = self.model.predict(x, halt_threshold=self.halt_threshold)
        return {"probs": out["probs"].float().cpu(), "steps": out["steps"].cpu(), "q_halt": out["q_halt"].float().cpu()}

    def decode(self, alerts: list[Alert | Mapping[str, Any]], encs: list[Any],
               out: Mapping[str, torch.Tensor]) -> list[Prediction]:
        probs = out["probs"].numpy()
        steps = out["steps"].tolist()
        q = out["q_halt"].tolist()
        preds = []
        fn_names = ["none"] + list(self.tok.space.functions)
        fn_cls = [0] + [self.tok.space.index(f"fn:{f}") for f in self.tok.space.functions]
        for a, e, P, s, qh in zip(alerts, encs, probs, steps, q):
            ans = self.tok.decode(P, a, e)
            conf = ans.confidence * (qh if self.use_halt_confidence else 1.0)
            ans.confidence = conf
            pf = {n: float(P[0][c]) for n, c in zip(fn_names, fn_cls)}  # position 0 = FN1 slot
            try:
                d = parse_answer(ans, iterations=int(s))
                preds.append(Prediction(d, conf, int(s), float(qh), ans.text, None, pf))
            except InvalidProposal as err:
                preds.append(Prediction(None, conf, int(s), float(qh), ans.text, str(err), pf))
        return preds

    def predict_batch(self, alerts: Iterable[Alert | Mapping[str, Any]]) -> list[Prediction]:
        alerts = list(alerts)
        if not alerts:
            return []
        encs, x = self.encode(alerts)
        return self.decode(alerts, encs, self.forward(x))

    def predict(self, alert: Alert | Mapping[str, Any]) -> Prediction:
        return self.predict_batch([alert])[0]


class TRMStage:
    """Chain stage ``trm``: a confident, valid answer becomes the Decision (method
    ``trm_recursive_reasoning``); anything else raises ``Abstain`` so the next stage decides."""

    name = "trm"

    def __init__(self, predictor: Predictor, threshold: float = DEFAULT_THRESHOLD, decide_no_action: bool = True):
        self.predictor = predictor
        self.threshold = threshold
        self.decide_no_action = decide_no_action

    @classmethod
    def from_path(cls, model_dir: str | Path, threshold: float | None = None, **kw: Any) -> "TRMStage":
        """Threshold: the argument, else the one recorded at training time, else DEFAULT_THRESHOLD."""
        pred = Predictor.load(model_dir)
        if threshold is None:
            threshold = float(pred.meta.get("threshold", DEFAULT_THRESHOLD))
        return cls(pred, threshold=threshold, **kw)

    def _judge(self, alert: Alert | Mapping[str, Any], p: Prediction) -> Decision:
        status = alert.status if isinstance(alert, Alert) else str(alert.get("status", "firing"))
        if status != "firing":
            raise Abstain("alert is resolved: the TRM never proposes for resolved alerts")
        if p.decision is None:
            raise Abstain(f"invalid model output ({p.error})")
        if p.confidence < self.threshold:
            what = p.decision.lambda_function or "no action"
            raise Abstain(f"abstained ({what}: confidence {p.confidence:.2f} < {self.threshold:.2f})")
        if not p.decision.action and not self.decide_no_action:
            raise Abstain(f"model proposes no action (confidence {p.confidence:.2f})")
        return p.decision

    def __call__(self, alert: Alert) -> Decision:
        return self._judge(alert, self.predictor.predict(alert))

    def batch(self, alerts: list[Alert], forward: Any = None) -> list[Decision | Exception]:
        """``forward``: runs the model on an encoded batch (default: ``predictor.forward``); the
        agent passes its model thread's batcher here."""
        if not alerts:
            return []
        encs, x = self.predictor.encode(alerts)
        out_t = (forward or self.predictor.forward)(x)
        out: list[Decision | Exception] = []
        for a, p in zip(alerts, self.predictor.decode(alerts, encs, out_t)):
            try:
                out.append(self._judge(a, p))
            except Abstain as e:
                out.append(e)
        return out


def latency(predictor: Predictor, alerts: list[Any], repeats: int = 1) -> dict[str, float]:
    """Per-alert latency (one alert per call), milliseconds: p50, p95."""
    times = []
    for _ in range(repeats):
        for a in alerts:
            t0 = time.perf_counter()
            predictor.predict(a)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0],
            "n": len(times)}
