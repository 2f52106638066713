"""contracts/transactions.Sender, the one sender of the CLI, deploy and the tests, on a real
Ganache: nonces kept and re-read after a failure (a nonce another process of the same key took
is read again and the send goes through), gas estimates reused, a revert on the
receipt reported (the claimer shares its nonce rule and fields: tests/test_agent_paid_calls.py)."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from facemarket.contracts.bind import bind
from facemarket.contracts.fees import Fees
from facemarket.contracts.transactions import GAS_MARGIN, Sender, TransactionFailed, first_nonce, transaction_fields


@pytest.fixture
def accounts(chain, deployment, chain_snapshot):
    return [Account.from_key(key) for key in chain.accounts[:2]]


def test_nonces_are_kept_between_sends_and_read_again_after_a_refused_one(chain_w3, deployment, accounts) -> None:
    sender, (alice, bob) = Sender(chain_w3, chain_w3.eth.chain_id), accounts
    token = bind(chain_w3, deployment).token.functions
    start = chain_w3.eth.get_transaction_count(alice.address)
    sender.send(alice, token.transfer(bob.address, 1))
    assert sender.tracked_nonce(alice.address) == start + 1
    with pytest.raises(ContractLogicError):  # more than she holds: refused at estimation, nothing sent
        sender.send(alice, token.transfer(bob.address, 10**40))
    assert sender.tracked_nonce(alice.address) is None
    receipt = sender.send(alice, token.transfer(bob.address, 2))
    assert receipt["status"] == 1
    assert chain_w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == start + 1


def test_a_nonce_taken_by_another_process_of_the_same_key_is_read_again_and_the_send_goes_through(
        chain_w3, deployment, accounts) -> None:
    """A provider's agent claims with the account its CLI sends from: the CLI's tracked nonce
    is then stale, the node refuses it, and the send goes through at the next nonce."""
    cli, agent, (alice, bob) = (Sender(chain_w3, chain_w3.eth.chain_id), Sender(chain_w3, chain_w3.eth.chain_id),
                                accounts)
    token = bind(chain_w3, deployment).token.functions
    cli.send(alice, token.transfer(bob.address, 1))
    stale = cli.tracked_nonce(alice.address)
    agent.send(alice, token.transfer(bob.address, 2))  # takes the nonce the CLI tracks
    receipt = cli.send(alice, token.transfer(bob.address, 3))
    assert chain_w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == stale + 1
    assert cli.tracked_nonce(alice.address) == stale + 2


def test_a_refusal_that_is_not_about_the_nonce_is_raised_at_once(chain_w3, deployment, accounts) -> None:
    sender, (alice, bob) = Sender(chain_w3, chain_w3.eth.chain_id), accounts
    poor = Account.create()  # no ETH for gas: the node refuses it, and trying again would not help
    with pytest.raises(Exception) as refused:
        sender.send(poor, {"to": bob.address, "value": 1, "gas": 21000})
    assert "nonce" not in str(refused.value).lower()
    assert sender.tracked_nonce(poor.address) is None


def test_a_reused_gas_estimate_that_reverts_is_reported_and_the_next_send_goes_through(chain_w3, deployment, accounts) -> None:
    sender, (alice, bob) = Sender(chain_w3, chain_w3.eth.chain_id), accounts
    token = bind(chain_w3, deployment).token.functions
    estimate = token.transfer(bob.address, 1).estimate_gas({"from": alice.address})
    first = sender.send(alice, token.transfer(bob.address, 1), reuse_gas="transfer")
    assert chain_w3.eth.get_transaction(first["transactionHash"])["gas"] == int(estimate * GAS_MARGIN)
    with pytest.raises(TransactionFailed) as failed:  # no estimation: it is mined, and reverts
        sender.send(alice, token.transfer(bob.address, 10**40), reuse_gas="transfer")
    assert failed.value.receipt["status"] == 0
    again = sender.send(alice, token.transfer(bob.address, 3), reuse_gas="transfer")
    assert again["status"] == 1


def test_the_nonce_rule_and_fields_every_sender_uses() -> None:
    assert first_nonce(pending=4, latest=7) == 7 and first_nonce(pending=9, latest=7) == 9
    assert transaction_fields("0xA", 3, 1337, Fees(20), 100_000) == {
        "from": "0xA", "nonce": 3, "chainId": 1337, "gasPrice": 20, "gas": 125_000}
    assert transaction_fields("0xA", 3, 1337, Fees(30, 2)) == {
        "from": "0xA", "nonce": 3, "chainId": 1337, "maxFeePerGas": 30, "maxPriorityFeePerGas": 2}
