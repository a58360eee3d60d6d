"""/docs (Swagger UI) and /redoc rendered by headless Chromium from the real gunicorn, offline assets only."""

from __future__ import annotations

import html
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make test` installs it: apt-get install chromium)"
)


class _AssetRefs(HTMLParser):
    """URLs a page loads: script src, stylesheet/preload link href, and ReDoc's spec-url."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag == "redoc" and attrs.get("spec-url"):
            self.urls.append(attrs["spec-url"])


def parse_refs(page: str) -> _AssetRefs:
    parser = _AssetRefs()
    parser.feed(page)
    return parser


def foreign(server, page: str, refs: list[str]) -> list[str]:
    """The refs that resolve to a host other than the server's."""
    host = urlsplit(server.url).netloc
    return [ref for ref in refs if urlsplit(urljoin(server.url + page, ref)).netloc != host]


def render(url: str, tmp_path) -> str:
    """The DOM after Swagger UI / ReDoc ran, as Chromium dumps it."""
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=15000",
            "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def documented_operations(spec: dict) -> list[tuple[str, str]]:
    return [
        (path, op["summary"])
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    ]


@pytest.fixture(scope="module")
def operations(gunicorn_server) -> list[tuple[str, str]]:
    """(path, summary) of every documented operation, from the served spec."""
    ops = documented_operations(gunicorn_server.get("/openapi.json").json())
    assert ("/inventory/assets", "List assets in market-cap-rank order, or filtered and sorted") in ops
    assert any(path == "/inventory/assets/search" for path, _ in ops)
    return ops


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(gunicorn_server, page):
    response = gunicorn_server.get(page)
    assert response.status_code == 200
    assert "cdn" not in response.text.lower()
    refs = parse_refs(response.text)
    assert refs.scripts, "the page loads no script: nothing would render"
    assert foreign(gunicorn_server, page, refs.urls) == []
    for ref in refs.urls:
        # Each asset is really served by us, so the page works offline.
        path = urlsplit(urljoin(gunicorn_server.url + page, ref)).path
        assert gunicorn_server.get(path).status_code == 200, ref


@needs_chromium
def test_swagger_ui_renders_every_operation(gunicorn_server, operations, tmp_path):
    dom = render(gunicorn_server.url + "/docs", tmp_path)
    assert foreign(gunicorn_server, "/docs", parse_refs(dom).scripts) == []
    for path, summary in operations:
        # Swagger UI writes data-path only on operations it has rendered.
        assert f'data-path="{path}"' in dom, path
        assert html.escape(summary, quote=False) in dom, summary


@needs_chromium
def test_redoc_renders_every_operation(gunicorn_server, operations, tmp_path):
    dom = render(gunicorn_server.url + "/redoc", tmp_path)
    assert foreign(gunicorn_server, "/redoc", parse_refs(dom).scripts) == []
    for path, summary in operations:
        assert path in dom, path
        assert html.escape(summary, quote=False) in dom, summary
