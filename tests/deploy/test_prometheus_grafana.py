"""deploy/prometheus/rules.yaml and deploy/grafana/livedesk.json (issue 22, item 3).

- ``promtool check rules`` and ``promtool test rules`` (Debian's ``prometheus`` package,
  installed by ``make system-deps``) pass; a missing promtool fails, never skips;
- every alert is listed in docs/operations.md's "Alerts" table and every listed one exists;
- every metric the rules and the dashboard name is exported by a real gateway's ``/metrics``
  (scraped here), the process and GC collectors included;
- the dashboard has the structure Grafana imports (ids, grid, targets, the datasource input)
  and its queries parse (fed to promtool as recording rules).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import start_gateway, stop_gateway
from tests.deploy.metric_names import PROMETHEUS_OWN, exported_names, named_metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "livedesk.json"
OPERATIONS = ROOT / "docs" / "operations.md"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make system-deps` installs Debian's prometheus package"
    return path


def alerts() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_targets(d: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]


def test_promtool_check_rules_passes():
    r = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in r.stdout, r.stdout


def test_promtool_unit_tests_of_alerts_pass():
    r = subprocess.run([promtool(), "test", "rules", str(RULES_TEST)], capture_output=True,
                       text=True, timeout=60, cwd=RULES_TEST.parent)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check above can fail: an expression that does not parse is refused."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: Broken\n"
                   "    expr: sum(rate(livedesk_messages_total[5m])\n")
    r = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0


def test_every_alert_is_documented_and_every_documented_alert_exists():
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(Livedesk\w+)` \|", section, flags=re.M))
    defined = [a["alert"] for a in alerts()]
    assert len(defined) == len(set(defined)), "duplicate alert names"
    assert documented == set(defined), (sorted(documented - set(defined)),
                                        sorted(set(defined) - documented))
    for a in alerts():
        assert a["labels"]["severity"] in ("page", "ticket", "info"), a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["runbook"], a["alert"]
        doc, _, anchor = a["annotations"]["runbook"].partition("#")
        assert (ROOT / doc).exists(), a["annotations"]["runbook"]


def test_dashboard_structure_grafana_imports():
    d = dashboard()
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time", "__inputs"):
        assert key in d, key
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"])
    inputs = {i["name"] for i in d["__inputs"] if i["type"] == "datasource"}
    variables = {v["name"] for v in d["templating"]["list"]}
    assert "DS_PROMETHEUS" in inputs and {"DS_PROMETHEUS", "job"} <= variables
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    boxes = []
    for p in d["panels"]:
        g = p["gridPos"]
        assert p["type"] in ("row", "timeseries", "stat", "gauge", "bargauge", "table"), p
        assert 0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        boxes.append((g["x"], g["y"], g["w"], g["h"], p["title"]))
        if p["type"] == "row":
            continue
        assert p["title"] and p.get("description"), p["id"]
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and 'job="$job"' in t["expr"], (p["title"], t["expr"])
    for i, (x, y, w, h, t) in enumerate(boxes):  # no two panels overlap on the grid
        for x2, y2, w2, h2, t2 in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, (t, t2)


def test_dashboard_covers_what_the_issue_asks():
    """queue, first response, CSAT, conversions, calls, media CPU, Redis lag, resyncs."""
    named = set().union(*(named_metrics(e) for _, e in dashboard_targets(dashboard())))
    for metric in ("livedesk_queue_length", "livedesk_first_response_seconds_bucket",
                   "livedesk_csat_rating_sum", "livedesk_conversions_total",
                   "livedesk_calls_total", "process_cpu_seconds_total",
                   "livedesk_archiver_lag_seconds", "livedesk_replica_resyncs_total"):
        assert metric in named, metric


def test_dashboard_queries_parse(tmp_path):
    """Each query, with the dashboard's variables filled in, as a recording rule: promtool
    parses every expression (a typo in PromQL fails here, not on the operator's screen)."""
    rules = [{"record": f"dashboard:q{i}",
              "expr": e.replace("$job", "livedesk").replace("$__range", "1d")}
             for i, (_, e) in enumerate(dashboard_targets(dashboard()))]
    f = tmp_path / "dashboard_rules.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run([promtool(), "check", "rules", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


async def test_rules_and_dashboard_name_only_metrics_a_gateway_exports():
    gw = await start_gateway()
    try:
        async with gw.http.get(gw.url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    finally:
        await stop_gateway(gw)
    exported = exported_names(text)
    # the process and GC collectors are on the node's registry (issue 22)
    for m in ("process_cpu_seconds_total", "process_resident_memory_bytes",
              "process_open_fds", "process_max_fds", "python_gc_collections_total",
              "python_info", "livedesk_sockets", "livedesk_calls_total"):
        assert m in exported, m
    missing = {}
    for a in alerts():
        unknown = named_metrics(a["expr"]) - exported - PROMETHEUS_OWN
        if unknown:
            missing[a["alert"]] = sorted(unknown)
    for title, expr in dashboard_targets(dashboard()):
        unknown = named_metrics(expr) - exported - PROMETHEUS_OWN
        if unknown:
            missing[f"panel {title}"] = sorted(unknown)
    assert not missing, missing
    assert named_metrics('rate(livedesk_nope_total[1m])') - exported == {"livedesk_nope_total"}


@pytest.mark.parametrize("name", ["process_cpu_seconds_total", "python_gc_collections_total"])
def test_each_app_has_its_own_collectors(name):
    """Two apps in one process (as in the tests): each registry gets its own collectors
    without a duplicate-registration error, and each renders them."""
    from gateway.metrics import Metrics

    a, b = Metrics(), Metrics()
    for m in (a, b):
        assert name in exported_names(m.render().decode())
