"""The early-halting loop (``halting.act``) on its own: which rows run, when each stops, what it keeps."""
from __future__ import annotations

import numpy as np

from agent_sre.trm.halting import act, real_length


class Scripted:
    """A backend step whose halting logit per row and step is scripted; records which rows ran."""

    def __init__(self, q: np.ndarray, n_out: int = 3, length: int = 2):
        self.q = q  # [rows, steps]
        self.n_out, self.length = n_out, length
        self.rows = np.arange(len(q))
        self.calls: list[list[int]] = []

    def __call__(self, running):
        if running is not None:
            self.rows = self.rows[running]
        s = len(self.calls)
        self.calls.append(self.rows.tolist())
        logits = np.zeros((len(self.rows), self.length, self.n_out), dtype=np.float32)
        logits[:, :, 0] = self.rows[:, None] * 10 + s  # says which row and step produced it
        return logits, self.q[self.rows, s].astype(np.float32)


def test_rows_halt_at_their_own_step_and_are_not_computed_again():
    q = np.array([[1.0, 1, 1, 1],      # halts at step 1
                  [-1, 2.0, 1, 1],     # step 2
                  [-1, -1, -1, -1],    # never halts: stops at the last step
                  [-1, -1, 3.0, 1]])   # step 3
    step = Scripted(q)
    out = act(step, 4, length=2, width=5, n_out=3, max_steps=4)
    assert out["steps"].tolist() == [1, 2, 4, 3]
    assert step.calls == [[0, 1, 2, 3], [1, 2, 3], [2, 3], [2]]
    for row, s in enumerate(out["steps"]):  # each row keeps the answer of its halting step
        v = row * 10 + (s - 1)
        assert np.allclose(out["probs"][row, :2, 0], np.exp(v) / (np.exp(v) + 2), atol=1e-6)
        assert np.isclose(out["q_halt"][row], 1 / (1 + np.exp(-q[row, s - 1])))
    assert np.all(out["probs"][:, 2:] == 0)  # columns past the computed length stay empty


def test_threshold_and_step_cap():
    q = np.array([[0.5, 0.5, 0.5], [2.0, 2.0, 2.0]])
    assert act(Scripted(q), 2, length=2, width=2, n_out=3, max_steps=3)["steps"].tolist() == [1, 1]
    assert act(Scripted(q), 2, length=2, width=2, n_out=3, max_steps=3, halt_threshold=1.0)["steps"].tolist() == [3, 1]
    assert act(Scripted(q), 2, length=2, width=2, n_out=3, max_steps=2, halt_threshold=9.0)["steps"].tolist() == [2, 2]


def test_real_length():
    x = np.zeros((2, 6, 3), dtype=np.int64)
    assert real_length(x) == 1
    x[0, :2] = 1
    x[1, 4, 2] = 5
    assert real_length(x) == 5
