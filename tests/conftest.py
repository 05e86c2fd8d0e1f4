"""Fixtures shared by more than one test package."""

from __future__ import annotations

import pytest

from tests.functions.kcluster import Cluster


@pytest.fixture
def cluster(tmp_path):
    """KMock behind a real kubeconfig (tests/functions/kcluster.py); closed after the test."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
