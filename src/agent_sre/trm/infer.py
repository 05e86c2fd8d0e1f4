"""Serving a trained TRM: load an export, predict batches of alerts, judge each answer.

``load_predictor(model_dir, backend=, threads=)`` is the one loader (the chain's TRM stage, the
trm-reasoning service, ``agent-sre evaluate``, the benchmarks). It reads ``config.json`` (no torch),
rebuilds the tokenizer from the vocabulary saved with the model, refuses a model trained for another
catalog, and runs the model with one of two backends:

* ``onnx``: ONNX Runtime on the export's ``model.onnx`` (``trm/onnx.py``); imports no torch;
* ``torch``: PyTorch on ``model.safetensors`` (the CPU, or ``device="cuda"``);
* ``auto``: ``onnx`` when ONNX Runtime is installed, the export has its graph and the device is the
  CPU; otherwise ``torch``. The choice and its reason are in ``Predictor.info``.

An ensemble export (``artifact.members``) is served by ``EnsembleTRM``: every member runs on the same
token ids and their class probabilities are averaged to choose the answer. Its confidence is the
lowest of the average's and each member's probability for the same choices, so a mistake the
average is sure of but one member is not makes the stage abstain.

Both run the same early-halting loop (``halting.act``). ``Predictor.predict_batch`` encodes all
alerts, runs ONE ``model.predict`` and decodes each grid to the model's text answer, which is parsed
and validated against the catalog. ``judge`` is the TRM stage's rule for which answers become
decisions; the chain stage and the trm-reasoning service both apply it.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import numpy as np

from .. import catalog
from ..alerts import Alert
from ..decision import Abstain, Decision, InvalidProposal
from . import artifact
from .artifact import ModelLoadError
from .encoding import Tokenizer, parse_answer

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.9
Backend = Literal["auto", "onnx", "torch"]


def packaged_model() -> Path | None:
    """The model shipped inside the package (``agent_sre/data/model``), when present."""
    p = Path(str(resources.files("agent_sre") / "data" / "model"))
    return p if (p / artifact.CONFIG).exists() else None


def default_model_path() -> Path | None:
    """``MODEL_PATH`` when set, else the packaged model."""
    from ..settings import TRMSettings, load

    return load(TRMSettings).model_path or packaged_model()


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
    """``model``: a backend, i.e. anything with ``cfg`` and ``predict(x, max_steps=None,
    halt_threshold=0.0)`` taking token ids [B, L, F] and returning ``probs``, ``steps`` and
    ``q_halt`` (numpy arrays, or anything ``np.asarray`` reads)."""

    def __init__(self, model: Any, tokenizer: Tokenizer, meta: Mapping[str, Any] | None = None,
                 halt_threshold: float = 0.0, use_halt_confidence: bool = False):
        self.model = model
        self.tok = tokenizer
        self.meta = dict(meta or {})
        self.halt_threshold = halt_threshold
        self.use_halt_confidence = use_halt_confidence
        self.info: dict[str, Any] = {"backend": getattr(model, "name", type(model).__name__)}

    # predict_batch = encode -> forward -> decode. The three are separate so a server can run only
    # ``forward`` (native code, GIL released) on its model thread and the Python-heavy encode and
    # decode on the callers' threads, overlapping them with the next batch's forward pass.
    def encode(self, alerts: list[Alert | Mapping[str, Any]]) -> tuple[list[Any], np.ndarray]:
        encs = [self.tok.encode(a) for a in alerts]
        return encs, np.array([e.ids for e in encs], dtype=np.int64)

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One batched ``model.predict`` (the early-halting loop included)."""
        out = self.model.predict(x, halt_threshold=self.halt_threshold)
        return {k: np.asarray(out[k]) for k in ("probs", "steps", "q_halt", "member_probs") if k in out}

    def decode(self, alerts: list[Alert | Mapping[str, Any]], encs: list[Any],
               out: Mapping[str, np.ndarray]) -> list[Prediction]:
        probs, steps, q = out["probs"], out["steps"].tolist(), out["q_halt"].tolist()
        preds = []
        fn_names = ["none"] + list(self.tok.space.functions)
        fn_cls = [0] + [self.tok.space.index(f"fn:{f}") for f in self.tok.space.functions]
        members = out.get("member_probs")  # [B, M, L, C] for an ensemble
        for b, (a, e, P, s, qh) in enumerate(zip(alerts, encs, probs, steps, q)):
            ans = self.tok.decode(P, a, e, members=None if members is None else members[b])
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

    def threshold(self, explicit: float | None = None) -> float:
        """The abstention threshold: ``explicit`` (an argument or TRM_THRESHOLD), else the one
        recorded at training time, else DEFAULT_THRESHOLD."""
        if explicit is not None:
            return float(explicit)
        return float(self.meta.get("threshold", DEFAULT_THRESHOLD))


def judge(alert: Alert | Mapping[str, Any], p: Prediction, threshold: float,
          decide_no_action: bool = True) -> Decision:
    """A confident, valid answer for a firing alert becomes the decision (method
    ``trm_recursive_reasoning``); anything else raises ``Abstain`` saying why."""
    status = alert.status if isinstance(alert, Alert) else str(alert.get("status", "firing"))
    if status != "firing":
        raise Abstain("alert is resolved: the TRM never proposes for resolved alerts")
    if p.decision is None:
        raise Abstain(f"invalid model output ({p.error})")
    if p.confidence < threshold:
        what = p.decision.lambda_function or "no action"
        raise Abstain(f"abstained ({what}: confidence {p.confidence:.2f} < {threshold:.2f})")
    if not p.decision.action and not decide_no_action:
        raise Abstain(f"model proposes no action (confidence {p.confidence:.2f})")
    return p.decision


