"""The ledger's record of a claim's versions (`claim_sends`, agent/ledger.py): kept in the
order sent under the first version's hash, and forgotten once no job is CLAIMING under it, by
whichever path settles the jobs (the claimer's receipt or the follower's events)."""

from __future__ import annotations

import time

from facemarket.agent.ledger import ClaimSend, SeenJob, SqliteLedger, State


def _served(store: SqliteLedger, jobs: list[int]) -> None:
    store.add_seen([SeenJob(n, "0xC0", 5, int(time.time()) + 3600, 7) for n in jobs])
    for job in jobs:
        store.reserve(job, b"h" * 32, 60)
        store.mark_served(job, b"h" * 32, b"s", b"r")


def _version(claim: str, tx_hash: str, fee: int) -> ClaimSend:
    tx = {"to": "0xE5", "data": "0x01", "gas": 90_000, "nonce": 4, "chainId": 1337,
          "maxFeePerGas": fee, "maxPriorityFeePerGas": 1}
    return ClaimSend(tx_hash, claim, 10, tx, b"\x02signed")


def test_a_claims_versions_are_kept_in_order_until_none_of_its_jobs_is_claiming(tmp_path) -> None:
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    _served(store, [1, 2, 3])
    store.mark_claiming([1, 2], "0xfirst")
    store.mark_claiming([3], "0xother")
    for version in (_version("0xfirst", "0xfirst", 10), _version("0xfirst", "0xsecond", 12),
                    _version("0xother", "0xother", 10)):
        store.record_claim_send(version)
    versions = store.claim_sends("0xfirst")
    assert [v.tx_hash for v in versions] == ["0xfirst", "0xsecond"]
    assert versions[1] == _version("0xfirst", "0xsecond", 12)  # the transaction and bytes come back whole
    store.mark_claimed([(1, 40)])  # job 2 still waits on this claim: its versions stay
    assert len(store.claim_sends("0xfirst")) == 2
    store.mark_claimed([(2, 40)])
    assert store.claim_sends("0xfirst") == [] and len(store.claim_sends("0xother")) == 1
    store.back_to_served([3], count_attempt=False)  # dropped: the claimer forgets it itself
    store.forget_claim_sends("0xother")
    assert store.claim_sends("0xother") == [] and store.get(3).state == State.SERVED
    store.close()
    reopened = SqliteLedger(tmp_path / "ledger.sqlite")  # the table survives a restart, empty here
    assert reopened.claim_sends("0xfirst") == []
    reopened.close()
