"""The operator documents in docs/ stay true to the code.

- docs/alerts.yml is well-formed Prometheus rules;
- docs/grafana-dashboard.json is a dashboard whose panels query Prometheus;
- every metric either of them names is one the service exports;
- docs/iam-policy.json allows exactly the DynamoDB actions the code calls.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from inventory.jobs.refresh import RefreshReport
from inventory.telemetry.metrics import RefreshMetrics, StreamMetrics
from tests.conftest import build_asset
from tests.traffic import serve_each_kind_of_request

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ALERTS = DOCS / "alerts.yml"
DASHBOARD = DOCS / "grafana-dashboard.json"
POLICY = DOCS / "iam-policy.json"
SOURCE_DIRS = (ROOT / "inventory", ROOT / "migrations")

SEVERITIES = {"warning", "critical"}


# -- helpers -----------------------------------------------------------------------

_PAIRS = {")": "(", "]": "[", "}": "{"}
_QUOTES = "\"'`"


def balanced(expr: str) -> bool:
    """True when (), [], {} nest properly and every quote closes (brackets inside quotes ignored)."""
    stack: list[str] = []
    quote = None
    escaped = False
    for char in expr:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in _QUOTES:
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in _PAIRS:
            if not stack or stack.pop() != _PAIRS[char]:
                return False
    return quote is None and not stack


_METRIC_RE = re.compile(r"\b(?:inventory|flask)_[a-z0-9_]+")
_SUFFIX_RE = re.compile(r"_(?:bucket|count|sum|created)$")


def family(name: str) -> str:
    """The metric family a series name belongs to (histogram/counter sample suffixes dropped)."""
    return _SUFFIX_RE.sub("", name)


def referenced_metrics(exprs) -> set[str]:
    return {family(m) for expr in exprs for m in _METRIC_RE.findall(expr)}


def load_alerts() -> dict:
    return yaml.safe_load(ALERTS.read_text())


def alert_rules() -> list[dict]:
    return [rule for group in load_alerts()["groups"] for rule in group["rules"]]


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    """Every PromQL string in the dashboard: panel targets and template-variable queries."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def data_panels(dashboard: dict) -> list[dict]:
    """Panels that show data (rows, which only group, are left out; nested row panels included)."""
    panels = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


# -- (a) alerts.yml ----------------------------------------------------------------

def test_balanced_catches_unbalanced_expressions():
    assert balanced('sum by (job) (rate(x{a=~"5.."}[5m])) > 0')
    assert not balanced("sum(rate(x[5m])")
    assert not balanced("rate(x[5m)]")
    assert not balanced('x{a="5..}')
    assert not balanced("x{a='b}'")


def test_alert_rules_have_the_prometheus_shape():
    document = load_alerts()
    assert isinstance(document, dict) and set(document) == {"groups"}
    assert document["groups"], "no rule groups"
    names = []
    for group in document["groups"]:
        assert isinstance(group.get("name"), str) and group["name"]
        assert isinstance(group.get("rules"), list) and group["rules"], group.get("name")
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
            assert re.fullmatch(r"\d+[smh]", str(rule["for"])), (rule["alert"], rule["for"])
            assert rule["labels"].get("severity") in SEVERITIES, rule["alert"]
            annotations = rule["annotations"]
            assert annotations.get("summary", "").strip(), rule["alert"]
            assert annotations.get("description", "").strip(), rule["alert"]
            names.append(rule["alert"])
    assert len(names) == len(set(names)), Counter(names).most_common(3)


def test_alert_expressions_are_balanced():
    for rule in alert_rules():
        assert balanced(rule["expr"]), (rule["alert"], rule["expr"])
        # Go templates in annotations must close too.
        for text in rule["annotations"].values():
            assert text.count("{{") == text.count("}}"), (rule["alert"], text)


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # `make test` installs promtool (Debian's prometheus package) like Java.
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run `make test` (target system-promtool)"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules():
    result = _promtool("check", "rules", str(ALERTS), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_the_right_alerts(tmp_path):
    # GIVEN the rules without annotations (promtool compares those verbatim; the
    # check above covers their templates) beside the unit tests
    document = load_alerts()
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(document))
    shutil.copy(ROOT / "tests" / "promtool" / "alerts.test.yml", tmp_path)
    # WHEN promtool replays their series THEN every expected alert (and silence) holds
    result = _promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_cover_what_operators_need():
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    joined = "\n".join(exprs.values())
    wanted = [
        r'inventory_price_refresh_total\{outcome="failure"\}',
        r"inventory_price_refresh_last_success_timestamp_seconds",
        r"time\(\) - max by \(job\) \(inventory_oldest_tradable_price_timestamp_seconds\)",
        r'inventory_dynamodb_requests_total\{outcome=~"error\|unreachable"\}',
        r"inventory_dynamodb_throttles_total",
        r'flask_http_request_duration_seconds_count\{status=~"5\.\."\}',
        r"max by \(job\) \(inventory_refresh_lease_held\) == 0",
        r"inventory_coingecko_breaker_open",
        r'histogram_quantile\(0\.99,\s+sum by \(job, le\) \(rate\(flask_http_request_duration_seconds_bucket',
        r"> \(14\.4 \* 0\.001\)",
        r'up\{job="inventory"\} == 0',
    ]
    for pattern in wanted:
        assert re.search(pattern, joined), pattern


