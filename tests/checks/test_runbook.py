"""docs/runbook.md has a complete section for every alert in docs/alerts.yml, and nothing stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docs" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
README = ROOT / "README.md"

# A recovery names something to run: the service's endpoints, its CLI, gunicorn
# signals, or the AWS CLI.
_COMMAND_RE = re.compile(r"curl |flask --app wsgi |kill -[A-Z]+|aws [a-z]+ |systemctl ")


def alerts() -> dict[str, str]:
    """Alert name -> severity label."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["labels"]["severity"] for group in groups for rule in group["rules"]}


def runbook_sections(text: str) -> dict[str, str]:
    """`## Heading` -> the text up to the next `## ` heading."""
    sections: dict[str, str] = {}
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        assert heading.strip() not in sections, f"section {heading!r} appears twice"
        sections[heading.strip()] = body
    return sections


def _part(section: str, label: str) -> str:
    """The text after `**label:**`, up to the next bold label."""
    match = re.search(rf"\*\*{label}:\*\*(.*?)(?=\n\*\*[A-Z][a-z ]+:\*\*|\Z)", section, re.S)
    assert match, f"no **{label}:**"
    return match.group(1)


SECTIONS = runbook_sections(RUNBOOK.read_text())


def test_sections_parse_headings_and_bodies():
    sections = runbook_sections("intro\n## A\none\n## B\ntwo\n")
    assert sections == {"A": "\none\n", "B": "\ntwo\n"}


def test_every_alert_has_a_runbook_section():
    missing = sorted(set(alerts()) - set(SECTIONS))
    assert not missing, f"alerts without a section in docs/runbook.md: {missing}"


def test_runbook_has_no_section_for_an_alert_that_is_gone():
    alert_like = {name for name in SECTIONS if re.fullmatch(r"Inventory[A-Za-z0-9]+", name)}
    assert alert_like <= set(alerts()), sorted(alert_like - set(alerts()))


@pytest.mark.parametrize("alert, severity", sorted(alerts().items()))
def test_section_says_meaning_three_first_looks_and_recovery_with_commands(alert, severity):
    section = SECTIONS[alert]
    assert _part(section, "Severity").strip().startswith(severity), alert
    assert len(_part(section, "What it means").split()) >= 10, alert
    looks = re.findall(r"^\s*(\d)\. ", _part(section, "Look at first"), re.M)
    assert looks[:3] == ["1", "2", "3"], (alert, looks)
    assert _COMMAND_RE.search(section), f"{alert}: no command to run"
    assert _part(section, "Recover").strip(), alert


def test_readme_links_the_runbook_and_the_runbook_holds_the_operations_notes():
    assert "](docs/runbook.md)" in README.read_text()
    operations = SECTIONS["Operations"]
    for heading in ("### Health: what `/health/detailed` says", "### Settings are checked before anything starts",
                    "### Worker recycling", "### Asset operation metrics"):
        assert heading in operations, heading
