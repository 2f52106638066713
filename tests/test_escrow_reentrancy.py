"""No reentrancy path: a hostile token re-enters the escrow from inside every token transfer
(fund, complete, refund), as the very party entitled to the call; the escrow has already
written its new state, so the re-entered call fails and nothing is paid twice."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from eth_account import Account

from facemarket.contracts import artifacts
from facemarket.contracts.build import SETTINGS, compile_solidity
from facemarket.contracts.deploy import deploy_contract
from facemarket.contracts.transactions import send
from facemarket.contracts.typed_messages import escrow_domain, request_hash, sign_invocation
from tests.escrow_support import COMPLETED, FUNDED, HOUR, PRICE, REFUNDED, decode_error


@cache
def hostile_token() -> dict:
    """The compiled tests/contracts/HostileToken.sol (abi, evm.bytecode)."""
    source = (Path(__file__).parent / "contracts" / "HostileToken.sol").read_text()
    _, contracts = compile_solidity({"HostileToken.sol": source}, {**SETTINGS, "viaIR": False})
    return contracts["HostileToken.sol"]["HostileToken"]


class Hostile:
    """A JobEscrow (or another escrow contract, `contract`) on a HostileToken, and the token's handles."""

    def __init__(self, w3, owner, consumer, agent, contract: str = "JobEscrow") -> None:
        compiled = hostile_token()
        factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["evm"]["bytecode"]["object"])
        receipt = send(w3, owner, factory.constructor().build_transaction({"from": owner.address}))
        self.w3, self.owner, self.consumer, self.agent = w3, owner, consumer, agent
        self.token = w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])
        escrow_address = deploy_contract(w3, owner, contract, self.token.address)["contractAddress"]
        self.escrow = w3.eth.contract(address=escrow_address, abi=artifacts.load(contract)["abi"])
        self.call(owner, self.token.functions.setEscrow(escrow_address))
        for holder in (self.token.address, consumer.address):
            self.call(owner, self.token.functions.mint(holder, 10 * PRICE))
        self.call(consumer, self.token.functions.approve(escrow_address, 2**255))

    def call(self, account, function):
        return send(self.w3, account, function.build_transaction({"from": account.address, "gas": 1_000_000}))

    def encode(self, name: str, *args) -> str:
        return self.escrow.encode_abi(name, args=list(args))

    def as_token(self, name: str, *args):
        """The hostile contract calls the escrow (so msg.sender is the token, a job party)."""
        return self.call(self.owner, self.token.functions.act(self.encode(name, *args)))

    def arm(self, name: str, *args) -> None:
        self.call(self.owner, self.token.functions.arm(self.encode(name, *args)))

    def reentry(self) -> tuple:
        """(reentries, the error the re-entered call failed with)."""
        assert self.token.functions.reentrySucceeded().call() is False
        result = self.token.functions.reentryResult().call()
        return self.token.functions.reentries().call(), decode_error(result)

    def balance(self, address: str) -> int:
        return self.token.functions.balanceOf(address).call()

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]


@pytest.fixture
def hostile(chain, chain_w3, chain_snapshot):
    owner, consumer, agent = (Account.from_key(k) for k in chain.accounts[:3])
    return Hostile(chain_w3, owner, consumer, agent)


def test_reentering_complete_pays_once(hostile):
    h = hostile
    job_id = h.escrow.functions.nextJobId().call()
    h.call(h.consumer, h.escrow.functions.createAndFundJob(h.token.address, PRICE, h.now() + HOUR))  # agent = token
    rh = request_hash(b"{}")
    signature = sign_invocation(h.consumer.key, escrow_domain(1337, h.escrow.address), job_id, h.token.address, rh)
    before = h.balance(h.token.address)
    h.arm("completeJob", job_id, rh, signature)
    h.as_token("completeJob", job_id, rh, signature)
    assert h.reentry() == (1, ("JobNotFunded", (job_id, COMPLETED)))
    assert h.balance(h.token.address) == before + PRICE
    assert h.balance(h.escrow.address) == 0


def test_reentering_fund_takes_the_price_once(hostile):
    h = hostile
    job_id = h.escrow.functions.nextJobId().call()
    h.as_token("createJob", h.agent.address, PRICE, h.now() + HOUR)  # consumer = token
    h.arm("fundJob", job_id)
    h.as_token("fundJob", job_id)
    assert h.reentry() == (1, ("JobNotCreated", (job_id, FUNDED)))
    assert h.balance(h.escrow.address) == PRICE


def test_reentering_refund_refunds_once(hostile):
    h = hostile
    job_id = h.escrow.functions.nextJobId().call()
    h.as_token("createAndFundJob", h.agent.address, PRICE, h.now() + 60)  # consumer = token
    before = h.balance(h.token.address)
    h.w3.provider.make_request("evm_increaseTime", [61])
    h.w3.provider.make_request("evm_mine", [])
    h.arm("refund", job_id)
    h.as_token("refund", job_id)
    assert h.reentry() == (1, ("JobNotRefundable", (job_id, REFUNDED)))
    assert h.balance(h.token.address) == before + PRICE
    assert h.balance(h.escrow.address) == 0
