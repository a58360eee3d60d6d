"""Start and stop Amazon DynamoDB Local (the Java jar installed by `make`), for dev, tests and benches.

The jar comes from the npm package amplify-dynamodb-simulator at set-up time
(`make dynamodb-local`); its licence forbids committing it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HOME = REPO / ".local" / "dynamodb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DynamoDBLocal:
    """One DynamoDB Local process on a loopback port: in memory, or persisted to `db_path`."""

    def __init__(self, port: int | None = None, db_path: Path | None = None, home: Path | None = None):
        self.home = Path(os.environ.get("DYNAMODB_LOCAL_HOME", home or DEFAULT_HOME))
        self.port = port or free_port()
        self.db_path = db_path
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        jar = self.home / "DynamoDBLocal.jar"
        if not jar.exists():
            raise FileNotFoundError(f"{jar} is missing: run `make dynamodb-local` first")
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        return [
            "java",
            "-Xmx512m",
            f"-Djava.library.path={self.home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-port",
            str(self.port),
            # One database whatever the region or access key a client uses.
            "-sharedDb",
            "-disableTelemetry",
            *storage,
        ]

    def start(self, timeout: float = 60.0) -> "DynamoDBLocal":
        if self.db_path:
            Path(self.db_path).mkdir(parents=True, exist_ok=True)
        # Its own session: a Ctrl-C at the terminal reaches the whole foreground
        # group at once, and the store must outlive gunicorn's shutdown (the
        # refresher releases its lease on the way out); its owner stops it last.
        self.process = subprocess.Popen(
            self.command(), cwd=self.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError("DynamoDB Local did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "DynamoDBLocal":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
