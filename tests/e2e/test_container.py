"""The Dockerfile, built and run by a dockerd of the test's own: non-root, healthy, serving, graceful stop."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import free_port
from inventory.store import make_client
from tests.e2e.test_wheel_docs import wheel  # noqa: F401  (the fixture: the wheel the image installs)

pytestmark = [pytest.mark.e2e, pytest.mark.container]

REPO = Path(__file__).resolve().parents[2]
BASE_TAR = REPO / ".local" / "container" / "base.tar"  # `make container-base`
WHEELHOUSE = REPO / "dist" / "wheelhouse"  # `make wheelhouse`
BASE_IMAGE = "inventory-test-base:bookworm"
DOCKERD = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
DOCKER = shutil.which("docker")
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "requirements.txt", "gunicorn.conf.py", "wsgi.py")


class Docker:
    def __init__(self, socket_path: Path):
        self.host = f"unix://{socket_path}"

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result


@pytest.fixture(scope="module")
def docker(tmp_path_factory):
    """A dockerd for this module only: overlay2, no bridge or iptables, everything under a temp directory."""
    if DOCKERD is None or DOCKER is None:
        pytest.skip("dockerd is not installed (`make test` installs it: apt-get install docker.io)")
    if not BASE_TAR.is_file():
        pytest.skip(f"{BASE_TAR} is missing (`make container-base` could not build it: see its warning)")
    root = tmp_path_factory.mktemp("docker")
    socket_path = root / "docker.sock"
    log_path = root / "dockerd.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [DOCKERD, "--storage-driver=overlay2", "--iptables=false", "--ip6tables=false", "--bridge=none",
             f"--data-root={root / 'data'}", f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}",
             f"-H=unix://{socket_path}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    client = Docker(socket_path)
    try:
        deadline = time.monotonic() + 30
        while client("info", check=False, timeout=10).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                # The machine cannot run a container engine (no privileges, no overlayfs):
                # an environment limit like a missing browser, not a fault of the image.
                pytest.skip(f"dockerd does not start here:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        # No registry is reachable: the base is a Debian root file system made at set-up time.
        client("import", str(BASE_TAR), BASE_IMAGE)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _unmount_under(root)


def _unmount_under(root: Path) -> None:
    """Unmount what dockerd left mounted under root (its network namespace), or the temp directory stays busy."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def image(docker, wheel, tmp_path_factory) -> str:  # noqa: F811
    assert (WHEELHOUSE / ".installed").is_file(), f"{WHEELHOUSE} is missing: run `make wheelhouse`"
    context = tmp_path_factory.mktemp("context")
    for name in CONTEXT_FILES:
        shutil.copy2(REPO / name, context / name)
    shutil.copytree(WHEELHOUSE, context / "dist" / "wheelhouse")
    shutil.copy2(wheel, context / "dist" / wheel.name)
    tag = f"inventory:test-{uuid.uuid4().hex[:8]}"
    # --network none: the build installs only what the context carries.
    docker("build", "--network", "none", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "-t", tag, str(context),
           timeout=600)
    return tag


@pytest.fixture(scope="module")
def container(docker, image, gunicorn_server, dynamodb_local):
    """The image serving the e2e table on DynamoDB Local (host network: the daemon has no bridge)."""
    port = free_port()
    container_id = docker(
        "run", "--detach", "--network", "host",
        "--env", f"BIND=127.0.0.1:{port}", "--env", f"DYNAMODB_ENDPOINT_URL={dynamodb_local}",
        "--env", f"DYNAMODB_TABLE_NAME={gunicorn_server.table_name}", "--env", "PRICE_REFRESH_ENABLED=false",
        "--env", "AWS_ACCESS_KEY_ID=testing", "--env", "AWS_SECRET_ACCESS_KEY=testing",
        image,
    ).stdout.strip()
    try:
        yield container_id, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "--force", container_id, check=False)


def _inspect(docker, container_id: str) -> dict:
    return json.loads(docker("inspect", container_id).stdout)[0]


def test_image_has_no_dynamodb_local_no_build_stage_leftovers_and_a_non_root_user(docker, image):
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] not in ("", "0", "root", "0:0"), config["User"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    found = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                   "find / -xdev -iname '*dynamodblocal*' -print; test -e /build && echo /build; "
                   "command -v java; id -u")
    lines = found.stdout.split()
    assert lines[-1] != "0" and lines[-1].isdigit(), found.stdout
    assert lines[:-1] == [], f"unexpected in the image: {lines[:-1]}"


def test_container_turns_healthy_and_serves_assets_and_docs(docker, container):
    container_id, url = container
    deadline = time.monotonic() + 90
    while (health := _inspect(docker, container_id)["State"]["Health"]["Status"]) != "healthy":
        assert health in ("starting", "healthy"), docker("logs", container_id).stderr[-3000:]
        assert time.monotonic() < deadline, "not healthy in time"
        time.sleep(1)
    btc = requests.get(url + "/inventory/assets/BTC", timeout=10)
    assert btc.status_code == 200, btc.text
    assert btc.json()["data"]["asset_id"] == "BTC"
    assert requests.get(url + "/static/vendor/swagger-ui/swagger-ui-bundle.js", timeout=10).status_code == 200
    assert "swagger-ui" in requests.get(url + "/docs", timeout=10).text


def test_docker_stop_is_a_graceful_gunicorn_shutdown(docker, container):
    container_id, url = container
    assert requests.get(url + "/health", timeout=10).status_code == 200
    docker("stop", "--time", "30", container_id, timeout=60)
    state = _inspect(docker, container_id)["State"]
    assert state["ExitCode"] == 0, docker("logs", container_id).stderr[-3000:]
    assert "Shutting down: Master" in docker("logs", container_id).stderr


def test_flask_cli_in_the_image_migrates_a_table(docker, image, dynamodb_local):
    table_name = f"container-{uuid.uuid4().hex[:12]}"
    client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_TABLE_NAME=table_name))
    try:
        docker("run", "--rm", "--network", "host", "--env", f"DYNAMODB_ENDPOINT_URL={dynamodb_local}",
               "--env", f"DYNAMODB_TABLE_NAME={table_name}", "--env", "AWS_ACCESS_KEY_ID=testing",
               "--env", "AWS_SECRET_ACCESS_KEY=testing", image, "flask", "--app", "wsgi", "migrate")
        table = client.describe_table(TableName=table_name)["Table"]
        assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {"by_rank", "by_status", "by_category"}
    finally:
        client.delete_table(TableName=table_name)
