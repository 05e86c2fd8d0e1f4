"""Stage 2: the Tiny Recursive Model, in process (MODEL_PATH or the packaged model) or remote
(TRM_API_URL, the trm-reasoning service). A missing or broken model never breaks the chain: the
stage abstains and says why."""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from importlib import resources
from pathlib import Path

from ..alerts import Alert
from ..decision import Decision, InvalidProposal, Method, validated
from .base import Abstain


def default_model_path() -> Path | None:
    env = os.environ.get("MODEL_PATH")
    if env:
        return Path(env)
    p = Path(str(resources.files("agent_sre") / "data" / "model"))
    return p if (p / "config.json").exists() else None


class TRMStage:
    """Loads the predictor on first use, so `select --strategy rules` never pays for torch.

    With ``api_url`` (default ``TRM_API_URL``) the stage asks the trm-reasoning service instead
    (``RemoteTRM``); the in-process path below is then unused."""

    name = "trm"

    def __new__(cls, model_path: Path | None = None, threshold: float | None = None, api_url: str | None = None):
        url = api_url if api_url is not None else os.environ.get("TRM_API_URL", "").strip()
        if url and cls is TRMStage:
            return RemoteTRM(url)
        return super().__new__(cls)

    def __init__(self, model_path: Path | None = None, threshold: float | None = None, api_url: str | None = None):
        self.model_path = model_path or default_model_path()
        self.threshold = threshold
        self._inner = None
        self._error: str | None = None
        self.backend: str | None = None
        self._batcher = _Batcher(self._forward, max_batch=int(os.environ.get("TRM_BATCH_MAX", "64")))

    def _load(self):
        if self._inner is not None or self._error is not None:
            return
        if self.model_path is None:
            self._error = "no TRM model (MODEL_PATH unset and none packaged)"
            return
        try:
            import torch

            # One intra-op thread: on a small node the agent's HTTP workers need the other core, and
            # on a shared 2-core machine two torch threads measured several times slower, not faster.
            torch.set_num_threads(max(1, int(os.environ.get("TORCH_THREADS", "1"))))
            from ..trm.infer import TRMStage as Inner

            kw = {} if self.threshold is None else {"threshold": self.threshold}
            self._inner = Inner.from_path(self.model_path, **kw)
            self.backend = _fastest_backend(self._inner)
        except Exception as e:  # a corrupt model must not take the agent down
            self._error = f"TRM model at {self.model_path} unusable: {e}"

    def warm(self) -> None:
        """Load the model now (the service calls this at start-up, so the first alert does not
        pay for loading torch and the weights inside its stage timeout)."""
        self._load()

    def __call__(self, alert: Alert) -> Decision:
        [r] = self.batch([alert])
        if isinstance(r, BaseException):
            raise r
        return r

    def batch(self, alerts: list[Alert]) -> list[Decision | Exception]:
        self._load()
        if self._inner is None:
            return [Abstain(self._error or "TRM unavailable") for _ in alerts]
        # Encode and decode here, on the caller's thread; only the forward pass goes to the model thread.
        return self._inner.batch(alerts, forward=self._batcher)

    def _forward(self, x):
        return self._inner.predictor.forward(x)


def _fastest_backend(inner) -> str:
    """ONNX Runtime when installed and its export agrees with PyTorch (faster on CPU: see
    bench/trm_latency.py), else PyTorch. TRM_BACKEND=torch forces PyTorch."""
    want = os.environ.get("TRM_BACKEND", "auto").strip().lower()
    if want == "torch" or getattr(inner.predictor, "device", None) is None or inner.predictor.device.type != "cpu":
        return "torch"
    try:
        from ..reasoning.onnx_backend import use_onnx

        use_onnx(inner.predictor, max(1, int(os.environ.get("TORCH_THREADS", "1"))))
        return "onnx"
    except Exception as e:  # noqa: BLE001 - PyTorch always works
        if want == "onnx":
            raise
        import logging

        logging.getLogger(__name__).info("TRM in-process backend: torch (%s)", e)
        return "torch"


class _Batcher:
    """One thread runs every forward pass; encoded batches that callers (HTTP requests on other
    threads) submit while it is busy are concatenated into the next pass, up to ``max_batch``
    alerts. An idle agent adds no wait; a burst costs a few batched passes instead of one pass per
    alert, and concurrent torch calls never fight over the two cores. Only the forward pass runs
    here: callers encode and decode on their own threads, so that Python work overlaps the model."""

    def __init__(self, fn, max_batch: int = 64):
        self.fn = fn
        self.max_batch = max_batch
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="trm-batcher", daemon=True).start()

    def __call__(self, x):
        fut: Future = Future()
        self.q.put((x, fut))
        return fut.result()

    def _run(self) -> None:
        import torch

        while True:
            items = [self.q.get()]
            n = len(items[0][0])
            while n < self.max_batch:
                try:
                    item = self.q.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                n += len(item[0])
            try:
                x = items[0][0] if len(items) == 1 else torch.cat([x for x, _ in items])
                out = self.fn(x)
            except BaseException as e:  # noqa: BLE001 - handed to every waiting caller
                for _, fut in items:
                    fut.set_exception(e)
                continue
            i = 0
            for x, fut in items:
                fut.set_result({k: v[i:i + len(x)] for k, v in out.items()})
                i += len(x)


# ---------------------------------------------------------------------------- remote (TRM_API_URL)


def _env_ms(name: str, default_ms: float) -> float:
    v = os.environ.get(name, "").strip()
    try:
        return (float(v) if v else default_ms) / 1000
    except ValueError:
        return default_ms / 1000


class RemoteTRM:
    """Stage ``trm`` backed by the trm-reasoning service: ``POST {TRM_API_URL}/v1/decide`` (one alert) or
    ``/v1/decide/batch``. The service's answer is validated again here against the catalog: nothing
    from the wire is trusted. Service down → ``Abstain("service unreachable ...")``; slow → abstain with
    the timeout (``TRM_TIMEOUT_MS``, default 2000; connect ``TRM_CONNECT_TIMEOUT_MS``, default 500)."""

    name = "trm"

    def __init__(self, url: str, timeout_s: float | None = None, connect_timeout_s: float | None = None,
                 transport=None):
        import httpx

        self.url = url.rstrip("/")
        self.http_timeout_s = timeout_s if timeout_s is not None else _env_ms("TRM_TIMEOUT_MS", 2000)
        connect = connect_timeout_s if connect_timeout_s is not None else _env_ms("TRM_CONNECT_TIMEOUT_MS", 500)
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
