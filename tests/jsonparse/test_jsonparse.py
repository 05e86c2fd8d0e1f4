import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sre.jsonparse import NoJSONFound, extract_json, extract_objects

DECISION = {"lambda_function": "pod-restart", "parameters": {"name": "web-1", "namespace": "apps"},
            "reasoning": "it's crash looping"}


@pytest.mark.parametrize("text", [
    json.dumps(DECISION),
    "```json\n" + json.dumps(DECISION, indent=2) + "\n```",
    "Sure! Here is the decision:\n" + json.dumps(DECISION) + "\nLet me know if you need more.",
    "{'lambda_function': 'pod-restart', 'parameters': {'name': 'web-1', 'namespace': 'apps'},"
    " 'reasoning': \"it's crash looping\"}",
    '{"lambda_function": "pod-restart", "parameters": {"name": "web-1", "namespace": "apps",},'
    ' "reasoning": "it\'s crash looping",}',
    'thinking {"step": 1} then {"lambda_function": "pod-restart", "parameters": {"name": "web-1",'
    ' "namespace": "apps"}, "reasoning": "it\'s crash looping"}',
])
def test_decision_is_found_in_messy_text(text):
    got = extract_json(text)
    assert got["lambda_function"] == "pod-restart"
    assert got["parameters"] == {"name": "web-1", "namespace": "apps"}


def test_python_literals_and_several_candidates():
    objs = extract_objects("a {'x': True, 'y': None} b {\"z\": [1, 2,]}")
    assert objs == [{"x": True, "y": None}, {"z": [1, 2]}]


@pytest.mark.parametrize("text", ["", "no json here", "{unclosed", "[1, 2, 3]", "{{{{"])
def test_no_object_raises(text):
    with pytest.raises(NoJSONFound):
        extract_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4),
       before=st.text(alphabet=st.characters(blacklist_characters="{}'\"`"), max_size=30),
       after=st.text(alphabet=st.characters(blacklist_characters="{}'\"`"), max_size=30),
       fenced=st.booleans(), indent=st.sampled_from([None, 2]))
def test_any_object_embedded_in_prose_round_trips(obj, before, after, fenced, indent):
    body = json.dumps(obj, indent=indent)
    if fenced:
        body = f"```json\n{body}\n```"
    assert extract_json(f"{before}{body}{after}", prefer_key=None) == obj


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text):
    try:
        out = extract_json(text)
    except NoJSONFound:
        return
    assert isinstance(out, dict)
