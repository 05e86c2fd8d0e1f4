"""Remediation function implementations (issue 4).

Each catalog function has a handler here (``@handler(name)`` in ``registry``); ``app`` serves them
as one CloudEvents HTTP app; ``run_function`` runs one in-process (the embedded broker uses it).

Environment (all optional):

=====================  =======================================================================
FUNCTION               serve only this function (unset: all)                       [app only]
DRY_RUN                default **true**; a write happens only with DRY_RUN=false *and* the
                       trigger's ``dry_run: false``. Dry-run writes go out with dryRun=All.
KUBECONFIG             cluster config when not in a pod (in a pod: the ServiceAccount).
                       Neither: offline, dry-run only, ``details.verified: false``.
STATE_DIR              SQLite file of answered trigger ids (else memory); IDEMPOTENCY_MAX bounds it
K_SINK / RESULT_SINK   also POST each result event there (besides the HTTP reply)     [app only]
PROMETHEUS_URL         check-pvc-status usage (kubelet_volume_stats_*); PROMETHEUS_TIMEOUT
PVC_USAGE_THRESHOLD    used ratio at or above which a claim is reported unhealthy (0.85)
FLUX_WITH_SOURCE       reconcile the source first (query ``?with_source=true`` per request)
FLUX_FORCE             HelmRelease: also reconcile.fluxcd.io/forceAt (query ``?force=true``)
FLUX_WAIT_SECONDS      how long to watch Ready after a reconcile request (30); FLUX_POLL_SECONDS (2)
POD_EVENTS             recent events reported per pod (5); KUBE_TIMEOUT per API request (10)
=====================  =======================================================================
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
