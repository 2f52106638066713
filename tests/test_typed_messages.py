"""The hand-rolled EIP-712 messages agree with eth_account, with Ganache's eth_signTypedData_v4
(what a wallet signs) and with the escrow contract itself."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from eth_hash.auto import keccak as eth_hash_keccak
from hypothesis import strategies as st

from facemarket.contracts.keccak import keccak

from facemarket.contracts.typed_messages import (
    PERMIT_TYPE,
    Domain,
    InvalidSignature,
    escrow_domain,
    invocation_digest,
    invocation_typed_data,
    permit_digest,
    receipt_digest,
    receipt_typed_data,
    recover_invocation_signer,
    recover_receipt_signer,
    request_hash,
    sign_invocation,
    sign_permit,
    sign_receipt,
)

KEY = "0x" + "11" * 32
SIGNER = Account.from_key(KEY).address
AGENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DOMAIN = escrow_domain(1337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

uint256 = st.integers(0, 2**256 - 1)
word = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
domains = st.builds(Domain, st.text(max_size=30), st.text(max_size=5), st.integers(1, 2**64), addresses)


@settings(max_examples=40, deadline=None)
@given(domain=domains, job_id=uint256, agent=addresses, body=st.binary(max_size=200))
def test_invocation_digest_matches_eth_account(domain, job_id, agent, body):
    typed = invocation_typed_data(domain, job_id, agent, request_hash(body))
    assert _eth_account_hash(typed) == invocation_digest(domain, job_id, agent, request_hash(body))


@settings(max_examples=40, deadline=None)
@given(domain=domains, job_id=uint256, request=word, response=word)
def test_receipt_digest_matches_eth_account(domain, job_id, request, response):
    assert _eth_account_hash(receipt_typed_data(domain, job_id, request, response)) == receipt_digest(
        domain, job_id, request, response)


@settings(max_examples=20, deadline=None)
@given(domain=domains, spender=addresses, value=uint256, nonce=uint256, deadline=uint256)
def test_permit_digest_matches_eth_account(domain, spender, value, nonce, deadline):
    typed = {
        "types": {"EIP712Domain": invocation_typed_data(domain, 0, AGENT, bytes(32))["types"]["EIP712Domain"],
                  "Permit": [{"name": n, "type": t} for t, n in
                             (f.split(" ") for f in PERMIT_TYPE[7:-1].split(","))]},
        "primaryType": "Permit",
        "domain": domain.as_typed_data(),
        "message": {"owner": SIGNER, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
    }
    assert _eth_account_hash(typed) == permit_digest(domain, SIGNER, spender, value, nonce, deadline)
    v, r, s = sign_permit(KEY, domain, SIGNER, spender, value, nonce, deadline)
    assert Account._recover_hash(permit_digest(domain, SIGNER, spender, value, nonce, deadline), vrs=(v, r, s)) == SIGNER


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300) | st.binary(min_size=1000, max_size=5000).map(lambda b: b * 20))
def test_our_keccak_is_eth_hash_keccak(data):
    """contracts/keccak.py (C) hashes as eth_hash does: Ethereum's keccak256, not NIST SHA3."""
    assert keccak(data) == eth_hash_keccak(data)


def test_a_recovered_signer_is_the_key_that_signed_after_other_keys_too():
    """The signer's address is cached by public key: each key still recovers to its own."""
    keys = ["0x" + f"{n:064x}" for n in range(1, 6)]
    for key in keys * 2:
        signature = sign_invocation(key, DOMAIN, 1, AGENT, bytes(32))
        assert recover_invocation_signer(DOMAIN, 1, AGENT, bytes(32), signature) == Account.from_key(key).address


def _eth_account_hash(typed: dict) -> bytes:
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), KEY).message_hash)


def test_signatures_recover_to_the_signer_and_match_eth_account():
    rh = request_hash(b'{"jsonrpc":"2.0","id":7,"method":"detect_faces"}')
    signature = sign_invocation(KEY, DOMAIN, 7, AGENT, rh)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert signature == bytes(Account.sign_message(encode_typed_data(full_message=invocation_typed_data(DOMAIN, 7, AGENT, rh)), KEY).signature)
    assert recover_invocation_signer(DOMAIN, 7, AGENT, rh, signature) == SIGNER
    assert recover_invocation_signer(DOMAIN, 7, AGENT, "0x" + rh.hex(), "0x" + signature.hex()) == SIGNER
    # any other field gives another signer
    assert recover_invocation_signer(DOMAIN, 8, AGENT, rh, signature) != SIGNER
    assert recover_invocation_signer(escrow_domain(1, DOMAIN.verifying_contract), 7, AGENT, rh, signature) != SIGNER
    receipt = sign_receipt(KEY, DOMAIN, 7, rh, request_hash(b"{}"))
    assert recover_receipt_signer(DOMAIN, 7, rh, request_hash(b"{}"), receipt) == SIGNER
    assert recover_receipt_signer(DOMAIN, 7, rh, request_hash(b"[]"), receipt) != SIGNER


@pytest.mark.parametrize("mangle, message", [
    (lambda s: s[:64], "65 bytes"),
    (lambda s: s + b"\x00", "65 bytes"),
    (lambda s: s[:64] + b"\x05", "v must be"),
    (lambda s: s[:32] + (N - int.from_bytes(s[32:64], "big")).to_bytes(32, "big") + bytes([55 - s[64]]), "malleable"),
    (lambda s: bytes(32) + s[32:], "recovers to no key"),
    (lambda s: "0xzz", "not hex"),
])
def test_malformed_signatures_are_refused(mangle, message):
    signature = sign_invocation(KEY, DOMAIN, 1, AGENT, bytes(32))
    with pytest.raises(InvalidSignature, match=message):
        recover_invocation_signer(DOMAIN, 1, AGENT, bytes(32), mangle(signature))


def test_contract_computes_the_same_digest(parties):
    p = parties
    rh = request_hash(b"body")
    assert bytes(p.escrow.functions.invocationDigest(42, p.agent.address, rh).call()) == invocation_digest(
        p.domain, 42, p.agent.address, rh)


def test_wallet_signature_from_ganache_is_accepted_by_the_contract_and_python(parties):
    """eth_signTypedData_v4 (as MetaMask signs) by the consumer's unlocked Ganache account."""
    p = parties
    [job_id] = p.open_funded()
    rh = request_hash(b'{"jsonrpc":"2.0","id":1,"method":"face_landmarks"}')
    typed = invocation_typed_data(p.domain, job_id, p.agent.address, rh)
    reply = p.w3.provider.make_request("eth_signTypedData_v4", [p.consumer.address, typed])
    signature = bytes.fromhex(reply["result"].removeprefix("0x"))
    assert recover_invocation_signer(p.domain, job_id, p.agent.address, rh, signature) == p.consumer.address
    before = p.balance(p.agent)
    receipt = p.send(p.agent, p.escrow.functions.completeJob(job_id, rh, signature))
    assert [e["jobId"] for e in p.events(receipt, "JobCompleted")] == [job_id]
    assert p.balance(p.agent) == before + p.job(job_id)[2]
