"""The agent's escrow event topics and data types come from the ABI (contracts/artifacts.py)."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from facemarket.agent import escrow_reader as chain
from facemarket.contracts.artifacts import event_data_types, event_topic


@pytest.mark.parametrize("topic, signature", [
    (chain.JOB_FUNDED, "JobFunded(uint256,address,address,uint256,uint64)"),
    (chain.JOB_COMPLETED, "JobCompleted(uint256,address,bytes32)"),
    (chain.JOB_REFUNDED, "JobRefunded(uint256,address,address)"),
])
def test_each_topic_is_the_keccak_of_the_event_signature_the_contract_declares(topic: str, signature: str) -> None:
    assert topic == "0x" + keccak(text=signature).hex()


def test_the_funded_data_types_are_the_non_indexed_fields() -> None:
    assert event_data_types("JobEscrow", "JobFunded") == ["uint256", "uint64"]


def test_an_event_the_contract_lacks_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="JobEscrow has no event JobPaid"):
        event_topic("JobEscrow", "JobPaid")
