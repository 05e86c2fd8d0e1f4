from __future__ import annotations

import datetime as dt

import pytest

from agent_sre.functions.kube import load_api_client
from agent_sre.settings import FunctionSettings
from agent_sre.functions.runner import Runner
from agent_sre.functions.store import MemoryStore


NOW = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)



@pytest.fixture
def settings():
    return FunctionSettings(dry_run=False, flux_wait_seconds=2.0, flux_poll_seconds=0.02, verify_wait_seconds=0.3,
                            verify_poll_seconds=0.02)


@pytest.fixture
def runner(cluster, settings):
    """A runner wired to the KMock cluster through a real kubeconfig, with a frozen clock."""
    return Runner(settings, api_client=load_api_client(cluster.kubeconfig), store=MemoryStore(), clock=lambda: NOW)


@pytest.fixture
def offline_runner():
    return Runner(FunctionSettings(dry_run=True), api_client=None, store=MemoryStore(), clock=lambda: NOW)