# -- (b) grafana-dashboard.json ----------------------------------------------------

def test_dashboard_panels_query_prometheus():
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"] and dashboard["uid"]
    panels = data_panels(dashboard)
    assert panels, "no panels"
    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for p in panels if p not in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert all(p["type"] in {"row", "timeseries", "stat"} for p in dashboard["panels"])
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), panel["title"]
            assert balanced(target["expr"]), (panel["title"], target["expr"])
            assert target.get("datasource", panel.get("datasource"))["type"] == "prometheus", panel["title"]


def test_dashboard_shows_what_operators_need():
    joined = "\n".join(dashboard_exprs(load_dashboard()))
    wanted = [
        r"histogram_quantile\(0\.5, sum by \(le, route_template\) \(rate\(flask_http_request_duration_seconds_bucket",
        r"histogram_quantile\(0\.99, sum by \(le, route_template\) \(rate\(flask_http_request_duration_seconds_bucket",
        r"sum by \(route_template\) \(rate\(flask_http_request_duration_seconds_count",
        r'status=~"5\.\."',
        r'inventory_cache_lookups_total\{[^}]*result="hit"',
        r"sum by \(operation, outcome\) \(rate\(inventory_dynamodb_requests_total",
        r"histogram_quantile\(0\.99, sum by \(le, operation\) \(rate\(inventory_dynamodb_request_duration_seconds_bucket",
        r"inventory_dynamodb_throttles_total",
        r"inventory_dynamodb_retries_total",
        r"inventory_price_refresh_total",
        r"inventory_price_refresh_duration_seconds_bucket",
        r"inventory_oldest_tradable_price_timestamp_seconds",
        r"inventory_coingecko_breaker_open",
        r"inventory_refresh_lease_held",
    ]
    for pattern in wanted:
        assert re.search(pattern, joined), pattern


# -- (c) every metric the documents name is exported -------------------------------

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", re.M)
_TYPE_RE = re.compile(r"^# TYPE (\S+) ", re.M)


def exported_families(metrics_text: str, registry: CollectorRegistry) -> set[str]:
    names = set(_TYPE_RE.findall(metrics_text))
    names |= {m for m in _SAMPLE_RE.findall(metrics_text)}
    for metric in registry.collect():
        names.add(metric.name)
        if metric.type == "counter":
            names.add(metric.name + "_total")
        names |= {sample.name for sample in metric.samples}
    return {family(name) for name in names}


@pytest.fixture
def exported(client, add_assets) -> set[str]:
    """Metric families of the app's /metrics plus those of the refresher (gunicorn master)."""
    add_assets(build_asset("BTC", 1, price="97000.12"))
    serve_each_kind_of_request(client)
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)

    registry = CollectorRegistry()
    refresh = RefreshMetrics(registry)
    refresh.source_response("/coins/markets", 200)
    refresh.record(
        RefreshReport(updated=1, unchanged=2, skipped=Counter({"bad_price": 1}), duration_seconds=0.5),
        "closed",
        datetime.now(timezone.utc),
        datetime.now(timezone.utc),
    )
    refresh.lease_held.set(1)
    # The stream role's processes export these (single-process apps keep none).
    stream = StreamMetrics(registry)
    stream.opened("sse")
    stream.sent("sse")
    stream.dropped_client("slow")
    stream.delivered(0.2)
    return exported_families(text, registry)


def test_exported_names_come_from_the_app_and_the_refresher(exported):
    # The fixture really saw both sources, so the subset checks below mean something.
    assert {
        "flask_http_request_duration_seconds",
        "inventory_cache_lookups_total",
        "inventory_dynamodb_requests_total",
        "inventory_asset_status_changes_total",
        "inventory_asset_imports_total",
        "inventory_write_conflicts_total",
        "inventory_batch_items",
        "inventory_coingecko_up",
        "inventory_price_refresh_total",
        "inventory_refresh_lease_held",
        "inventory_stream_connections",
        "inventory_quotes_issued_total",
    } <= exported
    assert "inventory_no_such_metric" not in exported


def test_alerts_name_only_exported_metrics(exported):
    referenced = referenced_metrics(rule["expr"] for rule in alert_rules())
    assert any(n.startswith("inventory_") for n in referenced) and any(n.startswith("flask_") for n in referenced)
    assert referenced <= exported, sorted(referenced - exported)


def test_dashboard_names_only_exported_metrics(exported):
    referenced = referenced_metrics(dashboard_exprs(load_dashboard()))
    assert any(n.startswith("inventory_") for n in referenced) and any(n.startswith("flask_") for n in referenced)
    assert referenced <= exported, sorted(referenced - exported)


