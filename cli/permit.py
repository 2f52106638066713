"""EIP-2612 permits: the consumer's signed approval that lets `createAndFundJob…WithPermit`
move its tokens in the same transaction (no separate `approve`)."""

from __future__ import annotations

from functools import cached_property

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3


class PermitSigner:
    """Signs permits for one token; its EIP-712 domain is read once (ERC-5267)."""

    def __init__(self, token) -> None:  # a bound FaceToken contract
        self.token = token

    @cached_property
    def domain(self) -> dict:
        _fields, name, version, chain_id, contract, _salt, _ext = \
            self.token.functions.eip712Domain().call()
        return {"name": name, "version": version, "chainId": chain_id,
                "verifyingContract": Web3.to_checksum_address(contract)}

    def sign(self, owner: LocalAccount, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
        """(v, r, s) of Permit(owner, spender, value, nonce, deadline)."""
        nonce = self.token.functions.nonces(owner.address).call()
        message = {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"},
                                 {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"},
                                 {"name": "verifyingContract", "type": "address"}],
                "Permit": [{"name": "owner", "type": "address"},
                           {"name": "spender", "type": "address"},
                           {"name": "value", "type": "uint256"},
                           {"name": "nonce", "type": "uint256"},
                           {"name": "deadline", "type": "uint256"}],
            },
            "primaryType": "Permit",
            "domain": self.domain,
            "message": {"owner": owner.address, "spender": spender, "value": value,
                        "nonce": nonce, "deadline": deadline},
        }
        signed = Account.sign_typed_data(owner.key, full_message=message)
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
