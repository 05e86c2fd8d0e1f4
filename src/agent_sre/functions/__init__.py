"""Remediation function implementations (issue 4).

Each catalog function has a handler here (``@handler(name)`` in ``registry``); ``app`` serves them
as one CloudEvents HTTP app; ``run_function`` runs one in-process (the embedded broker uses it).
"""

from __future__ import annotations

from typing import Any

from .. import catalog

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
