"""The agent's advice on registering states the price in tokens at the decimals the token
contract states on chain (as the CLI reads them), not at a number typed into the agent."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from facemarket.agent.escrow_reader import connect
from facemarket.agent.config import AgentConfig
from facemarket.agent.startup import check_registration
from facemarket.contracts.bind import bind


def test_the_register_advice_prices_in_tokens_read_from_the_chain(chain, deployment, caplog) -> None:
    config = AgentConfig(deployment=Path("d.json"), keystore=Path("k.json"), provider="nobody-here",
                         price=123_450_000)

    async def check() -> tuple[bool, int]:
        contracts = bind(connect(chain.url), deployment)
        registered = await check_registration(contracts.registry, contracts.token, "0x" + "11" * 20, config, b"\0" * 32)
        return registered, await contracts.token.functions.decimals().call()

    with caplog.at_level(logging.WARNING, logger="facemarket.agent.startup"):
        registered, decimals = asyncio.run(check())
    assert (registered, decimals) == (False, 8)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "'nobody-here/face-services' is not registered" in warning
    assert "--price 1.2345`" in warning
