"""What a running gateway's ``/metrics`` exports, and which metrics a PromQL text names: the
rules and the dashboard may only name metrics a real scrape shows."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

# series Prometheus makes itself, not the gateway
PROMETHEUS_OWN = frozenset({"up"})
_NAMED = re.compile(r"\b(?:livedesk|process|python)_[a-z0-9_]+\b|\bup\b(?=\s*\{)")


def exported_names(exposition: str) -> set[str]:
    """Every series name a scrape of this text can hold, including those of labelled
    families that have no child yet (a counter by ``code`` before the first error)."""
    names: set[str] = set()
    for fam in text_string_to_metric_families(exposition):
        names.update(s.name for s in fam.samples)
        if fam.type == "counter":
            names.add(fam.name + "_total")
        elif fam.type == "histogram":
            names.update(fam.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(fam.name)
    return names


def named_metrics(promql: str) -> set[str]:
    return set(_NAMED.findall(promql))