def test_metric_extraction_strips_sample_suffixes():
    assert referenced_metrics(["rate(flask_http_request_duration_seconds_bucket[5m]) + inventory_x_count"]) == {
        "flask_http_request_duration_seconds",
        "inventory_x",
    }


# -- (d) the IAM policy allows exactly what the code calls ------------------------

_CALL_RE = re.compile(
    r"\.(get_item|put_item|update_item|query|batch_get_item|transact_write_items|describe_table|create_table"
    r"|update_time_to_live|describe_time_to_live|delete_item|scan|batch_write_item|list_tables|get_waiter)\("
)
_WAITER_RE = re.compile(r"\.get_waiter\(\s*[\"'](\w+)[\"']")
# The item actions a TransactWriteItems call may carry, and the permission each needs.
_TRANSACTION_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_TRANSACTION_ACTION_RE = re.compile(r"[\"'](Put|Update|Delete|ConditionCheck)[\"']\s*:")
_WAITERS = {"table_exists": "DescribeTable", "table_not_exists": "DescribeTable"}
_MIGRATION_ONLY = {"CreateTable", "UpdateTimeToLive", "DescribeTimeToLive"}


def iam_action(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def python_sources(*directories: Path) -> dict[Path, str]:
    return {
        path: path.read_text()
        for directory in directories
        for path in sorted(directory.rglob("*.py"))
        if "devtools" not in path.parts  # developer tools run against DynamoDB Local only
    }


def actions_called(sources: dict[Path, str]) -> set[str]:
    """IAM actions for the DynamoDB calls in these sources."""
    actions: set[str] = set()
    for text in sources.values():
        for method in _CALL_RE.findall(text):
            if method != "get_waiter":
                actions.add(iam_action(method))
        for waiter in _WAITER_RE.findall(text):
            actions.add(_WAITERS[waiter])
        if "transact_write_items(" in text or "TransactItems" in text:
            actions.add("TransactWriteItems")
        if "ConditionCheck" in text:
            actions.add("ConditionCheckItem")
        for kind in _TRANSACTION_ACTION_RE.findall(text):
            actions.add(_TRANSACTION_ACTIONS[kind])
    return actions


def load_policy() -> dict:
    return json.loads(POLICY.read_text())


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_actions(statement: dict) -> set[str]:
    return {a for a in as_list(statement["Action"])}


def test_iam_action_names():
    assert iam_action("batch_get_item") == "BatchGetItem"
    assert iam_action("describe_time_to_live") == "DescribeTimeToLive"
    assert actions_called({Path("x.py"): 'c.get_waiter("table_exists").wait()'}) == {"DescribeTable"}
    assert actions_called({Path("x.py"): 'c.transact_write_items(TransactItems=[{"Update": {}}])'}) == {
        "TransactWriteItems",
        "UpdateItem",
    }


def test_the_code_never_scans():
    for path, text in python_sources(*SOURCE_DIRS).items():
        assert not re.search(r"\.scan\(|get_paginator\(\s*[\"']scan[\"']", text), path


def test_policy_allows_exactly_the_actions_the_code_calls():
    called = actions_called(python_sources(*SOURCE_DIRS))
    assert {"GetItem", "Query", "TransactWriteItems", "CreateTable"} <= called  # the scan found the calls
    statements = load_policy()["Statement"]
    allowed = set()
    for statement in statements:
        for action in policy_actions(statement):
            assert action.startswith("dynamodb:"), action
            allowed.add(action.removeprefix("dynamodb:"))
    assert allowed == called, {"not used": sorted(allowed - called), "missing": sorted(called - allowed)}


def test_policy_has_no_wildcards_and_covers_the_indexes():
    policy = load_policy()
    assert policy["Version"] == "2012-10-17"
    table_arn = "arn:aws:dynamodb:REGION:ACCOUNT:table/order-processor-table"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement.get("Sid"), statement
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in policy_actions(statement):
            assert "*" not in action, action
        for resource in as_list(statement["Resource"]):
            assert resource != "*", statement["Sid"]
            assert resource in (table_arn, table_arn + "/index/*"), resource
    runtime = [s for s in policy["Statement"] if "dynamodb:Query" in policy_actions(s)]
    assert len(runtime) == 1
    assert table_arn + "/index/*" in as_list(runtime[0]["Resource"])  # Query on the GSIs
    assert table_arn in as_list(runtime[0]["Resource"])


def test_migration_only_actions_are_a_statement_of_their_own():
    service_actions = actions_called(python_sources(ROOT / "inventory"))
    migration_actions = actions_called(python_sources(ROOT / "migrations"))
    only_migrations = migration_actions - service_actions
    assert only_migrations == _MIGRATION_ONLY
    statements = load_policy()["Statement"]
    migration = [s for s in statements if "migration" in s["Sid"].lower()]
    assert len(migration) == 1
    assert policy_actions(migration[0]) == {f"dynamodb:{a}" for a in only_migrations}
    for statement in statements:
        if statement is not migration[0]:
            assert not policy_actions(statement) & {f"dynamodb:{a}" for a in only_migrations}, statement["Sid"]
