"""Stage 2: the Tiny Recursive Model, in process (MODEL_PATH or the packaged model) or remote
(TRM_API_URL, the trm-reasoning service). A missing or broken model never breaks the chain: the
stage abstains and says why."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..alerts import Alert
from ..decision import Decision
from .base import Abstain


def default_model_path() -> Path | None:
    env = os.environ.get("MODEL_PATH")
    if env:
        return Path(env)
    p = Path(str(resources.files("agent_sre") / "data" / "model"))
    return p if (p / "config.json").exists() else None


class TRMStage:
    """Loads the predictor on first use, so `select --strategy rules` never pays for torch."""

    name = "trm"

    def __init__(self, model_path: Path | None = None, threshold: float | None = None):
        self.model_path = model_path or default_model_path()
        self.threshold = threshold
        self._inner = None
        self._error: str | None = None

    def _load(self):
        if self._inner is not None or self._error is not None:
            return
        if self.model_path is None:
            self._error = "no TRM model (MODEL_PATH unset and none packaged)"
            return
        try:
            from ..trm.infer import TRMStage as Inner

            kw = {} if self.threshold is None else {"threshold": self.threshold}
            self._inner = Inner.from_path(self.model_path, **kw)
        except Exception as e:  # a corrupt model must not take the agent down
            self._error = f"TRM model at {self.model_path} unusable: {e}"

    def __call__(self, alert: Alert) -> Decision:
        self._load()
        if self._inner is None:
            raise Abstain(self._error or "TRM unavailable")
        return self._inner(alert)

    def batch(self, alerts: list[Alert]) -> list[Decision | Exception]:
        self._load()
        if self._inner is None:
            return [Abstain(self._error or "TRM unavailable") for _ in alerts]
        if hasattr(self._inner, "batch"):
            return self._inner.batch(alerts)
        out: list[Decision | Exception] = []
        for a in alerts:
            try:
                out.append(self._inner(a))
            except Exception as e:
                out.append(e)
        return out
