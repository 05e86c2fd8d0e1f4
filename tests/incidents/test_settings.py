"""The incident settings fail closed and build the desk the agent uses."""

import pytest

from agent_sre.chain.chain import Chain
from agent_sre.server import agent_from_env
from agent_sre.settings import SettingsError

NO_STAGES = Chain([])


def test_defaults_build_a_desk(tmp_path):
    agent = agent_from_env({"STATE_DIR": str(tmp_path)}, chain=NO_STAGES)
    assert agent.incidents is not None and agent.incidents.settle_s == 10.0 and agent.incidents.release_s == 30.0
    assert agent.incidents.cluster is None and agent.feeds == []


def test_off_and_tuned(tmp_path):
    assert agent_from_env({"STATE_DIR": str(tmp_path), "INCIDENTS": "off"}, chain=NO_STAGES).incidents is None
    agent = agent_from_env({"STATE_DIR": str(tmp_path), "INCIDENT_SETTLE_SECONDS": "45",
                            "ALERTMANAGER_URL": "http://127.0.0.1:9093"}, chain=NO_STAGES)
    assert agent.incidents.settle_s == 45.0 and len(agent.feeds) == 1


@pytest.mark.parametrize("env,var", [({"INCIDENTS": "maybe"}, "INCIDENTS"),
                                     ({"INCIDENT_SETTLE_SECONDS": "-1"}, "INCIDENT_SETTLE_SECONDS"),
                                     ({"INCIDENT_RELEASE_SECONDS": "soon"}, "INCIDENT_RELEASE_SECONDS"),
                                     ({"ALERTMANAGER_POLL_SECONDS": "0"}, "ALERTMANAGER_POLL_SECONDS")])
def test_bad_values_stop_the_agent_naming_the_setting(tmp_path, env, var):
    with pytest.raises(SettingsError, match=var):
        agent_from_env({"STATE_DIR": str(tmp_path), **env}, chain=NO_STAGES)


def test_confirming_with_the_cluster_needs_one(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SettingsError, match="INCIDENT_KUBE"):
        agent_from_env({"STATE_DIR": str(tmp_path), "INCIDENT_KUBE": "true"}, chain=NO_STAGES)
