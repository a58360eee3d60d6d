"""Append benchmark tables to BENCHMARKS.md, newest first, with machine, command and date."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
TITLE = "# Benchmarks\n\nNewest first; earlier tables stay below so regressions show.\n"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"


def write_section(title: str, command: str, header: list[str], rows: list[list[str]], notes: str = "") -> str:
    lines = [
        f"## {title}",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    if notes:
        lines += [notes, ""]
    section = "\n".join(lines)
    previous = BENCHMARKS.read_text() if BENCHMARKS.exists() else TITLE
    body = previous[len(TITLE):] if previous.startswith(TITLE) else previous
    BENCHMARKS.write_text(TITLE + "\n" + section + "\n" + body.lstrip("\n"))
    print(section)
    return section
