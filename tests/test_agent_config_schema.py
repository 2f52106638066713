"""The agent config's one schema: the template `agent init` writes is generated from the
dataclass fields (help, section, default), and values convert by each field's real type."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from facemarket.agent.config import AgentConfig, ConfigError, load_config, template

PATHS = ("deployment", "keystore", "password_file", "services_secret_file", "ledger")


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in PATHS}
    for name in ("deployment", "keystore"):
        paths[name].write_text("{}")
    return paths


def test_the_template_holds_every_key_with_its_help_and_loads_to_the_defaults(files):
    text = template(chain_url="http://127.0.0.1:8545", **files)
    written = tomllib.loads(text)
    assert set(written) == {f.name for f in dataclasses.fields(AgentConfig)}
    for f in dataclasses.fields(AgentConfig):
        for line in f.metadata["help"].splitlines():
            assert f"# {line}\n" in text, f.name
    config = load_config_text(text, files["deployment"].parent)
    for f in dataclasses.fields(AgentConfig):
        if f.name in PATHS:
            assert getattr(config, f.name) == files[f.name]
        elif f.name == "prices":
            assert config.prices == f.metadata["example"]
        else:
            assert getattr(config, f.name) == f.default, f.name


def load_config_text(text: str, folder: Path, env: dict[str, str] | None = None) -> AgentConfig:
    path = folder / "agent.toml"
    path.write_text(text)
    return load_config(path, env=env or {})


@pytest.mark.parametrize("key, value, expected", [
    ("listen_port", "8080", 8080), ("follow_interval", "0.25", 0.25), ("spec_file", "", None),
    ("password_file", "~/pw", Path("~/pw").expanduser()), ("prices", "ping=2,find_face=3", {"ping": 2, "find_face": 3}),
    ("log_level", "DEBUG", "DEBUG"),
])
def test_environment_values_convert_by_the_fields_type(files, key, value, expected):
    config = load_config_text(template(chain_url="http://127.0.0.1:8545", **files), files["deployment"].parent,
                              env={f"FACEMARKET_AGENT_{key.upper()}": value})
    assert getattr(config, key) == expected


@pytest.mark.parametrize("key, value, message", [
    ("listen_port", "eighty", "listen_port: 'eighty' is not valid"),
    ("listen_port", "1.5", "listen_port: '1.5' is not valid"),
    ("listen_port", "0", "listen_port: must be greater than 0, got 0"),
    ("price", "-1", "price: cannot be negative, got -1"),
    ("claim_interval", "nan-ish", "claim_interval: 'nan-ish' is not valid"),
    ("prices", "ping", "prices: 'ping' is not valid"),
    ("prices", "find_face:algorithm=1", "prices:"),
])
def test_wrong_values_stop_with_one_line_naming_the_key(files, key, value, message):
    with pytest.raises(ConfigError) as raised:
        load_config_text(template(chain_url="http://127.0.0.1:8545", **files), files["deployment"].parent,
                         env={f"FACEMARKET_AGENT_{key.upper()}": value})
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
