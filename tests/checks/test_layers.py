"""The layers stay apart: import-linter's contracts (setup.cfg [importlinter]) hold, and can fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(__import__("sys").executable).parent)) or "lint-imports"


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--config", str(config), "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(REPO / "setup.cfg")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_a_contract_the_code_breaks_fails_the_check(tmp_path):
    # The same checker, asked for the layers upside down: the store imports the domain, so it must fail.
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_package = inventory\n\n"
                      "[importlinter:contract:upside-down]\nname = upside down\ntype = layers\n"
                      "layers =\n    inventory.domain\n    inventory.store\n")
    result = lint_imports(config)
    assert result.returncode != 0 and "upside down BROKEN" in result.stdout
    assert "inventory.store" in result.stdout and "inventory.domain" in result.stdout


def test_only_the_store_builds_dynamodb_requests():
    # DynamoDB's wire format ({"S": ...}, {"N": ...}) belongs to store/mapping.py and its store classes.
    package = REPO / "inventory"
    for path in package.rglob("*.py"):
        if "store" in path.relative_to(package).parts or "devtools" in path.parts:
            continue
        text = path.read_text()
        assert '{"S":' not in text and '{"N":' not in text, path
