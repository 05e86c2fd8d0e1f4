"""Saving and loading TRM weights.

Two formats:
- training checkpoint (`checkpoint.pt`, torch pickle; written by train.py): everything needed to resume.
- export (`model.safetensors` + `config.json`): what serving loads. No pickle, so loading an export never
  executes code; config.json carries the model config, the caller's `extra` (tokenizer vocab, catalog hash,
  label space, ...) and the sha256 of the weights so a truncated/corrupted file is caught before use.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .model import TRM, TRMConfig

FORMAT = "agent-sre-trm"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ModelLoadError(RuntimeError):
    """An exported model directory is missing, incomplete, corrupt or inconsistent."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(model_or_ema_state: TRM | dict[str, torch.Tensor], cfg: TRMConfig, output_dir: str | Path,
           extra: dict[str, Any] | None = None) -> Path:
    """Write `model.safetensors` + `config.json` into output_dir; returns the directory."""
    state = model_or_ema_state.state_dict() if isinstance(model_or_ema_state, torch.nn.Module) \
        else model_or_ema_state
    extra = dict(extra or {})
    try:
        json.dumps(extra)
    except TypeError as e:
        raise ValueError(f"export extra must be JSON-serialisable: {e}") from e
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous, unshared CPU tensors.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    weights = out / WEIGHTS
    save_file(tensors, str(weights), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": cfg.to_dict(),
            "weights_sha256": _sha256(weights), "torch_version": torch.__version__, "extra": extra}
    tmp = out / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(out / CONFIG)  # config.json appears only once the weights it describes are complete
    return out


def load_exported(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TRM, TRMConfig, dict]:
    """Load an export; raises ModelLoadError with a specific reason for anything wrong."""
    d = Path(model_dir)
    cfg_path, w_path = d / CONFIG, d / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ModelLoadError(f"missing {p.name} in {d}")
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{cfg_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{cfg_path} is not an {FORMAT} export")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"unsupported export format_version {meta.get('format_version')!r}")
    try:
        cfg = TRMConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"bad model config in {cfg_path}: {e}") from e
    if meta.get("weights_sha256") != _sha256(w_path):
        raise ModelLoadError(f"{w_path} does not match the checksum in {CONFIG} (corrupt or replaced)")
    try:
        state = load_file(str(w_path))
    except Exception as e:  # safetensors raises its own error types for a malformed header/body
        raise ModelLoadError(f"cannot read {w_path}: {e}") from e
    model = TRM(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing/unexpected keys, shape mismatch
        raise ModelLoadError(f"weights in {w_path} do not fit the config: {e}") from e
    return model.to(device).eval(), cfg, meta.get("extra", {})


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
