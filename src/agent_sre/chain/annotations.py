"""Stage 1, the fast path: `lambda_function` + `lambda_parameters` annotations set by the rule author.

Prometheus renders `lambda_parameters` from label templates, e.g.
``{"name": "{{ $labels.name }}", "namespace": "{{ $labels.exported_namespace }}"}``.
The annotation is trusted as the author's intent, but still validated against the catalog.
"""

from __future__ import annotations

from ..alerts import Alert
from ..decision import Abstain, Decision, Method, validated
from ..jsonparse import NoJSONFound, extract_json


class AnnotationStage:
    name = "annotations"

    def __call__(self, alert: Alert) -> Decision:
        fn = alert.annotations.get("lambda_function", "").strip()
        if not fn:
            raise Abstain("no lambda_function annotation")
        raw = alert.annotations.get("lambda_parameters", "").strip()
        params = {}
        if raw:
            try:
                params = extract_json(raw, prefer_key=None)
            except NoJSONFound:
                raise Abstain(f"lambda_parameters is not a JSON object: {raw[:80]!r}") from None
        if any(isinstance(v, str) and "{{" in v for v in params.values()):
            raise Abstain("lambda_parameters holds an unrendered template")
        return validated(
            fn,
            params,
            method=Method.STATIC,
            reasoning=f"alert rule {alert.name} names {fn} in its annotations",
            confidence=1.0,
        )
