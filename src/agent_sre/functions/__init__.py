"""The remediation functions: one handler per catalog function, acting on the Kubernetes API.

Each handler module registers its handlers with ``@handler(name)`` (``registry``) when imported;
this package imports them all, so whoever uses it (the HTTP app, the runner, ``run_function``)
finds every handler. ``app`` serves them as one CloudEvents HTTP app (``agent-sre
serve-function``); ``receive.Receiver`` is what a trigger passes first (signature, freshness,
id, policy), over HTTP and in the embedded broker alike; ``run_function`` runs one handler
in-process without those checks (for tests and tools).

Their settings are ``agent_sre.settings.FunctionSettings`` (``agent-sre serve-function --help``
lists them). A write happens only with DRY_RUN=false, the trigger's ``dry_run: false`` *and* the
policy's mode ``execute`` for the function; dry-run writes go out with dryRun=All, and without a
cluster nothing is sent at all.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from . import flux, pods, pvc  # noqa: F401  (registers their handlers)

__all__ = ["run_function"]


def run_function(
    name: str,
    params: dict[str, Any] | None,
    *,
    dry_run: bool = True,
    event_id: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Run remediation function ``name`` in-process and return its result dict
    ``{function, status, action, target, message, details, dry_run}``.

    ``dry_run`` is OR-ed with the DRY_RUN setting (default true). With no cluster configured it
    describes, in dry-run, the exact request it would send (``details.verified: false``).
    An unknown function or invalid parameters give ``status: refused`` (nothing is attempted);
    the same ``event_id`` twice returns the first result without acting again.
    """
    from .runner import default_runner

    try:
        return default_runner().run(name, params, dry_run=dry_run, event_id=event_id,
                                    correlation_id=correlation_id)
    except (catalog.UnknownFunction, catalog.InvalidParameters) as e:
        return {
            "function": name, "status": "refused", "action": "validate", "target": {},
            "message": str(e), "details": {"parameters": params}, "dry_run": True,
        }
