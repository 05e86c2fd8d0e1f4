"""Tiny Recursive Model: the paper's model (model.py), a generic deep-supervision trainer (train.py),
and save/export/load (checkpoint.py). Alert encoding/dataset/inference live in sibling modules."""
from .checkpoint import ModelLoadError, export, load_exported
from .model import IGNORE_INDEX, TRM, TRMConfig, count_parameters

__all__ = ["IGNORE_INDEX", "TRM", "TRMConfig", "count_parameters", "ModelLoadError", "export",
           "load_exported"]
