"""Real exports for tests and benchmarks: an untrained TRM at a preset's shape, with a tokenizer built
from generated alerts so inputs are realistic; and sample alerts from the same generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_sre import catalog


def random_export(out_dir: str | Path, preset: str = "tiny", *, seed: int = 0, n_alerts: int = 1500,
                  **overrides: Any) -> Path:
    """Export (weights, ONNX graph, config) an untrained TRM at ``preset`` (``tiny`` | ``cpu`` | ``paper``)
    that ``load_predictor`` accepts."""
    import torch

    from agent_sre.trm.checkpoint import export
    from agent_sre.trm.generator import generate
    from agent_sre.trm.encoding import Tokenizer, default_priority_keys
    from agent_sre.trm.model import TRM, TRMConfig

    recs = generate(n=n_alerts, seed=seed)
    tok = Tokenizer.build([r["alert"] for r in recs], priority_keys=default_priority_keys())
    cfg = TRMConfig.preset(preset, seq_len=tok.seq_len, feature_vocab=tok.feature_vocab, n_out=tok.space.n_out,
                           **overrides)
    torch.manual_seed(seed)
    model = TRM(cfg)
    return export(model, cfg, out_dir, extra={"tokenizer": tok.to_dict(), "catalog_hash": catalog.catalog_hash(),
                                              "trained": False, "preset": preset})


def sample_alerts(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` realistic firing alerts (dicts) from the dataset generator."""
    from agent_sre.trm.generator import generate

    out = []
    for r in generate(n=max(n * 2, 10), seed=seed):
        a = r["alert"]
        if a.get("status", "firing") == "firing":
            out.append(a)
        if len(out) == n:
            break
    return out
