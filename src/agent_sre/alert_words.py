"""What an alert's own words say about a Flux object: which kinds it names, and whether it says the
object is suspended.

The gate reads these to refuse a model's Flux reconcile that the alert contradicts. A rule that drops
the ``kind`` label still names its kind in the alert's name (``FluxHelmReleaseFailing``,
``flux_helm_rollback_errors``, ``FluxKsNotReady``); a model that answers with another kind has
guessed, and a reconcile of the wrong kind is the wrong object. An alert named for a suspension
(``KustomizePaused``, ``FluxSuspendedTooLong``) or carrying ``suspended="true"`` is about an object
someone stopped on purpose: reconciling it does nothing useful (the function refuses it too). One
named for a reconciliation in progress (``FluxKustomizationInProgress``) or whose ``reason`` is
``Progressing…`` is about an object its controller is reconciling already.

Alert names are split into words (camel case, ``_``, ``-``, ``.``), so ``FluxKsNotReady`` is
``flux ks not ready``. Abbreviations (``ks``, ``hr``) and the short words (``git``, ``helm``,
``source``) count in the alert name only; annotations are prose ("a new release", "the source of
the problem"), so there only a kind's full name counts (``HelmRelease``, ``helm release``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Kinds no function reconciles: naming one of them contradicts every supported kind.
OTHER = "other Flux kind"

# Two-word names first: (first, second) -> kind ("" for words that name no kind: GitOps).
_PAIRS = {
    ("git", "ops"): "",
    ("helm", "release"): "HelmRelease", ("helm", "releases"): "HelmRelease",
    ("git", "repository"): "GitRepository", ("git", "repo"): "GitRepository", ("git", "source"): "GitRepository",
    ("source", "git"): "GitRepository",
    ("helm", "repository"): OTHER, ("helm", "repo"): OTHER, ("helm", "chart"): OTHER,
    ("oci", "repository"): OTHER, ("oci", "repo"): OTHER, ("image", "repository"): OTHER,
    ("image", "policy"): OTHER, ("image", "update"): OTHER,
}
# One-word names, valid anywhere.
_FULL = {
    "kustomization": "Kustomization", "kustomizations": "Kustomization",
    "helmrelease": "HelmRelease", "helmreleases": "HelmRelease",
    "gitrepository": "GitRepository", "gitrepositories": "GitRepository",
    "helmrepository": OTHER, "helmchart": OTHER, "ocirepository": OTHER, "bucket": OTHER,
    "imagerepository": OTHER, "imagepolicy": OTHER, "imageupdateautomation": OTHER,
}
# One-word names that only an alert name uses as a kind.
_SHORT = {
    "kustomize": "Kustomization", "ks": "Kustomization",
    "helm": "HelmRelease", "hr": "HelmRelease", "release": "HelmRelease", "releases": "HelmRelease",
    "git": "GitRepository", "gitrepo": "GitRepository", "repository": "GitRepository", "repo": "GitRepository",
    "source": "GitRepository",
}
FLUX_KINDS = frozenset({"Kustomization", "HelmRelease", "GitRepository"})
_SUSPENDED_WORDS = {"suspend", "suspended", "suspension", "paused", "pause"}
_PROGRESS_WORDS = {"progress", "progressing", "reconciling"}
_PROSE = ("summary", "description", "message")

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(text: str) -> list[str]:
    """An alert name's words, the one splitter the gate, the TRM's encoder and the incident desk
    share: ``FluxHelmReleaseNotReady`` -> [flux, helm, release, not, ready], ``OCIRepository`` ->
    [oci, repository]; snake_case, kebab-case and dotted names too."""
    out: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", text or ""):
        out.extend(w.lower() for w in _CAMEL.findall(part))
    return out


def _kinds_in(ws: list[str], short: bool) -> set[str]:
    found: set[str] = set()
    i = 0
    while i < len(ws):
        pair = _PAIRS.get((ws[i], ws[i + 1])) if i + 1 < len(ws) else None
        if pair is not None:
            if pair:
                found.add(pair)
            i += 2
            continue
        kind = _FULL.get(ws[i]) or (_SHORT.get(ws[i]) if short else None)
        if kind:
            found.add(kind)
        i += 1
    return found


def flux_kinds_named(labels: Mapping[str, str], annotations: Mapping[str, str]) -> set[str]:
    """The Flux kinds the alert's name and prose name (``OTHER`` for kinds no function reconciles)."""
    found = _kinds_in(words(labels.get("alertname", "")), short=True)
    for key in _PROSE:
        found |= _kinds_in(words(annotations.get(key, "")), short=False)
    return found


def says_suspended(labels: Mapping[str, str]) -> bool:
    """The alert's ``suspended`` label is true, or its name is about a suspension."""
    if str(labels.get("suspended", "")).lower() == "true":
        return True
    return bool(_SUSPENDED_WORDS.intersection(words(labels.get("alertname", ""))))


def says_progressing(labels: Mapping[str, str]) -> bool:
    """The alert says its object is being reconciled right now: its name (``FluxKustomizationInProgress``,
    ``flux_resource_progressing``) or its condition's ``reason`` (``Progressing``,
    ``ProgressingWithRetry``). The controller is already at it; another request adds nothing."""
    if str(labels.get("reason", "")).lower().startswith("progressing"):
        return True
    return bool(_PROGRESS_WORDS.intersection(words(labels.get("alertname", ""))))
