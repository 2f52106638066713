"""Who signs for an account: a key decrypted in this process, or the key agent holding it.

The client and the commands ask a `Signer` for exactly the things they sign (an Invocation, a
Permit, a transaction, a TrialCall, a channel's Voucher and state request) and never touch a key
themselves, so the same code runs
whether the keystore was decrypted here (slow: scrypt) or the account is unlocked in a key agent
(`facemarket account unlock`, cli/key_agent_link.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from coincurve import PrivateKey

from facemarket.contracts.typed_messages import (Domain, key_address, sign_channel_state_request,
                                                 sign_invocation, sign_permit, sign_trial_call,
                                                 sign_voucher)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


class Signer(Protocol):
    """What signs for one account (`address`)."""

    address: str

    def sign_invocation(self, domain: Domain, job_id: int, agent: str,
                        request_hash: bytes) -> bytes:
        """65-byte signature of the EIP-712 Invocation (contracts/typed_messages.py)."""
        ...

    def sign_permit(self, token_domain: Domain, spender: str, value: int, nonce: int,
                    deadline: int) -> tuple[int, bytes, bytes]:
        """(v, r, s) of this account's EIP-2612 Permit for `spender`."""
        ...

    def sign_transaction(self, transaction: dict) -> Any:
        """A signed transaction: an object with `raw_transaction` (bytes)."""
        ...

    def sign_trial_call(self, domain: Domain, grant_hash: bytes, call_index: int,
                        request_hash: bytes) -> bytes:
        """65-byte signature of one TrialCall of a free trial grant."""
        ...

    def sign_voucher(self, domain: Domain, channel_id: int, amount: int,
                     request_hash: bytes) -> bytes:
        """65-byte signature of a channel's Voucher (the consumer may sign its own channels')."""
        ...

    def sign_channel_state_request(self, domain: Domain, channel_id: int, issued_at: int) -> bytes:
        """65-byte signature of a ChannelStateRequest (GET /channels/{id})."""
        ...


@dataclass(frozen=True)
class HeldKey:
    """A private key and its address, without eth_account (loading it costs a third of a second
    on a call): a channel's session key."""

    key: bytes
    address: str

    @classmethod
    def from_key(cls, key: bytes | str) -> HeldKey:
        raw = bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
        return cls(raw, key_address(raw))

    @classmethod
    def create(cls) -> HeldKey:
        """A fresh random key (os.urandom; below the curve order but for ~2^-128 odds, retried)."""
        while True:
            try:
                return cls.from_key(os.urandom(32))
            except ValueError:
                continue


class KeySigner:
    """An account whose key is in this process (decrypted from its keystore, or given)."""

    def __init__(self, account: LocalAccount | HeldKey) -> None:
        self.account = account
        self.address: str = account.address
        self._key = PrivateKey(bytes(account.key))  # built once: not again for every signature

    def sign_invocation(self, domain: Domain, job_id: int, agent: str,
                        request_hash: bytes) -> bytes:
        return sign_invocation(self._key, domain, job_id, agent, request_hash)

    def sign_permit(self, token_domain: Domain, spender: str, value: int, nonce: int,
                    deadline: int) -> tuple[int, bytes, bytes]:
        return sign_permit(self._key, token_domain, self.address, spender, value, nonce, deadline)

    def sign_transaction(self, transaction: dict) -> Any:
        return self.account.sign_transaction(transaction)

    def sign_trial_call(self, domain: Domain, grant_hash: bytes, call_index: int,
                        request_hash: bytes) -> bytes:
        return sign_trial_call(self._key, domain, grant_hash, call_index, request_hash)

    def sign_voucher(self, domain: Domain, channel_id: int, amount: int,
                     request_hash: bytes) -> bytes:
        return sign_voucher(self._key, domain, channel_id, amount, request_hash)

    def sign_channel_state_request(self, domain: Domain, channel_id: int, issued_at: int) -> bytes:
        return sign_channel_state_request(self._key, domain, channel_id, issued_at)
