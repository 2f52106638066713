"""One FACEMARKET_HOME and one keystore-password rule for every part (services/home.py,
services/keystore_password.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facemarket.agent.config import AgentConfig, ConfigError
from facemarket.cli.home import Home
from facemarket.cli.accounts import stated_password as cli_password
from facemarket.contracts.deployment import deployments_dir
from facemarket.services import gallery


def homes_seen() -> set[Path]:
    """The home folder as the CLI, the agent, the gallery and the deployment files each see it."""
    agent_ledger = AgentConfig(deployment=Path("d.json"), keystore=Path("k.json")).ledger
    return {Home.from_env().root, agent_ledger.parent.parent, gallery.default_path().parent,
            deployments_dir().parent}


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_or_empty_home_is_the_same_default_for_every_part(monkeypatch, value) -> None:
    if value is None:
        monkeypatch.delenv("FACEMARKET_HOME", raising=False)
    else:
        monkeypatch.setenv("FACEMARKET_HOME", value)
    assert homes_seen() == {Path.home() / ".facemarket"}


def test_a_set_home_with_a_tilde_is_the_same_folder_for_every_part(monkeypatch) -> None:
    monkeypatch.setenv("FACEMARKET_HOME", "~/elsewhere")
    assert homes_seen() == {Path.home() / "elsewhere"}


def agent_password(file: Path | None) -> str:
    return AgentConfig(deployment=Path("d.json"), keystore=Path("k.json"), password_file=file).password()


def test_agent_and_cli_both_take_a_named_file_before_the_environment(monkeypatch, tmp_path) -> None:
    file = tmp_path / "password"
    file.write_text("from-file\n")
    monkeypatch.setenv("FACEMARKET_AGENT_PASSWORD", "from-env")
    monkeypatch.setenv("FACEMARKET_PASSWORD", "from-env")
    assert (agent_password(file), cli_password(file)) == ("from-file", "from-file")
    assert (agent_password(None), cli_password(None)) == ("from-env", "from-env")


def test_the_agent_without_file_or_environment_says_what_to_set(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FACEMARKET_AGENT_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="password_file: not set; set it or export FACEMARKET_AGENT_PASSWORD"):
        agent_password(None)
    with pytest.raises(ConfigError, match=r"password_file: cannot read .*missing: No such file"):
        agent_password(tmp_path / "missing")
