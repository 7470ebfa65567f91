"""Every command and every config key is documented: docs/reference.md is generated and must be current."""

from __future__ import annotations

from pathlib import Path

from edge_agent.ops.reference import cli_parsers, commands, config_sections, render

REPO = Path(__file__).resolve().parents[2]


def test_reference_is_current() -> None:
    committed = (REPO / "docs" / "reference.md").read_text()
    assert committed == render(), "run: python -m edge_agent.ops.reference > docs/reference.md"


def test_every_key_is_in_the_reference() -> None:
    text = render()
    for _, model in config_sections():
        for name in model.model_fields:
            assert f"| `{name}` |" in text


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for prog, parser in cli_parsers():
        for line, _, _ in commands(parser, prog):
            assert f"`{line}" in readme, f"README does not mention `{line}`"
