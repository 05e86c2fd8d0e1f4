"""When the storm breaker opens, the refused alerts make one escalation per episode, not one each."""

from agent_sre.agent import Agent
from agent_sre.alerts import Alert
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.events import ESCALATION, TRIGGER
from agent_sre.gate import Gate
from agent_sre.policy import default as default_policy
from agent_sre.state import SQLiteState


def test_one_escalation_for_every_alert_the_breaker_refuses(tmp_path):
    pol = default_policy().with_overrides(storm={"distinct_targets": 3})
    agent = Agent(chain=Chain([RuleStage()]), gate=Gate(policy=pol, state=SQLiteState(tmp_path / "s.db")),
                  clock=lambda: 1_000_000.0)
    alerts = [Alert(labels={"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": f"app{i}-0"},
                    startsAt="2026-11-20T08:00:00Z") for i in range(8)]
    outs = agent.handle_alerts(alerts)
    types = [e.get_type() for o in outs for e in o.events]
    assert types.count(TRIGGER) == 2  # the third distinct target opens the breaker
    refused = [o for o in outs if o.verdict is not None and o.verdict.code == "storm"]
    assert len(refused) == 6
    esc_ids = {e.get_id() for o in refused for e in o.events if e.get_type() == ESCALATION}
    assert len(esc_ids) == 1  # one event id: the outbox sends it once
    assert agent.outbox.stats()["events"].get("delivered", 0) + agent.outbox.stats()["events"].get("pending", 0) == 3
