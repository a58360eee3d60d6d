"""The ceiling for the detail endpoint: a bare Flask app answering precomputed bytes.

Served by the same gunicorn (`-c gunicorn.conf.py`) as the real service, it does
the least a Flask app under these settings can do per request: route, wrap a
bytes body of the real BTC response's size in a Response, send it. The real
service's cache-hit detail is measured against it (`python -m bench.http`).

    CEILING_BODY_FILE=/tmp/btc.json CEILING_LIST_BODY_FILE=/tmp/list.json \
        python -m gunicorn -c gunicorn.conf.py bench.ceiling_app:app
"""

from __future__ import annotations

import os

from flask import Flask, Response

BODY: bytes = open(os.environ["CEILING_BODY_FILE"], "rb").read()
# The list page's ceiling: a body of the real first page's size (limit 50).
LIST_BODY: bytes = open(os.environ.get("CEILING_LIST_BODY_FILE", os.environ["CEILING_BODY_FILE"]), "rb").read()

app = Flask(__name__)


@app.get("/health")
def health():
    return Response(b'{"status":"ok"}', mimetype="application/json")


@app.get("/inventory/assets/<asset_id>")
def detail(asset_id: str):
    return Response(BODY, mimetype="application/json")


@app.get("/inventory/assets")
def listing():
    return Response(LIST_BODY, mimetype="application/json")
