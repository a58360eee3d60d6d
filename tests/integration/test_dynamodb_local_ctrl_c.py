"""A Ctrl-C at make run's terminal stops gunicorn first; DynamoDB Local lives until its owner stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.integration

# The owner (like make run's runner): start DynamoDB Local, say its pid, and on
# Ctrl-C report whether it is still answering before stopping it in `finally`.
OWNER = """
import sys, time, urllib.request
from inventory.devtools.dynamodb_local import DynamoDBLocal
local = DynamoDBLocal().start()
print(local.process.pid, flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    time.sleep(0.5)  # what gunicorn's graceful exit and the lease release take, at least
    alive = local.process.poll() is None
    print("alive" if alive else "dead", flush=True)
finally:
    local.stop()
"""


def test_ctrl_c_to_the_terminal_group_does_not_kill_dynamodb_local():
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        java_pid = int(owner.stdout.readline())
        # WHEN the terminal's Ctrl-C reaches the owner's whole process group
        os.killpg(owner.pid, signal.SIGINT)
        # THEN DynamoDB Local was still running when the owner looked, and is stopped by it afterwards
        assert owner.stdout.readline().strip() == "alive"
        owner.wait(timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(java_pid):
            time.sleep(0.1)
        assert not _running(java_pid)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of an exited owner is reaped by init; treat it as stopped.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"
