import shutil

import pytest

from testsupport.models import random_export


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A real exported TRM (untrained, tiny preset, ONNX graph included) that load_predictor accepts."""
    return random_export(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0, n_alerts=600)


@pytest.fixture()
def model_copy(tiny_model, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(tiny_model, d)
    return d
