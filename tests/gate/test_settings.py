"""Settings fail closed and say what they are: every command stops on an unusable value before it
serves anything, naming the variable; ``--help`` lists every setting a command honours."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent_sre import settings as cfg
from agent_sre.cli import app as cli_app
from agent_sre.outbox import Outbox

CLEAN = {"DRY_RUN": "", "AUTH_TOKEN": "", "BROKER_URL": "", "REDIS_URL": "", "LLM_URL": "", "USE_TRM": "false",
         "COLUMNS": "200"}


def invoke(args: list[str], **env: str):
    return CliRunner().invoke(cli_app, args, env={**CLEAN, **env})


@pytest.mark.parametrize("command", sorted(cfg.COMMANDS))
def test_help_lists_every_setting_the_command_honours(command):
    r = invoke([*command.split(), "--help"])
    assert r.exit_code == 0, r.output
    rows = cfg.describe(cfg.COMMANDS[command])
    only = {"history": {"STATE_DIR", "AUDIT_LOG"}, "outbox": {"STATE_DIR", "OUTBOX_DB"},
            "outcomes": {"STATE_DIR", "STATE_DB", "REDIS_URL", "POLICY_PATH"}}.get(command)
    shown = [var for var, _, _ in rows if only is None or var in only]
    assert shown and all(var in r.output for var in shown), r.output


def test_serve_help_names_state_auth_and_policy_with_defaults():
    out = invoke(["serve", "--help"]).output
    for var in ("STATE_DIR", "AUTH_TOKEN", "POLICY_PATH", "DRY_RUN", "BROKER_URL", "MAX_BODY_BYTES"):
        assert var in out
    assert "(default: true)" in out.split("DRY_RUN", 1)[1].splitlines()[0]


BAD = {"DRY_RUN": "enabled", "PORT": "http", "LOG_LEVEL": "loud", "TRM_THRESHOLD": "high", "LLM_TIMEOUT_MS": "-1",
       "FLUX_WAIT_SECONDS": "soon"}
CASES = [(command, var) for command in ("serve", "serve-function", "serve-reasoning", "select", "demo")
         for var in BAD if var in {v for v, _, _ in cfg.describe(cfg.COMMANDS[command])}]


@pytest.mark.parametrize("command,var", CASES)
def test_an_unusable_value_stops_the_command_naming_the_variable(command, var):
    r = invoke([command] + (["{}"] if command == "select" else []), **{var: BAD[var]})
    assert r.exit_code == 2, r.output
    assert f"error: {var}={BAD[var]!r}" in r.output


def test_every_serving_command_stops_on_an_unknown_dry_run():
    assert {c for c, v in CASES if v == "DRY_RUN"} == {"serve", "serve-function"}


def test_execute_without_intake_authentication_refuses_to_start(tmp_path):
    r = invoke(["serve"], DRY_RUN="false", STATE_DIR=str(tmp_path))
    assert r.exit_code == 2 and "AUTH_TOKEN" in r.output


@pytest.mark.parametrize("value,dry", [("", True), ("true", True), ("ON", True), ("1", True), ("yes", True),
                                       ("false", False), ("Off", False), ("0", False), ("no", False)])
def test_the_functions_read_dry_run_the_same_way(value, dry):
    assert cfg.load(cfg.FunctionSettings, {"DRY_RUN": value}).dry_run is dry
    assert cfg.load(cfg.AgentSettings, {"DRY_RUN": value}).dry_run is dry


def test_history_and_outbox_say_what_they_read_and_fail_when_it_is_not_there(tmp_path):
    r = invoke(["history"], STATE_DIR=str(tmp_path / "none"))
    assert r.exit_code == 1 and f"no audit log at {tmp_path / 'none' / 'audit.jsonl'}" in r.output
    assert "STATE_DIR" in r.output and not (tmp_path / "none").exists()
    r = invoke(["outbox"], STATE_DIR=str(tmp_path / "none"))
    assert r.exit_code == 1 and f"no outbox at {tmp_path / 'none' / 'outbox.db'}" in r.output
    assert "STATE_DIR" in r.output and not (tmp_path / "none").exists()  # nothing created by looking

    Outbox(tmp_path / "outbox.db")
    (tmp_path / "audit.jsonl").write_text("")
    r = invoke(["history"], STATE_DIR=str(tmp_path))
    assert r.exit_code == 0 and r.output.splitlines()[0] == f"audit log {tmp_path / 'audit.jsonl'}"
    r = invoke(["outbox"], STATE_DIR=str(tmp_path))
    assert r.exit_code == 0 and json.loads(r.output)["path"] == str(tmp_path / "outbox.db")
