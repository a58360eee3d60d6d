"""`make run`: DynamoDB Local (unless told otherwise), migrate, seed, then gunicorn on :8002.

Ctrl-C stops gunicorn and the DynamoDB Local this started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from .dynamodb_local import REPO, DynamoDBLocal


def main() -> int:
    env = dict(os.environ)
    local = None
    if not env.get("DYNAMODB_ENDPOINT_URL") and env.get("USE_REAL_AWS") != "1":
        local = DynamoDBLocal(
            port=int(env.get("DYNAMODB_LOCAL_PORT", "8000")), db_path=REPO / ".local" / "dynamodb-data"
        ).start()
        env["DYNAMODB_ENDPOINT_URL"] = local.endpoint
        print(f"DynamoDB Local on {local.endpoint} (data in .local/dynamodb-data)", flush=True)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    try:
        subprocess.run([*flask, "migrate"], env=env, cwd=REPO, check=True)
        subprocess.run([*flask, "seed"], env=env, cwd=REPO, check=True)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env=env, cwd=REPO
        )
        # Ctrl-C reaches gunicorn too (same process group); SIGTERM is passed on.
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        while True:
            try:
                return server.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if local:
            local.stop()


if __name__ == "__main__":
    sys.exit(main())
