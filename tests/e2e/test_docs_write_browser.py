"""A write from the docs page: headless Chromium opens /docs, presses Authorize, enters a token and PATCHes a status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests
import websocket

from inventory.devtools.dynamodb_local import free_port
from inventory.services.tokens import hash_token

from .conftest import _flask, _stop, start_gunicorn

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium")
TOKEN = "inv_docs-page-operator-token"
STEP_TIMEOUT = 30.0


class Page:
    """One Chromium tab driven over the DevTools protocol: evaluate JavaScript, wait for conditions."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=STEP_TIMEOUT, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str):
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; page text: {self.js('document.body.innerText')[-2000:]}")

    def click(self, selector: str, what: str) -> None:
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", what)
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def type(self, selector: str, text: str, what: str) -> None:
        """Set a React-controlled input's value the way typing would (the native setter, then an input event)."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", what)
        self.js(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            const proto = el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
            Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, {json.dumps(text)});
            el.dispatchEvent(new Event('input', {{bubbles: true}}));
            el.dispatchEvent(new Event('change', {{bubbles: true}}));
        }})()""")
        # Swagger UI debounces its inputs; typing on before the state settles can lose a value.
        time.sleep(0.5)


@pytest.fixture
def server(dynamodb_local, tmp_path):
    """gunicorn (one worker) on a seeded table, with an operator token that may write."""
    table = f"e2e-docs-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": dynamodb_local, "DYNAMODB_TABLE_NAME": table,
           "PRICE_REFRESH_ENABLED": "false", "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    _flask(["migrate"], env)
    _flask(["seed"], env)
    tokens = [{"name": "docs-operator", "scopes": ["assets:write"], "hash": hash_token(TOKEN)}]
    (tmp_path / "metrics").mkdir()
    env.update(API_TOKENS=json.dumps(tokens), BIND=f"127.0.0.1:{free_port()}", WEB_CONCURRENCY="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), GUNICORN_CMD_ARGS="--no-control-socket")
    process, url = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture
def page(tmp_path):
    port = free_port()
    chromium = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                tab = next(t for t in targets if t["type"] == "page")
                break
            except (requests.RequestException, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        page = Page(tab["webSocketDebuggerUrl"])
        yield page
        page.ws.close()
    finally:
        chromium.terminate()
        try:
            chromium.wait(timeout=10)
        except subprocess.TimeoutExpired:
            chromium.kill()
            chromium.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_a_status_change_made_from_swagger_ui_with_authorize(server, page):
    # GIVEN the ETag of BTC, as an operator reads it before a change
    etag = requests.get(server + "/inventory/assets/BTC", timeout=10).headers["ETag"]
    page.call("Page.enable")
    page.call("Page.navigate", url=server + "/docs")
    patch = "#operations-assets-patch_inventory_assets__asset_id__status"
    page.wait_for(f"!!document.querySelector({json.dumps(patch)})", "the PATCH operation to render")

    # WHEN the operator presses Authorize, enters the token and closes the dialog
    page.click(".auth-wrapper .authorize", "the Authorize button")
    page.type(".auth-container input", TOKEN, "the token field")
    page.click(".auth-btn-wrapper .modal-btn.authorize", "the dialog's Authorize button")
    page.wait_for("!!document.querySelector('.auth-btn-wrapper .btn-done')", "the token to be accepted")
    page.click(".auth-btn-wrapper .btn-done", "the Close button")

    # AND opens the status change, tries it out with asset id, If-Match and a body, and executes it
    page.click(f"{patch} .opblock-summary-control", "the PATCH operation")
    page.click(f"{patch} .try-out__btn", "Try it out")
    page.type(f'{patch} tr[data-param-name="asset_id"] input', "BTC", "the asset_id field")
    page.type(f'{patch} tr[data-param-name="If-Match"] input', etag, "the If-Match field")
    body = json.dumps({"status": "SUSPENDED", "reason": "suspended from the docs page"})
    page.type(f"{patch} textarea.body-param__text", body, "the request body")
    page.click(f"{patch} .execute", "Execute")
    status = page.wait_for(
        f"(document.querySelector('{patch} .live-responses-table tr.response .response-col_status') || {{}}).innerText",
        "the response",
    )

    # THEN the page shows 200 and the change is stored, made by the token's name
    assert status.strip().startswith("200"), page.js(f"document.querySelector({json.dumps(patch)}).innerText")
    asset = requests.get(server + "/inventory/assets/BTC", timeout=10).json()["data"]
    assert asset["status"] == "SUSPENDED"
    audit = requests.get(server + "/inventory/assets/BTC/audit", timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()["data"]
    assert audit[0]["actor"] == "docs-operator" and audit[0]["reason"] == "suspended from the docs page"
