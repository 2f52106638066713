"""Start-up checks: refuse to run against the wrong chain, and say how to fix a registration.

Why fatal for the chain: an agent that checks payments against another chain (or an address
without the escrow's code) would serve calls nobody paid for. A missing or stale registration
is only logged, with the command that fixes it: the agent still serves jobs made for it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from web3 import AsyncWeb3

from facemarket.agent.config import AgentConfig
from facemarket.contracts.fees import FeePolicy, read_fees_async
from facemarket.contracts.gas import can_pay_gas

log = logging.getLogger("facemarket.agent.startup")


def tokens(units: int, decimals: int) -> str:
    """Token units as the decimal amount the CLI takes (e.g. 1000000 -> 0.01 at 8 decimals)."""
    return format(Decimal(units).scaleb(-decimals).normalize(), "f")


class StartupError(RuntimeError):
    """The agent cannot start; the message says why and what to do."""


async def check_chain(w3: AsyncWeb3, deployment: Any, chain_url: str) -> None:
    """The chain id and the contracts' code match the deployment file."""
    try:
        chain_id = await w3.eth.chain_id
    except Exception as error:
        raise StartupError(f"chain_url: cannot reach {chain_url} ({type(error).__name__}); "
                           "start the chain or fix chain_url") from None
    if chain_id != deployment.chain_id:
        raise StartupError(f"deployment: chain id {deployment.chain_id} in the deployment file, but "
                           f"{chain_url} is chain {chain_id}; use this chain's deployment file")
    for name in ("token", "registry", "escrow"):
        address = getattr(deployment, name)
        if len(await w3.eth.get_code(address)) == 0:
            raise StartupError(f"deployment: no contract code at the {name} address {address} on chain "
                               f"{chain_id}; deploy the contracts again or fix the deployment file")


async def check_registration(registry: Any, token: Any, agent: str, config: AgentConfig, spec_hash: bytes) -> bool:
    """provider/service_name is registered with this agent as the one paid, at this price,
    endpoint and spec; logs the fix if not (its price in tokens at the decimals `token` states
    on chain, as the CLI reads them)."""
    ref = f"{config.provider}/{config.service_name}"
    if not config.provider:
        log.warning("no provider set: consumers address services as provider/service; set "
                    "`provider` in the agent config (see `facemarket provider create`)")
        return False
    try:
        registered, _, _, endpoint, price, registered_hash, enabled = \
            await registry.functions.getService(config.provider, config.service_name).call()
    except Exception:
        registered, enabled = None, False
    stale = [what for what, ok in (("agent", registered == agent), ("price", price == config.price),
                                   ("endpoint", endpoint == config.endpoint),
                                   ("spec hash", bytes(registered_hash) == spec_hash)) if not ok] \
        if registered and enabled else None
    if stale == []:
        log.info("service %r is registered for agent %s at price %d", ref, agent, config.price)
        return True
    decimals = await token.functions.decimals().call()
    how = (f"with the provider owner's account, run `facemarket service register {ref} "
           f"--agent {agent} --endpoint {config.endpoint} --price {tokens(config.price, decimals)}` "
           "(or `service update`) while the agent runs")
    if stale is None:
        log.warning("service %r is not registered in the ServiceRegistry; %s", ref, how)
    else:
        log.warning("service %r is registered with another %s; %s", ref, ", ".join(stale), how)
    return False


def check_claim_timing(config: AgentConfig) -> None:
    """A served job must be claimed before it expires: the claimer's round has to come sooner."""
    if config.claim_interval >= config.expiry_margin:
        log.warning("claim_interval (%gs) is not shorter than expiry_margin (%ds): a job served near its "
                    "expiry may expire before the next claim round; lower claim_interval",
                    config.claim_interval, config.expiry_margin)


async def check_gas(w3: AsyncWeb3, agent: str, policy: FeePolicy) -> bool:
    """The agent's account pays its claims' gas; an agent without ETH serves calls it can never
    claim, so this is logged at start (and shown in /health) with the fix. Judged at the fee a
    claim would offer now (on an EIP-1559 chain its maxFeePerGas, which the node wants covered
    by the balance, not the lower gas price)."""
    balance, fees = await w3.eth.get_balance(agent), await read_fees_async(w3, policy)
    if can_pay_gas(balance, fees.max_fee):
        return True
    log.warning("the agent's account %s holds %d wei, too little ETH for the gas of a claim: it can "
                "serve calls but not claim them; send it ETH (on the local chain: `facemarket "
                "account fund %s --eth 1`)", agent, balance, agent)
    return False
