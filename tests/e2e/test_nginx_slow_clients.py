"""nginx with docs/nginx/inventory.conf in front of the real gunicorn: slow clients cannot starve reads."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _wait_until_healthy as wait_until_healthy

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SITE_CONF = REPO / "docs" / "nginx" / "inventory.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (`make test` installs it: apt-get install nginx-light)"
)

SLOW_CLIENTS = 50
READS = 200
READ_TIMEOUT = 2.0  # each read through the proxy must answer within this
WARM_UP = 3.0  # the slow clients are mid-request before the reads start
HEADER_TIMEOUT = 10.0  # client_header_timeout in the site file
READ_PATHS = ("/inventory/assets/BTC", "/inventory/assets?limit=5", "/inventory/assets/ETH")


def render_nginx_config(directory: Path, port: int, upstream: str, streams: str = "127.0.0.1:9") -> Path:
    """The site file with only the listen port, upstreams and log path changed, inside a runnable nginx.conf."""
    site = SITE_CONF.read_text()
    for pattern, replacement in [
        (r"listen 80;", f"listen 127.0.0.1:{port};"),
        (r"server 127\.0\.0\.1:8002;", f"server {upstream};"),
        (r"server 127\.0\.0\.1:8012;", f"server {streams};"),
        (r"access_log /var/log/nginx/inventory\.access\.log", f"access_log {directory}/access.log"),
    ]:
        site, count = re.subn(pattern, replacement, site)
        assert count == 1, f"{pattern!r} is not in {SITE_CONF} once"
    (directory / "inventory.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would drop to an account that cannot write the
    # temp directories in this (0700) test directory.
    user = "user root;" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
{temp_paths}
    include {directory}/inventory.conf;
}}
"""
    )
    return main


@pytest.fixture(scope="module")
def nginx_proxy(gunicorn_server, tmp_path_factory):
    """nginx (no root needed, nothing outside a temp directory) in front of the module's gunicorn."""
    if NGINX is None:
        pytest.skip("nginx is not installed")
    with running_nginx(tmp_path_factory.mktemp("nginx"), gunicorn_server.url.removeprefix("http://")) as url:
        yield url


