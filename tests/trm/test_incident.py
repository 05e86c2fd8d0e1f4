"""The incident formulation of the TRM: grid, truth, a short training run, and the model as a
correlator the desk can use."""

from __future__ import annotations

import random

import torch

from agent_sre.alerts import Alert
from agent_sre.incidents import scenarios as S
from agent_sre.incidents.evidence import facts
from agent_sre.trm import incident as I
from agent_sre.trm.model import IGNORE_INDEX


def _facts(scn):
    return [facts(Alert.model_validate(a.alert_doc())) for a in scn.alerts]


def test_entities_are_local_to_a_grid_and_match_across_alerts():
    scn = S.generate("node", 2)  # every pod labelled with the node
    x, slots = I.encode(_facts(scn))
    assert x.shape == (I.L, len(I.FEATURES)) and slots == [a.fingerprint for a in scn.alerts]
    node_ent = int(x[0, 2])  # the node alert's own entity
    pod_ptrs = [int(x[i * I.P + 1, 2]) for i in range(1, len(slots)) if int(x[i * I.P + 1, 0]) == I.SEG_NODE]
    assert pod_ptrs and set(pod_ptrs) == {node_ent}
    # shuffled ids (training): same structure, other numbers
    y, _ = I.encode(_facts(scn), random.Random(3))
    assert (y[:, 2] == 0).tolist() == (x[:, 2] == 0).tolist() and not torch.equal(x[:, 2], y[:, 2])
    for c, v in enumerate(I.FEATURES):
        assert int(x[:, c].max()) < v


def test_truth_labels_follow_the_first_firing_cause():
    scn = S.generate("gitrepo", 1)
    root = next(a for a in scn.alerts if a.truth == "root")
    x, y = I.example(scn.alerts, None)
    labels = [int(y[i * I.P]) for i in range(len(scn.alerts))]
    slot = scn.alerts.index(root)
    assert labels[slot] == I.ACT
    assert all(lab == I.SYM + slot for i, lab in enumerate(labels) if i != slot and scn.alerts[i].cause is root)
    # without the root in view, its symptoms are decided on their own
    _, y2 = I.example([a for a in scn.alerts if a is not root], None)
    assert {int(v) for v in y2[y2 != IGNORE_INDEX]} <= {I.ACT} | {I.SYM + k for k in range(I.K)}
    rollout = S.generate("rollout", 1)  # no Deployment alert: the earliest pod leads
    _, y3 = I.example(rollout.alerts, None)
    assert int((y3 == I.LEAD).sum()) == 1


def test_a_short_training_run_gives_a_correlator_the_desk_can_use(tmp_path):
    m = I.train_incident(tmp_path / "run", n_storms=12, max_steps=4, epochs=1, progress=False, threads=1,
                         preset="tiny")
    assert m["steps"] == 4 and (tmp_path / "run" / "checkpoint.pt").is_file()
    corr = I.TRMCorrelator.load(tmp_path / "run")
    scn = S.generate("helmrepo", 0)
    roles = corr(_facts(scn))
    assert set(roles) == {a.fingerprint for a in scn.alerts}
    assert {r.role for r in roles.values()} <= {"alone", "root", "lead", "symptom"}
    for r in roles.values():
        if r.role == "symptom":
            assert r.root in roles and roles[r.root].role != "symptom"
