"""Stage 3: the Tiny Recursive Model, in process (``TRMStage``: MODEL_PATH or the packaged model)
or behind the trm-reasoning service (``RemoteTRM``: TRM_API_URL). ``chain.build_stages`` picks one.
A missing or broken model never breaks the chain: the stage abstains and says why."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..alerts import Alert
from ..batching import Batcher
from ..decision import Abstain, Decision, InvalidProposal, Method, validated
from ..settings import TRMSettings, load
from ..trm.infer import Predictor, judge, load_predictor, packaged_model

log = logging.getLogger(__name__)


class TRMStage:
    """The in-process TRM: ``judge`` on the predictor's answers (``trm.infer``).

    The model loads on first use (or ``warm()``, which the agent calls at start-up), so
    ``select --strategy rules`` never pays for it; a model that cannot load makes every call abstain
    with the loader's reason. Settings (``TRMSettings``): MODEL_PATH, TRM_THRESHOLD, TRM_BACKEND,
    TORCH_THREADS, DEVICE, TRM_BATCH_MAX.

    Threads: ``batch`` encodes and decodes on the caller's thread; only the forward pass goes to the
    stage's one model thread (a ``Batcher``), which merges the encoded batches of concurrent callers
    into one pass of up to TRM_BATCH_MAX alerts."""

    name = "trm"

    def __init__(self, model_path: Path | None = None, threshold: float | None = None, *,
                 predictor: Predictor | None = None, decide_no_action: bool = True):
        s = load(TRMSettings)
        self.settings = s
        self.model_path = model_path or s.model_path or packaged_model()
        self._threshold = threshold if threshold is not None else s.trm_threshold
        self.decide_no_action = decide_no_action
        self.predictor = predictor
        self.threshold = predictor.threshold(self._threshold) if predictor is not None else self._threshold
        self._error: str | None = None
        self._lock = threading.Lock()  # two intake calls may ask for the model at once
        self._model_thread: Batcher = Batcher(self._forward, max_size=s.trm_batch_max, name="trm-batcher")

    @classmethod
    def from_path(cls, model_dir: str | Path, threshold: float | None = None, **kw) -> "TRMStage":
        """Load now; raises ModelLoadError when the model is unusable."""
        stage = cls(Path(model_dir), threshold, **kw)
        stage._load(raise_errors=True)
        return stage

    @property
    def backend(self) -> str | None:
        return self.predictor.info.get("backend") if self.predictor is not None else None

    def _load(self, raise_errors: bool = False) -> None:
        if self.predictor is not None or self._error is not None:
            return
        with self._lock:
            self._load_once(raise_errors)

    def _load_once(self, raise_errors: bool) -> None:
        if self.predictor is not None or self._error is not None:
            return
        if self.model_path is None:
            self._error = "no TRM model (MODEL_PATH unset and none packaged)"
            return
        s = self.settings
        try:
            pred = load_predictor(self.model_path, backend=s.trm_backend, threads=s.torch_threads, device=s.device)
        except Exception as e:  # noqa: BLE001 - a corrupt model must not take the agent down
            if raise_errors:
                raise
            self._error = f"TRM model at {self.model_path} unusable: {e}"
            log.error("%s", self._error)
            return
        self.threshold = pred.threshold(self._threshold)
        self.predictor = pred  # last: other threads use the stage once this is set

    def warm(self) -> None:
        """Load the model now, so the first alert does not pay for it inside its time budget."""
        self._load()

    def __call__(self, alert: Alert) -> Decision:
        [r] = self.batch([alert])
        if isinstance(r, BaseException):
            raise r
        return r

    def batch(self, alerts: list[Alert]) -> list[Decision | Exception]:
        self._load()
        if self.predictor is None:
            return [Abstain(self._error or "TRM unavailable") for _ in alerts]
        out: list[Decision | Exception] = []
        # At most TRM_BATCH_MAX alerts per pass: the model's outputs (a probability per position and
        # vocabulary entry) grow with the batch, so a huge request must not become one huge pass.
        step = self.settings.trm_batch_max
        for i in range(0, len(alerts), step):
            chunk = alerts[i:i + step]
            encs, x = self.predictor.encode(chunk)
            preds = self.predictor.decode(chunk, encs, self._model_thread(x))
            for a, p in zip(chunk, preds):
                try:
                    out.append(judge(a, p, self.threshold, self.decide_no_action))
                except Abstain as e:
                    out.append(e)
        return out

    def _forward(self, xs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """On the model thread: one forward pass for the callers' encoded batches, split back."""
        assert self.predictor is not None
        out = self.predictor.forward(xs[0] if len(xs) == 1 else np.concatenate(xs))
        res, i = [], 0
        for x in xs:
            res.append({k: v[i:i + len(x)] for k, v in out.items()})
            i += len(x)
        return res


