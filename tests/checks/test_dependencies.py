"""Every third-party module the code imports is declared in requirements*.txt, and nothing declared is unused."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS = {"inventory", "tests", "bench", "migrations", "wsgi"}
# Declared but never imported, on purpose: the server we run under, a pytest
# plugin, the wheel test's build backend (tests/e2e/test_wheel_docs.py), and the import
# contracts' checker (a command, tests/checks/test_layers.py).
NOT_IMPORTED = {"gunicorn", "pytest-cov", "setuptools", "import-linter"}


def _declared(name: str) -> set[str]:
    names = set()
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            names.add(_normal(re.split(r"[\[=<>~!]", line)[0]))
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(*roots: str) -> set[str]:
    modules = set()
    for root in roots:
        path = REPO / root
        for file in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - OURS


def _distributions(modules: set[str]) -> set[str]:
    owners = packages_distributions()
    missing = {m for m in modules if m not in owners}
    assert not missing, f"imported but not installed: {missing}"
    return {_normal(owners[m][0]) for m in modules}


def test_runtime_imports_are_declared_in_requirements():
    runtime = _distributions(_imported("inventory", "migrations", "wsgi.py", "gunicorn.conf.py"))
    assert runtime - _declared("requirements.txt") == set()


def test_test_and_bench_imports_are_declared():
    declared = _declared("requirements.txt") | _declared("requirements-dev.txt")
    assert _distributions(_imported("tests", "bench")) - declared == set()


def test_nothing_declared_is_unused():
    everything = _distributions(_imported("inventory", "migrations", "wsgi.py", "gunicorn.conf.py", "tests", "bench"))
    declared = _declared("requirements.txt") | _declared("requirements-dev.txt")
    assert declared - everything - NOT_IMPORTED == set()