@contextlib.contextmanager
def running_nginx(directory: Path, upstream: str, streams: str = "127.0.0.1:9"):
    """nginx with the site file (rendered into `directory`) on a free port: its URL."""
    port = free_port()
    conf = render_nginx_config(directory, port, upstream, streams)
    error_log = directory / "error.log"
    check = subprocess.run([NGINX, "-t", "-p", str(directory), "-c", str(conf), "-e", str(error_log)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(conf), "-e", str(error_log)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, error_log)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SlowClients:
    """`count` connections that each send a request one byte a second; a connection the server drops is reopened.

    Half of them trickle their headers (a header line that never ends in time),
    half send whole headers at once and then trickle a JSON body.
    """

    SLOW_HEADERS = b"GET /inventory/assets?limit=5 HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 600
    BODY_HEADERS = (
        b"POST /inventory/assets/batch-get HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
        b"Content-Length: 400\r\n\r\n"
    )
    SLOW_BODY = BODY_HEADERS + b'{"ids": ["BTC"' + b" " * 384 + b"]}"

    def __init__(self, address: tuple[str, int], count: int):
        self.address = address
        self.payloads = [self.SLOW_HEADERS if i % 2 == 0 else self.SLOW_BODY for i in range(count)]
        self.dropped = 0  # connections the server closed (or answered) before the request was complete
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return sock

    @staticmethod
    def _closed_by_server(sock: socket.socket) -> bool:
        try:
            sock.recv(1, socket.MSG_PEEK)  # b"" (closed) or the start of an answer such as a 408
            return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _run(self) -> None:
        # [socket, payload, bytes sent]
        conns = [[self._open(), payload, 0] for payload in self.payloads]
        while not self._stop.is_set():
            for conn in conns:
                sock, payload, sent = conn
                if sent == 0 and payload is self.SLOW_BODY:
                    chunk = self.BODY_HEADERS
                else:
                    chunk = payload[sent:sent + 1]
                try:
                    if self._closed_by_server(sock):
                        raise ConnectionResetError
                    sock.send(chunk)
                    conn[2] = sent + len(chunk)
                except OSError:
                    self.dropped += 1
                    sock.close()
                    conn[0], conn[2] = self._open(), 0
            self._stop.wait(1.0)
        for sock, _, _ in conns:
            sock.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def timed_reads(base_url: str, count: int) -> list[float | None]:
    """Sequential GETs, each on a new connection; the seconds each took, None for no 200 within READ_TIMEOUT."""
    took: list[float | None] = []
    for i in range(count):
        started = time.monotonic()
        try:
            ok = requests.get(base_url + READ_PATHS[i % len(READ_PATHS)], timeout=READ_TIMEOUT).status_code == 200
        except requests.RequestException:
            ok = False
        took.append(time.monotonic() - started if ok else None)
    return took


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@needs_nginx
def test_proxy_passes_reads_conditional_gets_and_bodies(nginx_proxy):
    response = requests.get(nginx_proxy + "/inventory/assets/BTC", timeout=5)
    assert response.status_code == 200
    assert response.json()["data"]["asset_id"] == "BTC"
    assert response.headers["X-Request-ID"]
    revalidated = requests.get(
        nginx_proxy + "/inventory/assets/BTC", headers={"If-None-Match": response.headers["ETag"]}, timeout=5
    )
    assert revalidated.status_code == 304
    batch = requests.post(nginx_proxy + "/inventory/assets/batch-get", json={"ids": ["BTC", "NOPE1"]}, timeout=5)
    assert batch.status_code == 200
    assert batch.json()["not_found"] == ["NOPE1"]


@needs_nginx
def test_proxy_refuses_bodies_over_max_content_length_unread(nginx_proxy):
    response = requests.post(
        nginx_proxy + "/inventory/assets/batch-get", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    assert response.status_code == 413


@needs_nginx
def test_slow_clients_leave_reads_through_the_proxy_unharmed(nginx_proxy, gunicorn_server):
    # GIVEN 50 clients trickling requests at the proxy
    started = time.monotonic()
    with SlowClients(_address(nginx_proxy), SLOW_CLIENTS) as slow:
        time.sleep(WARM_UP)
        # WHEN 200 new clients read through the proxy, one after another
        took = timed_reads(nginx_proxy, READS)
        # (and the slow ones keep going past the proxy's header timeout)
        time.sleep(max(0.0, started + HEADER_TIMEOUT + 3 - time.monotonic()))
        dropped = slow.dropped
    answered = [t for t in took if t is not None]
    answered.sort()
    print(f"\nwith nginx: {len(answered)}/{READS} reads answered within {READ_TIMEOUT} s; "
          f"p50 {answered[len(answered) // 2] * 1000:.0f} ms, max {answered[-1] * 1000:.0f} ms; "
          f"nginx dropped {dropped} slow connections")
    # THEN every read answered 200 in time
    assert len(answered) == READS, f"{READS - len(answered)} reads got no 200 within {READ_TIMEOUT} s"
    # AND nginx, not gunicorn, cut off the clients whose headers never finished
    assert dropped >= SLOW_CLIENTS // 2, dropped


@needs_nginx
def test_slow_clients_without_the_proxy_measured(gunicorn_server, nginx_proxy):
    """The same slow clients straight at gunicorn: measured and printed, not asserted (the harm the proxy removes)."""
    reads = 30  # each unanswered one costs READ_TIMEOUT
    with SlowClients(_address(gunicorn_server.url), SLOW_CLIENTS):
        time.sleep(WARM_UP)
        took = timed_reads(gunicorn_server.url, reads)
    answered = sum(t is not None for t in took)
    print(f"\nwithout nginx: {answered}/{reads} reads answered within {READ_TIMEOUT} s "
          f"({gunicorn_server.workers} workers x 4 threads, {SLOW_CLIENTS} slow clients)")
    # Afterwards gunicorn serves again (the slow connections are closed), so the
    # measurement harmed nothing that later tests use.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(gunicorn_server.url + "/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.5)
    else:
        pytest.fail("gunicorn did not recover after the slow clients left")
