"""Where this checkout's `make run` is: written when it starts, read by the CLI in another shell.

`.local/run.json` names its pid, its DynamoDB Local endpoint and (under `make demo`) the
emulator's URL, so `flask --app wsgi refresh` in a second shell reaches the same store and
price source with nothing exported. A file whose pid is gone is ignored (a killed run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .dynamodb_local import REPO

# LOCAL_RUN_FILE moves it (tests, so a test's run never replaces a developer's).
RUN_FILE = Path(os.environ.get("LOCAL_RUN_FILE") or REPO / ".local" / "run.json")


def record(path: Path = RUN_FILE, **where) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), **where}, indent=2) + "\n")


def forget(path: Path = RUN_FILE) -> None:
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():  # only the one this process wrote
            path.unlink()
    except (OSError, ValueError):
        pass


def running(path: Path = RUN_FILE) -> dict | None:
    """What the running `make run` of this checkout recorded, or None (none running)."""
    try:
        where = json.loads(path.read_text())
        os.kill(int(where["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return where
