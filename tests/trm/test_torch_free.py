"""The serving path runs without PyTorch: in a fresh interpreter where ``import torch`` fails (as in
the runtime image, which does not install it), `select`, `demo`, the agent's service with its TRM
warmed, trm-reasoning and the functions' service all work, and torch never enters sys.modules.
Asking for the torch backend there fails with a reason, not a crash."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Any import of torch (or a submodule) fails, as it would where torch is not installed.
NO_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked: the runtime has no torch)")
            return None

    sys.meta_path.insert(0, NoTorch())
""")

# A crash loop under a name the runbook does not know, so the TRM (not the runbook) decides it.
CRASH = {"status": "firing", "labels": {"alertname": "CrashLoopBackOffDetected", "namespace": "media",
                                        "pod": "jellyfin-5c8d9-abcde", "container": "jellyfin", "severity": "warning"},
         "annotations": {"summary": "Pod media/jellyfin-5c8d9-abcde is crash looping"}}


def run(code: str, env: dict[str, str] | None = None) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("TRM_API_URL", "LLM_URL", "TRM_BACKEND", "MODEL_PATH")}
    e.update({"PYTHONPATH": str(SRC), **(env or {})})
    p = subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                       env=e, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_select_and_the_chain_stage_run_on_onnx_runtime_without_torch():
    out = run(f"""
        import contextlib, io, json, sys
        from agent_sre.chain.chain import Chain
        from agent_sre.alerts import parse_payload
        from agent_sre.cli import app

        chain = Chain()
        trm = next(s for s in chain.stages if s.name == "trm")
        d = chain.decide(parse_payload({CRASH!r})[0])
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                app(["select", {json.dumps(CRASH)!r}], standalone_mode=False)
            except SystemExit:
                pass
        line = json.loads(buf.getvalue().splitlines()[-1])
        print(json.dumps({{"backend": trm.backend, "method": d.method.value, "fn": d.lambda_function,
                          "select": line["method"], "torch": "torch" in sys.modules}}))
    """)
    assert out == {"backend": "onnx", "method": "trm_recursive_reasoning", "fn": "pod-restart",
                   "select": "trm_recursive_reasoning", "torch": False}


def test_services_and_demo_start_without_torch(tmp_path):
    out = run("""
        import contextlib, io, json, sys
        from fastapi.testclient import TestClient
        from agent_sre.demo import run_demo
        from agent_sre.functions.app import create_app as functions_app
        from agent_sre.reasoning.service import create_app as reasoning_app
        from agent_sre.server import app_from_env

        codes = {}
        for name, make in (("serve", app_from_env), ("serve-reasoning", reasoning_app),
                           ("serve-function", lambda: functions_app(trust=None, dry_run_only=True))):
            with TestClient(make()) as c:  # start-up runs: the agent warms its TRM stage
                r = c.get("/readyz")
                codes[name] = [r.status_code, r.json().get("stages") or r.json().get("model", {}).get("backend")]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            run_demo(None, json_out=True)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("{")]
        methods = sorted({json.loads(ln)["decision"]["method"] for ln in lines})
        print(json.dumps({"codes": codes, "demo": methods, "torch": "torch" in sys.modules}))
    """, env={"STATE_DIR": str(tmp_path)})
    assert out["codes"]["serve"] == [200, ["annotations", "rules", "trm"]]  # no LLM stage without LLM_URL
    assert out["codes"]["serve-reasoning"] == [200, "onnx"]
    assert out["codes"]["serve-function"][0] == 200
    assert "trm_recursive_reasoning" in out["demo"]
    assert out["torch"] is False


def test_torch_backend_without_torch_abstains_with_the_reason(tmp_path):
    out = run("""
        import json, sys
        from agent_sre.chain.trm import TRMStage
        from agent_sre.alerts import Alert
        from agent_sre.decision import Abstain

        try:
            TRMStage()(Alert(labels={"alertname": "KubePodCrashLooping"}))
            why = None
        except Abstain as e:
            why = str(e)
        print(json.dumps({"why": why, "torch": "torch" in sys.modules}))
    """, env={"TRM_BACKEND": "torch"})
    assert "needs PyTorch, which is not installed" in out["why"] and out["torch"] is False
