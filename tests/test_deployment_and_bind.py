"""The deployment file round-trips, and bind() gives working contracts for Web3 and AsyncWeb3."""

from __future__ import annotations

import asyncio
import json

import pytest
from web3 import AsyncWeb3, Web3

from facemarket.contracts.bind import bind
from facemarket.contracts.deployment import Deployment, default_path


def test_deployment_file_round_trips(deployment, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEMARKET_HOME", str(tmp_path))
    path = deployment.save()
    assert path == default_path(1337) == tmp_path / "deployments" / "1337.json"
    assert Deployment.load(path) == deployment
    lowercase = Deployment(1337, deployment.token.lower(), deployment.registry, deployment.escrow, 3)
    assert lowercase.token == deployment.token  # addresses are kept checksummed
    assert deployment.channels is not None and Deployment.load(path).channels == deployment.channels
    before_channels = tmp_path / "before_channels.json"  # a file written before ChannelEscrow existed
    before_channels.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "channels"}))
    assert Deployment.load(before_channels).channels is None
    assert bind(Web3(), Deployment.load(before_channels)).channels is None
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"chain_id": 1337, "token": deployment.token}))
    with pytest.raises(ValueError, match="registry"):
        Deployment.load(broken)


def test_bind_works_with_web3_and_async_web3(chain, deployment):
    contracts = bind(Web3(Web3.HTTPProvider(chain.url)), deployment)
    assert contracts.token.functions.decimals().call() == 8
    assert contracts.registry.address == deployment.registry
    assert contracts.channels.functions.token().call() == deployment.token

    async def read() -> tuple:
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(chain.url))
        bound = bind(w3, deployment)
        domain = await bound.escrow.functions.eip712Domain().call()
        channels_domain = await bound.channels.functions.eip712Domain().call()
        return await bound.token.functions.symbol().call(), domain[1], channels_domain[1]

    assert asyncio.run(read()) == ("FACE", "facemarket JobEscrow", "facemarket ChannelEscrow")
