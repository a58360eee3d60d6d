"""The layers stay apart: the domain and store load without Flask, the API schemas without boto3."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "inventory"


def modules_loaded_by(statement: str) -> set[str]:
    # A fresh interpreter: this one has loaded everything already.
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import inventory.domain", {"flask", "boto3", "botocore"}),
        ("import inventory.store", {"flask", "werkzeug"}),
        ("import inventory.api.assets.schemas", {"boto3", "botocore"}),
    ],
)
def test_a_layer_loads_without_the_frameworks_it_must_not_know(statement, forbidden):
    assert modules_loaded_by(statement) & forbidden == set()


def test_a_layer_check_sees_what_a_module_loads():
    # The check above can fail: the app factory does load both.
    assert {"flask", "boto3"} <= modules_loaded_by("import inventory.app; import inventory.store")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_under_api_or_domain_imports_boto3():
    for folder in ("api", "domain"):
        for path in (PACKAGE / folder).rglob("*.py"):
            assert not imported_roots(path) & {"boto3", "botocore"}, path


def test_only_the_store_builds_dynamodb_requests():
    # DynamoDB's wire format ({"S": ...}, {"N": ...}) belongs to store/mapping.py and its store classes.
    for path in PACKAGE.rglob("*.py"):
        if "store" in path.relative_to(PACKAGE).parts or "devtools" in path.parts:
            continue
        text = path.read_text()
        assert '{"S":' not in text and '{"N":' not in text, path
