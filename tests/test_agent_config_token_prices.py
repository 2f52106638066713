"""Issue 17 (9): the agent's config takes prices in tokens, as the CLI speaks them ("0.01 FACE"),
beside token units (old configs keep working), with one clear line for what is neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from facemarket.agent.config import ConfigError, load_config
from facemarket.agent.token_prices import TOKEN_DECIMALS, TOKEN_SYMBOL
from facemarket.contracts.bind import bind


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("d.json", "k.json"):
        (tmp_path / name).write_text("{}")
    return tmp_path


def config_of(files: Path, body: str, env: dict[str, str] | None = None):
    path = files / "agent.toml"
    path.write_text(f'deployment = "{files / "d.json"}"\nkeystore = "{files / "k.json"}"\n{body}')
    return load_config(path, env=env or {})


def test_prices_in_tokens_are_the_same_as_in_units(files):
    tokens = config_of(files, 'price = "0.01 FACE"\n[prices]\nfind_face = "0.02 FACE"\n'
                              '"find_face:algorithm=dlib_cnn" = "1 FACE"\nping = "0.00000001 face"\n')
    units = config_of(files, 'price = 1000000\n[prices]\nfind_face = 2000000\n'
                             '"find_face:algorithm=dlib_cnn" = 100000000\nping = 1\n')
    assert tokens == units
    assert tokens.price_of("face_identity") == 1_000_000
    assert tokens.price_of("find_face", {"algorithm": "dlib_cnn"}) == 100_000_000


def test_prices_in_tokens_from_the_environment(files):
    config = config_of(files, "", env={"FACEMARKET_AGENT_PRICE": "0.5 FACE",
                                       "FACEMARKET_AGENT_PRICES": "find_face=1 FACE,ping=7"})
    assert config.price == 50_000_000 and config.prices == {"find_face": 100_000_000, "ping": 7}
    assert config_of(files, "", env={"FACEMARKET_AGENT_PRICE": "1000000"}).price == 1_000_000


@pytest.mark.parametrize("value, says", [
    ('"0.01"', "neither token units (a whole number, e.g. 1000000) nor tokens with the symbol"),
    ('"0.01 AGI"', "0.01 AGI: the token is FACE"),
    ('"0.000000001 FACE"', "at most 8 decimals"),
    ('"-1 FACE"', "cannot be negative"),
    ('"abc FACE"', "'abc' is not an amount of FACE"),
    ('"nan FACE"', "'nan' is not an amount of FACE"),
    ('"1 FACE extra"', "neither token units"),
    ("1.5", "write a price as whole token units (1000000) or as tokens with the symbol"),
    ("true", "write a price as whole token units"),
])
def test_a_price_that_is_neither_units_nor_tokens_stops_with_one_line(files, value, says):
    for body, key in ((f"price = {value}\n", "price"), (f"[prices]\nping = {value}\n", "prices")):
        with pytest.raises(ConfigError) as error:
            config_of(files, body)
        assert str(error.value).startswith(f"{key}:") and says in str(error.value), str(error.value)
        assert "\n" not in str(error.value)


def test_the_token_states_the_symbol_and_decimals_the_config_assumes(chain, deployment):
    token = bind(Web3(Web3.HTTPProvider(chain.url)), deployment).token.functions
    assert (token.symbol().call(), token.decimals().call()) == (TOKEN_SYMBOL, TOKEN_DECIMALS)
