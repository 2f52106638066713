"""`facemarket agent init` writes what the agent needs to run (issue 11, finding 11 in part): the
keystore's password file, apart from the keystore, and the secret it shares with the services;
both 0600 in a 0700 folder, the password never printed. Through the CLI (tests/fixtures/cli.py).
"""

from __future__ import annotations

import stat
import urllib.request
from pathlib import Path

from facemarket.agent.config import load_config

PASSWORD = "correct horse battery staple"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def init(fm, home: Path, *options: str, password_env: str | None = None, typed: str | None = None):
    env = {"FACEMARKET_HOME": str(home), **({"FACEMARKET_AGENT_PASSWORD": password_env} if password_env else {})}
    deployment, keystore = home / "deployment.json", home / "keystores" / "agent.json"
    for path in (deployment, keystore):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return fm("agent", "init", "--deployment", str(deployment), "--keystore", str(keystore), *options,
              env=env, input=typed)


def test_init_asks_for_the_password_and_writes_it_apart_from_the_keystore(fm, tmp_path, monkeypatch):
    monkeypatch.delenv("FACEMARKET_AGENT_PASSWORD", raising=False)
    run = init(fm, tmp_path, typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert run.code == 0, run.err
    assert PASSWORD not in run.out and PASSWORD not in run.err  # the prompt hides what is typed

    secrets = tmp_path / "secrets"
    password_file, secret_file = secrets / "agent.password", secrets / "services.secret"
    assert (mode(secrets), mode(password_file), mode(secret_file)) == (0o700, 0o600, 0o600)
    assert password_file.read_text() == PASSWORD + "\n"
    assert not list((tmp_path / "keystores").glob("*.password"))  # not next to the keystore
    assert len(secret_file.read_text().strip()) == 64  # 32 random bytes, hex

    config = load_config(tmp_path / "agent.toml", env={})
    assert (config.password_file, config.services_secret_file) == (password_file, secret_file)
    assert config.password() == PASSWORD
    assert config.services_secret() == secret_file.read_text().strip().encode()


def test_init_takes_the_password_from_the_environment_and_keeps_existing_files(fm, tmp_path):
    first = init(fm, tmp_path, password_env=PASSWORD)
    assert first.code == 0, first.err
    secret = (tmp_path / "secrets" / "services.secret").read_text()

    # a second agent config on the same home: the password file and the secret already shared
    # with running services are kept, not replaced
    again = init(fm, tmp_path, "--config", str(tmp_path / "second.toml"), password_env="another password")
    assert again.code == 0, again.err
    assert "kept" in again.out
    assert (tmp_path / "secrets" / "agent.password").read_text() == PASSWORD + "\n"
    assert (tmp_path / "secrets" / "services.secret").read_text() == secret


def test_an_existing_config_is_refused_before_any_password_is_asked(fm, tmp_path):
    (tmp_path / "agent.toml").write_text("")
    run = init(fm, tmp_path, typed="")
    assert run.code != 0 and "exists" in run.err
    assert not (tmp_path / "secrets").exists()


def test_agent_run_starts_from_the_files_init_wrote(market_stack):
    """The local market's agent was configured by `agent init` alone (no password file of its own)
    and serves: `agent run` reads the password file init wrote."""
    secrets = market_stack.home / "secrets"
    assert mode(secrets / "agent.password") == 0o600 and mode(secrets / "services.secret") == 0o600
    assert not (market_stack.workdir / "agent.password").exists()
    with urllib.request.urlopen(market_stack.agent_url + "health", timeout=10) as response:
        assert response.status == 200
