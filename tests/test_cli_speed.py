"""`facemarket --help` answers without importing any command: its list comes from cli/main.py's
summaries, which must stay each command's own first sentence."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from facemarket.cli.main import COMMANDS, SUMMARIES, cli
from facemarket.cli.ui import first_sentence


def test_every_command_has_a_summary_and_every_summary_a_command():
    assert set(SUMMARIES) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_summary_is_the_commands_own(name):
    command = cli.get_command(click.Context(cli), name)
    assert SUMMARIES[name] == first_sentence(command.help)


def test_help_lists_every_command_without_importing_any():
    done = subprocess.run([sys.executable, "-c", """
import json, sys
from facemarket.cli.main import cli
try:
    cli(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    help_text, modules = done.stdout.rsplit("\n", 2)[:2]
    loaded = json.loads(modules)
    assert [m for m in loaded if m.startswith(("facemarket.cli.commands", "web3", "eth_account"))] == []
    for name in COMMANDS:
        assert f"  {name} " in help_text
    assert "Accounts: encrypted keystore files" in help_text
