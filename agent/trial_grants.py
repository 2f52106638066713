"""Issuing a trial grant (`facemarket agent grant`): the agent's key signs free calls for a consumer.

Why the agent's own key and config: the agent checks a grant by recovering its signer, so only a
grant its key signed is honoured, and the operator needs nothing but what runs the agent. Why the
chain's clock for the expiry: the agent judges expiry by it (a dev chain's clock may run ahead of
this machine's); when the chain does not answer, this machine's clock is used, and said so.
"""

from __future__ import annotations

import time

from web3 import Web3

from facemarket.agent.config import AgentConfig, ConfigError
from facemarket.agent.signing_key import load_key
from facemarket.cli.accounts import Keystores
from facemarket.cli.durations import describe, utc
from facemarket.cli.home import Home
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.trial_grant import make_grant
from facemarket.contracts.typed_messages import channels_domain

CHAIN_TIMEOUT = 5.0


def _now(chain_url: str) -> tuple[int, str]:
    """(the chain's time, or this machine's when the chain does not answer; which one it is)."""
    try:
        head = Web3(Web3.HTTPProvider(chain_url, request_kwargs={"timeout": CHAIN_TIMEOUT})).eth.get_block("latest")
    except Exception:  # any failure to read the chain: fall back on this machine's clock, said so
        return int(time.time()), f"this machine's clock (the chain at {chain_url} did not answer)"
    return max(int(time.time()), int(head["timestamp"])), "the chain's clock"


def grant_line(config: AgentConfig, consumer: str, calls: int, expires_in: int) -> tuple[str, str]:
    """(the grant's line, a sentence saying what it grants) for `consumer` (address or account name)."""
    try:
        deployment = Deployment.load(config.deployment)
    except (OSError, ValueError) as error:
        raise ConfigError(f"deployment: cannot read {config.deployment}: {error}") from None
    if deployment.channels is None:
        raise ConfigError(f"deployment: {config.deployment} has no ChannelEscrow, whose domain grants are signed in: "
                          "deploy the contracts again (`facemarket contracts deploy`)")
    try:
        address = Keystores(Home.from_env()).resolve_address(consumer)
    except Exception as error:  # the CLI's errors say what is wrong with the name
        raise ValueError(f"{consumer!r} is not an address nor an account name ({error})") from None
    key = load_key(config.keystore, config.password())
    now, clock = _now(config.chain_url)
    grant = make_grant(key.private_key, channels_domain(deployment.chain_id, deployment.channels), key.address,
                       address, calls, now + expires_in)
    description = (f"Grant of {calls} free call(s) of agent {key.address} to {address}, valid until "
                   f"{utc(grant.expires_at)} ({describe(expires_in)} by {clock}). The consumer calls with "
                   f"`facemarket call PROVIDER/SERVICE METHOD --trial <grant>`.")
    return grant.line(), description
