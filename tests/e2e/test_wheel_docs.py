"""The built wheel, installed into a fresh virtualenv away from the repo, serves working /docs and /redoc."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _stop as stop
from tests.e2e.conftest import _wait_until_healthy as wait_until_healthy
from tests.e2e.test_docs_browser import (
    documented_operations,
    foreign,
    needs_chromium,
    parse_refs,
    render,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "inventory" / "static" / "vendor"


def _run(args: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _vendor_files() -> list[str]:
    """Swagger UI / ReDoc files `make vendor` put in the checkout, relative to the repo."""
    return sorted(
        str(path.relative_to(REPO)) for path in VENDOR.rglob("*") if path.is_file() and not path.name.startswith(".")
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the tracked sources plus the fetched vendor files (no build artefacts in the repo)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    tracked = _run(["git", "ls-files", "-z"], REPO).stdout.split("\0")
    for name in [n for n in tracked if n] + _vendor_files():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)  # follows the shared vendor symlink
    # No build isolation: the build backend comes from this venv, so the test needs no network.
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", work / "dist", source], work)
    (built,) = (work / "dist").glob("inventory-*.whl")
    return built


def test_wheel_carries_swagger_ui_redoc_and_their_licences(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    vendored = _vendor_files()
    assert "inventory/static/vendor/swagger-ui/swagger-ui-bundle.js" in vendored
    assert "inventory/static/vendor/redoc/redoc.standalone.js" in vendored
    assert {"inventory/static/vendor/swagger-ui/NOTICE", "inventory/static/vendor/redoc/LICENSE"} <= set(vendored)
    assert set(vendored) <= names, sorted(set(vendored) - names)


@pytest.fixture(scope="module")
def installed_server(wheel, dynamodb_local, tmp_path_factory):
    """gunicorn from a fresh venv where only the wheel provides `inventory`; cwd and paths away from the repo."""
    work = tmp_path_factory.mktemp("installed")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], work)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], work)
    # The dependencies come from the test venv's site-packages, added by a path
    # line: the .pth files in that directory (the repo's editable install of
    # `inventory` among them) are not run, so `inventory` resolves to the wheel.
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              work).stdout.strip())
    (site_packages / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV")
    }
    env.update(DYNAMODB_ENDPOINT_URL=dynamodb_local, PRICE_REFRESH_ENABLED="false")
    located = _run([python, "-c", "import inventory; print(inventory.__file__)"], work, env=env).stdout.strip()
    assert Path(located).is_relative_to(site_packages), located

    port = free_port()
    log_path = work / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
             "--no-control-socket", "inventory.app:create_app()"],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log_path)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def installed_operations(installed_server) -> list[tuple[str, str]]:
    ops = documented_operations(requests.get(installed_server + "/openapi.json", timeout=10).json())
    assert ("/inventory/assets", "List assets in market-cap-rank order, or filtered and sorted") in ops
    return ops


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_installed_docs_pages_serve_their_assets(installed_server, page):
    response = requests.get(installed_server + page, timeout=10)
    assert response.status_code == 200
    refs = parse_refs(response.text)
    assert refs.scripts
    for ref in refs.urls:
        asset = requests.get(urljoin(installed_server + page, ref), timeout=10)
        assert asset.status_code == 200, ref
        assert asset.content, ref


@needs_chromium
def test_installed_swagger_ui_renders_every_operation(installed_server, installed_operations, tmp_path):
    dom = render(installed_server + "/docs", tmp_path)
    assert foreign(SimpleNamespace(url=installed_server), "/docs", parse_refs(dom).scripts) == []
    for path, summary in installed_operations:
        assert f'data-path="{path}"' in dom, path
        assert html.escape(summary, quote=False) in dom, summary


@needs_chromium
def test_installed_redoc_renders_every_operation(installed_server, installed_operations, tmp_path):
    dom = render(installed_server + "/redoc", tmp_path)
    for path, summary in installed_operations:
        assert path in dom, path
        assert html.escape(summary, quote=False) in dom, summary
