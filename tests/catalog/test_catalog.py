import pytest

from agent_sre import catalog
from agent_sre.decision import InvalidProposal, Method, validated

SEED = ["flux-reconcile-kustomization", "flux-reconcile-gitrepository", "flux-reconcile-helmrelease",
        "pod-restart", "pod-check-status", "check-pvc-status"]


def test_catalog_holds_the_seed_functions_with_risk_and_schema():
    assert catalog.function_names() == SEED
    assert catalog.get("pod-restart").mutating
    assert not catalog.get("check-pvc-status").mutating
    assert not catalog.get("pod-check-status").mutating
    schema = catalog.get("pod-restart").json_schema()
    assert schema["properties"]["type"]["enum"] == ["pod", "deployment", "statefulset", "daemonset"]
    assert set(catalog.get("check-pvc-status").required_parameters()) == {"name", "namespace"}


def test_tool_schema_carries_enum_in_description_too():
    tool = catalog.get("pod-restart").tool_schema()
    t = tool["function"]["parameters"]["properties"]["type"]
    assert t["enum"] == ["pod", "deployment", "statefulset", "daemonset"]
    assert "deployment" in t["description"]
    assert tool["function"]["parameters"]["required"] == ["name", "namespace"]
    assert len(catalog.tool_schemas()) == len(SEED)


@pytest.mark.parametrize("fn,params,why", [
    ("pod-restart", {"name": "Bad Name", "namespace": "apps"}, "name"),
    ("pod-restart", {"name": "web", "namespace": "apps", "type": "cronjob"}, "type"),
    ("pod-restart", {"name": "web"}, "namespace"),
    ("check-pvc-status", {"name": "data", "namespace": "apps", "size": "10Gi"}, "size"),
    ("pod-check-status", {"namespace": "apps", "name": "a", "selector": "app=a"}, "either"),
    ("pod-check-status", {"namespace": "apps", "selector": "app in (a b"}, "selector"),
    ("reboot-node", {"name": "n1"}, "unknown"),
])
def test_invalid_proposals_are_refused_with_a_reason(fn, params, why):
    with pytest.raises(InvalidProposal) as e:
        validated(fn, params, method=Method.TRM)
    assert why in str(e.value)


def test_valid_proposal_is_normalised():
    d = validated("pod-restart", {"name": "web-1", "namespace": "apps"}, method=Method.RULES, confidence=0.9)
    assert d.parameters == {"name": "web-1", "namespace": "apps", "type": "pod"}
    assert d.plan[0].lambda_function == "pod-restart"


def test_catalog_hash_is_stable():
    assert catalog.catalog_hash() == catalog.catalog_hash()
    assert len(catalog.catalog_hash()) == 16
