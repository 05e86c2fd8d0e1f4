"""verify + learn: the closed loop after a remediation.

    intake → decide → gate → act → verify → learn
                        ↑                 │
                        └── autonomy ─────┘

* ``verify``    did it work? the target (reported by the function) and the alert (its decay
                window, ``window``); re-fires inside the window are suppressed;
* ``outcomes``  the ledger per alert class (``store``: SQLite or Redis, beside the gate's state);
* ``autonomy``  each class's mode, earned from its ledger; the gate consults it;
* ``approvals`` suggestions waiting for a person; ``notify`` tells people;
* ``api`` and ``ui`` the HTTP API and the ``/ui`` page people answer from.

``Loop`` (loop.py) ties them together for the agent; ``server.agent_from_env`` builds it from the
settings (``LoopSettings``, the policy's ``autonomy``, the state backend).
"""

from .loop import Loop, LoopError
from .store import LoopStore, open_loop_store

__all__ = ["Loop", "LoopError", "LoopStore", "open_loop_store"]
