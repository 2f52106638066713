"""Every group's help lists each command's first sentence whole: click's own short help cut it
to the terminal's width ("…") and at the "." of "e.g." (`token --help` read "Mint AMOUNT tokens
(e.g.")."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from facemarket.cli.main import COMMANDS, cli
from facemarket.cli.ui import first_sentence


def listed(help_text: str) -> dict[str, str]:
    """name -> summary of a help page's Commands section, wrapped lines joined."""
    rows: dict[str, str] = {}
    name = ""
    for line in help_text.split("Commands:\n", 1)[1].splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.split():
            name, _, text = line.strip().partition(" ")
            rows[name] = text.strip()
        elif line.strip():
            rows[name] += " " + line.strip()
    return rows


GROUPS = ["", *sorted(name for name in COMMANDS
                      if isinstance(cli.get_command(click.Context(cli), name), click.Group))]


@pytest.mark.parametrize("group", GROUPS)
def test_each_listed_summary_is_the_commands_whole_first_sentence(group):
    command = cli if not group else cli.get_command(click.Context(cli), group)
    page = CliRunner().invoke(cli, [*([group] if group else []), "--help"], terminal_width=60)
    assert page.exit_code == 0, page.output
    rows = listed(page.output)
    assert set(rows) == set(command.list_commands(click.Context(command)))
    for name, text in rows.items():
        sub = command.get_command(click.Context(command), name)
        assert text == first_sentence(sub.help), (group, name, text)
        assert not text.endswith("...")


def test_token_help_says_the_whole_mint_summary():
    page = CliRunner().invoke(cli, ["token", "--help"], terminal_width=60).output
    assert "Mint AMOUNT tokens (e.g. 10 or 0.5) to TO (account name or address); owner only." in \
        " ".join(page.split())


@pytest.mark.parametrize("text, sentence", [
    ("One. Two.", "One."),
    ("Mint (e.g. 10) now. More.", "Mint (e.g. 10) now."),
    ("That is, i.e. this one.\n\nDetails.", "That is, i.e. this one."),
    ("No full stop at all", "No full stop at all"),
    ("Version 1.5 is out. Yes.", "Version 1.5 is out."),
    ("Wrapped\n    over lines. Next.", "Wrapped over lines."),
])
def test_first_sentence(text, sentence):
    assert first_sentence(text) == sentence
