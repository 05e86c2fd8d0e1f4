"""Prometheus alert templates rendered as Prometheus renders them (checked against the real
Prometheus in tests/preview/test_preview_live.py)."""

from __future__ import annotations

import pytest

from agent_sre.collect.templates import TemplateError, go_float, humanize, humanize_duration, printf, render

LABELS = {"namespace": "media", "pod": "sonarr-1", "instance": "10.0.0.7:9100", "job": "node"}


@pytest.mark.parametrize("text, value, want", [
    ("Pod {{ $labels.namespace }}/{{ $labels.pod }} restarts", 1, "Pod media/sonarr-1 restarts"),
    ("{{ .Labels.pod }} at {{ .Value }}", 0.5, "sonarr-1 at 0.5"),
    ("missing={{ $labels.cluster }}.", 1, "missing=."),
    ("{{ $value | humanizePercentage }}", 0.2345, "23.45%"),
    ("{{ $value | humanize }}", 1234567, "1.235M"),
    ("{{ $value | humanize }}", 0.00012, "120u"),
    ("{{ $value | humanize1024 }}", 2048, "2ki"),
    ("{{ $value | humanizeDuration }}", 93784, "1d 2h 3m 4s"),
    ("{{ $value | humanizeDuration }}", 0.25, "250ms"),
    ('{{ printf "%.2f" $value }}', 3.14159, "3.14"),
    ('{{ printf "%d%%" $value }}', 42, "42%"),
    ("{{ $labels }}", 1, "map[instance:10.0.0.7:9100 job:node namespace:media pod:sonarr-1]"),
    ("x{{ with $labels.cluster -}} on {{ . }} {{- end }}.", 1, "x."),
    ("x {{- with $labels.namespace }} in {{ . }}{{ end }}.", 1, "x in media."),
    ("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", 0.7, "high"),
    ("{{ if eq $labels.job \"other\" }}a{{ else if eq $labels.job \"node\" }}b{{ else }}c{{ end }}", 1, "b"),
    ("{{ $labels.instance | stripPort }}", 1, "10.0.0.7"),
    ('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}', 1, "10.0.0.7"),
    ('{{ "up" | toUpper }} {{ "flux kustomization" | title }}', 1, "UP Flux Kustomization"),
    ("{{/* a comment */}}plain", 1, "plain"),
    ("{{ $value }}", 1e6, "1e+06"),
    ("no template at all", 1, "no template at all"),
])
def test_render(text, value, want):
    assert render(text, LABELS, value) == want


@pytest.mark.parametrize("text, why", [
    ('{{ with query "up" }}{{ . | first | value }}{{ end }}', "needs a running Prometheus"),
    ("{{ range $i, $x := . }}{{ end }}", "not supported"),
    ("{{ $x := 1 }}", "not supported"),
    ("{{ if $value }}open", "missing {{ end }}"),
    ("{{ nosuchfunc $value }}", "not supported"),
    ("{{ end }}", "unexpected"),
])
def test_unsupported_templates_raise_instead_of_half_rendering(text, why):
    with pytest.raises(TemplateError, match=why):
        render(text, LABELS, 1)


def test_go_number_formatting():
    assert [go_float(x) for x in (1.0, 0.5, 123456.0, 1234567.0, 1e-05, -2.5e-07)] == [
        "1", "0.5", "123456", "1.234567e+06", "1e-05", "-2.5e-07"]
    assert humanize(0) == "0" and humanize_duration(0) == "0s" and humanize_duration(61) == "1m 1s"
    assert printf("%s=%v %q %5.1f", "a", 2.0, "b", 3.14159) == 'a=2 "b"   3.1'