# ---------------------------------------------------------------------------- remote (TRM_API_URL)


class RemoteTRM:
    """Stage ``trm`` backed by the trm-reasoning service: ``POST {TRM_API_URL}/v1/decide`` (one alert) or
    ``/v1/decide/batch``. The service's answer is validated again here against the catalog: nothing
    from the wire is trusted. Service down → ``Abstain("service unreachable ...")``; slow → abstain with
    the timeout (``TRM_TIMEOUT_MS``, default 2000; connect ``TRM_CONNECT_TIMEOUT_MS``, default 500)."""

    name = "trm"

    def __init__(self, url: str, timeout_s: float | None = None, connect_timeout_s: float | None = None,
                 transport=None):
        import httpx

        s = load(TRMSettings)
        self.url = url.rstrip("/")
        self.http_timeout_s = timeout_s if timeout_s is not None else s.trm_timeout_ms / 1000
        connect = connect_timeout_s if connect_timeout_s is not None else s.trm_connect_timeout_ms / 1000
        connect = min(connect, self.http_timeout_s)
        # The chain's budget for this stage: the HTTP timeouts fire first and say what happened.
        self.timeout_s = connect + self.http_timeout_s + 0.25
        self._httpx = httpx
        self._http = httpx.Client(timeout=httpx.Timeout(self.http_timeout_s, connect=connect), transport=transport)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, payload) -> object:
        httpx = self._httpx
        try:
            r = self._http.post(self.url + path, json=payload)
        except httpx.TimeoutException as e:
            raise Abstain(f"service timed out after {self.http_timeout_s * 1000:.0f} ms ({type(e).__name__}) "
                          f"at {self.url}") from None
        except httpx.HTTPError as e:
            raise Abstain(f"service unreachable at {self.url} ({type(e).__name__}: {e})") from None
        if r.status_code != 200:
            try:
                why = r.json().get("error", r.text)
            except ValueError:
                why = r.text
            raise Abstain(f"service answered HTTP {r.status_code}: {str(why)[:200]}")
        try:
            return r.json()
        except ValueError:
            raise Abstain(f"service answered non-JSON: {r.text[:120]!r}") from None

    @staticmethod
    def _payload(alert: Alert) -> dict:
        return alert.model_dump(mode="json", exclude_none=True)

    @staticmethod
    def _decision(doc: object) -> Decision | Exception:
        if not isinstance(doc, dict):
            return Abstain("service answered a non-object decision")
        if doc.get("abstained"):
            return Abstain(str(doc.get("reason") or "service abstained"))
        fn = doc.get("lambda_function")
        conf = float(doc.get("confidence") or 0.0)
        iters = doc.get("iterations")
        if fn in (None, ""):
            return Decision(lambda_function=None, reasoning=str(doc.get("reasoning") or "trm: no remediation"),
                            confidence=min(max(conf, 0.0), 1.0), method=Method.TRM, iterations=iters)
        plan = [dict(s) for s in doc.get("plan") or [] if isinstance(s, dict)]
        try:
            return validated(fn, doc.get("parameters") or {}, method=Method.TRM,
                             reasoning=str(doc.get("reasoning") or ""), confidence=conf, plan=plan or None,
                             iterations=iters if isinstance(iters, int) else None)
        except InvalidProposal as e:
            return e
        except (TypeError, ValueError) as e:
            return InvalidProposal(f"service answer malformed: {e}")

    def __call__(self, alert: Alert) -> Decision:
        r = self._decision(self._post("/v1/decide", self._payload(alert)))
        if isinstance(r, Exception):
            raise r
        return r

    def batch(self, alerts: list[Alert]) -> list[Decision | Exception]:
        try:
            doc = self._post("/v1/decide/batch", [self._payload(a) for a in alerts])
        except Abstain as e:
            return [e] * len(alerts)
        docs = doc.get("decisions") if isinstance(doc, dict) else None
        if not isinstance(docs, list) or len(docs) != len(alerts):
            return [Abstain("service answered a batch of the wrong size")] * len(alerts)
        return [self._decision(d) for d in docs]
