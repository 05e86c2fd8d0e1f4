"""Saving and loading TRM weights with PyTorch.

Two formats:
- training checkpoint (`checkpoint.pt`, torch pickle; written by train.py): everything needed to resume.
- export (`artifact.py`: `config.json` + `model.safetensors` + `model.onnx`): what serving loads. No
  pickle, so loading an export never executes code; `export` writes the ONNX graph beside the weights
  and checks it against this model before `config.json`, which records every file's checksum, appears.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import artifact, onnx
from .artifact import CONFIG, FORMAT, GRAPH, WEIGHTS, ModelLoadError
from .model import TRM, TRMConfig, count_parameters

__all__ = ["CONFIG", "GRAPH", "WEIGHTS", "ModelLoadError", "export", "load_exported", "load_checkpoint",
           "model_from_checkpoint"]


def export(model_or_ema_state: TRM | dict[str, torch.Tensor], cfg: TRMConfig, output_dir: str | Path,
           extra: dict[str, Any] | None = None) -> Path:
    """Write `model.safetensors`, `model.onnx` (checked against the weights: ``onnx.export``) and
    `config.json` into output_dir; returns the directory."""
    extra = dict(extra or {})
    try:
        json.dumps(extra)
    except TypeError as e:
        raise ValueError(f"export extra must be JSON-serialisable: {e}") from e
    if isinstance(model_or_ema_state, torch.nn.Module):
        model = model_or_ema_state
    else:
        model = TRM(cfg)
        model.load_state_dict(model_or_ema_state, strict=True)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous, unshared CPU tensors.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(out / WEIGHTS), metadata={"format": FORMAT})
    onnx.export(model, out / GRAPH)
    artifact.write_config(out, cfg, extra, weights_sha256=artifact.sha256(out / WEIGHTS),
                          onnx_sha256=artifact.sha256(out / GRAPH), parameters=count_parameters(model),
                          torch_version=torch.__version__)
    return out


def load_exported(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TRM, TRMConfig, dict]:
    """Load an export's weights into a PyTorch model; raises ModelLoadError with a specific reason."""
    exp = artifact.read(model_dir)
    w_path = exp.path / WEIGHTS
    try:
        state = load_file(str(w_path))
    except Exception as e:  # safetensors raises its own error types for a malformed header/body
        raise ModelLoadError(f"cannot read {w_path}: {e}") from e
    model = TRM(exp.cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing/unexpected keys, shape mismatch
        raise ModelLoadError(f"weights in {w_path} do not fit the config: {e}") from e
    return model.to(device).eval(), exp.cfg, exp.extra


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint written by train.py (trusted, local: it holds optimizer/RNG state)."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"missing training checkpoint {p}")
    try:
        return torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:
        raise ModelLoadError(f"cannot read training checkpoint {p}: {e}") from e


def model_from_checkpoint(path: str | Path, use_ema: bool = True,
                          map_location: str | torch.device = "cpu") -> tuple[TRM, TRMConfig]:
    """The (EMA by default) model from a training checkpoint, ready for evaluate/export."""
    ck = load_checkpoint(path, map_location)
    cfg = TRMConfig.from_dict(ck["model_config"])
    model = TRM(cfg)
    model.load_state_dict(ck["ema"] if use_ema else ck["model"])
    return model.eval(), cfg
