"""Malformed bodies and transfer encodings over raw sockets against the real gunicorn: 4xx, never 5xx."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import simplejson

pytestmark = pytest.mark.e2e

BATCH_GET = "/inventory/assets/batch-get"


def exchange(server, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send `raw` on a new connection, half-close it, and read the answer: (status, body)."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as conn:
        try:
            conn.sendall(raw)
            # Our end of the body is over: a reader waiting for more gets end-of-file.
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered (a 401, say) and closed before reading it all
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: inventory", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


JSON = {"Content-Type": "application/json"}
CHUNKED = {**JSON, "Transfer-Encoding": "chunked"}
MALFORMED = {
    "chunk size zz": (CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n"),
    "negative chunk size": (CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk missing its terminator": (CHUNKED, b"5\r\nhelloXX0\r\n\r\n"),
    "chunk longer than the data": (CHUNKED, b"ff\r\n{}"),
    "no last chunk": (CHUNKED, b"2\r\n{}\r\n"),
    "bad chunk extension": (CHUNKED, b"2;\x00\r\n{}\r\n0\r\n\r\n"),
    "body shorter than Content-Length": ({**JSON, "Content-Length": "100"}, b'{"ids": ["BTC"]}'),
    "deeply nested chunked JSON": (CHUNKED, b"%x\r\n" % 100_000 + b"[" * 100_000 + b"\r\n0\r\n\r\n"),
    "deeply nested JSON": ({**JSON, "Content-Length": "100000"}, b"[" * 100_000),
    "not UTF-8": ({**JSON, "Content-Length": "4"}, b"\xff\xfe{}"),
}


@pytest.mark.parametrize("case", MALFORMED)
@pytest.mark.parametrize(("method", "path"), [("POST", BATCH_GET), ("PATCH", "/inventory/assets/BTC/status")])
def test_malformed_bodies_are_4xx_never_5xx(gunicorn_server, case, method, path):
    headers, body = MALFORMED[case]
    status, payload = exchange(gunicorn_server, request(method, path, headers, body))
    assert status < 500, (case, status, payload[:300])
    if case != "body shorter than Content-Length":  # gunicorn hands over what came; it may parse
        assert status >= 400, (case, status)
    if method == "PATCH":
        assert status in (400, 401), case  # no token: refused before the body is read, or by gunicorn's parser


def test_chunk_size_zz_read_by_the_app_is_400_in_our_shape(gunicorn_server):
    headers, body = MALFORMED["chunk size zz"]
    status, payload = exchange(gunicorn_server, request("POST", BATCH_GET, headers, body))
    assert status == 400
    error = simplejson.loads(payload)
    assert error["code"] == 400 and error["request_id"]
    assert "could not be read" in error["message"]
    assert "Traceback" not in gunicorn_server.log_tail(20_000)


def test_a_well_formed_chunked_body_is_served(gunicorn_server):
    body = b'{"ids": ["btc", "NOPE"]}'
    raw = request("POST", BATCH_GET, CHUNKED, b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    status, payload = exchange(gunicorn_server, raw)
    assert status == 200
    result = simplejson.loads(payload)
    assert [a["asset_id"] for a in result["data"]] == ["BTC"] and result["not_found"] == ["NOPE"]
