"""The price refresher's own process, spawned by the gunicorn master so the master never runs a thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from ..config import Config

# Why a process and not threads in the master: gunicorn forks workers from the
# master (at start, on SIGHUP, SIGTTIN, max_requests, a timed-out worker), and a
# fork copies every lock in the state some other thread left it in. The refresh
# thread held prometheus_client's multiprocess value lock (a plain Lock that is
# not re-made after fork) whenever it counted a DynamoDB or CoinGecko call; a
# worker forked in that instant blocks for good on its first metric update, so
# its request threads hang while its main loop keeps heart-beating (the master
# never kills it), and a SIGHUP then waits graceful_timeout for it to drain.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# The config is read here, by the one function that reads it (the jobs take it as an argument).
_MAIN = "from inventory.jobs.scheduler import main; from inventory.settings import load_config; main(load_config())"


def instance_id(config: Config) -> str:
    """This instance's name in the refresh lease: the master's host and pid, unless configured."""
    return config.INSTANCE_ID or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RefresherProcess:
    """`inventory.jobs.scheduler.main` in a child process, refreshing in the name of this process."""

    def __init__(self, process: subprocess.Popen):
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def spawn(cls, config: Config) -> RefresherProcess:
        env = dict(os.environ)
        # The lease names the master (the instance), whatever process refreshes for it.
        env["INSTANCE_ID"] = instance_id(config)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        # fork+exec in one step (posix_spawn/vfork): nothing of this process runs in the child.
        # Not `-m inventory.jobs.scheduler`: that module would run as __main__ (and log as such).
        return cls(subprocess.Popen([sys.executable, "-c", _MAIN], env=env))

    def stop(self, timeout: float) -> int | None:
        """SIGTERM (the refresher finishes its run and hands the lease back), SIGKILL after `timeout`."""
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