# ---------------------------------------------------------------------------- loading


def load_predictor(model_dir: str | Path, *, backend: Backend = "auto", threads: int = 1, device: str = "cpu",
                   check_catalog: bool = True, halt_threshold: float = 0.0) -> Predictor:
    """Load an export for serving (see the module docstring). ``threads``: intra-op threads of the
    forward pass, for either backend (TORCH_THREADS, default 1: on a small node the HTTP workers need
    the other core). Raises ModelLoadError with the reason for anything unusable."""
    exp = artifact.read(model_dir)
    if "tokenizer" not in exp.extra:
        raise ModelLoadError(f"{exp.path}: export has no tokenizer vocabulary (extra.tokenizer)")
    try:
        tok = Tokenizer.from_dict(exp.extra["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{exp.path}: bad tokenizer vocabulary: {e}") from None
    want = exp.extra.get("catalog_hash")
    if check_catalog and want != catalog.catalog_hash():
        raise ModelLoadError(f"{exp.path}: model was trained for catalog {want}, this agent has "
                             f"{catalog.catalog_hash()}; retrain the model")
    cfg = exp.cfg
    if tuple(cfg.feature_vocab) != tok.feature_vocab or cfg.n_out != tok.space.n_out or cfg.seq_len != tok.seq_len:
        raise ModelLoadError(f"{exp.path}: model config does not fit its tokenizer (feature sizes / classes / length)")
    threads = max(1, int(threads))
    parts = [exp, *artifact.members(exp)]
    used, why = choose_backend(exp, backend, device)
    for m in parts[1:]:  # every member must run on the backend the first one runs on
        choose_backend(m, used, device)

    def backend_for(m: artifact.Exported) -> Any:
        if used == "onnx":
            from .onnx import OnnxTRM

            return OnnxTRM(m.path / artifact.GRAPH, cfg, threads=threads)
        return TorchTRM.load(m.path, device=device, threads=threads)

    model: Any = backend_for(exp) if len(parts) == 1 else EnsembleTRM([backend_for(m) for m in parts])
    pred = Predictor(model, tok, exp.extra, halt_threshold=halt_threshold)
    pred.info.update(backend=used, backend_note=why, threads=threads, model_dir=str(exp.path), members=len(parts),
                     parameters=exp.meta.get("parameters"), hidden=cfg.hidden, n_sup=cfg.n_sup, seq_len=cfg.seq_len)
    log.info("TRM from %s: backend %s (%s), %d thread(s)", exp.path, used, why, threads)
    return pred


def choose_backend(exp: artifact.Exported, backend: str, device: str = "cpu") -> tuple[str, str]:
    """(backend, why) for ``backend`` = auto | onnx | torch; raises ModelLoadError when the one
    asked for cannot run."""
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"TRM backend must be auto, onnx or torch, not {backend!r}")
    if backend == "torch":
        return "torch", "requested"
    blocked = None
    if device != "cpu":
        blocked = f"device {device}: ONNX Runtime runs the model on the CPU only"
    elif not exp.has_graph:
        blocked = f"{exp.path} has no {artifact.GRAPH} (re-export it: agent-sre train --export DIR)"
    elif importlib.util.find_spec("onnxruntime") is None:
        blocked = "onnxruntime is not installed"
    if blocked is None:
        from onnxruntime import __version__

        return "onnx", f"onnxruntime {__version__}"
    if backend == "onnx":
        raise ModelLoadError(f"TRM backend onnx unusable: {blocked}")
    return "torch", blocked


class TorchTRM:
    """The PyTorch backend: ``TRM.predict`` behind numpy in and out."""

    name = "torch"

    def __init__(self, model: Any):
        self.model = model
        self.cfg = model.cfg
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, model_dir: Path, *, device: str = "cpu", threads: int = 1) -> "TorchTRM":
        try:
            import torch

            from .checkpoint import load_exported
        except ImportError as e:
            raise ModelLoadError(f"the torch backend needs PyTorch, which is not installed ({e}); install "
                                 f"agent-sre[train], or serve an export that has {artifact.GRAPH}") from None

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"DEVICE={device} but this torch build has no CUDA device")
        torch.set_num_threads(threads)
        model, _, _ = load_exported(model_dir, device=device)
        return cls(model)

    def predict(self, x: np.ndarray, max_steps: int | None = None,
                halt_threshold: float = 0.0) -> dict[str, np.ndarray]:
        import torch

        xt = torch.from_numpy(np.asarray(x, dtype=np.int64)).to(self.device)
        out = self.model.predict(xt, max_steps=max_steps, halt_threshold=halt_threshold)
        return {k: v.cpu().numpy() for k, v in out.items()}


class EnsembleTRM:
    """Several models over the same token ids: each runs its own early-halting loop; the class
    probabilities are averaged (``probs``) and also returned per member (``member_probs``, for the
    least sure member's confidence in ``Tokenizer.decode``); a row's steps are the most any member
    used and its halting probability the lowest."""

    name = "ensemble"

    def __init__(self, members: list[Any]):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self.cfg = members[0].cfg

    def predict(self, x: np.ndarray, max_steps: int | None = None,
                halt_threshold: float = 0.0) -> dict[str, np.ndarray]:
        outs = [m.predict(x, max_steps=max_steps, halt_threshold=halt_threshold) for m in self.members]
        member_probs = np.stack([np.asarray(o["probs"]) for o in outs], axis=1)  # batch first, as every output
        return {"probs": member_probs.mean(axis=1), "member_probs": member_probs,
                "steps": np.max([np.asarray(o["steps"]) for o in outs], axis=0),
                "q_halt": np.min([np.asarray(o["q_halt"]) for o in outs], axis=0)}
