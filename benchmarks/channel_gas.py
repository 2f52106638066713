"""Gas of ChannelEscrow, measured on gas_report.py's chain and deployment: open (with a permit
and after an approve), top-up, claim, claimMany per channel at 10 and 100 channels, reclaim,
and what a call costs when a channel carries 1,000 calls between claims.

Each operation runs once as a warm-up (the contract already holds tokens, the agent's balance
and the permit nonce are non-zero), then is measured; a batch is measured on channels that were
claimed once already (a claim raises a non-zero `claimed`, the steady state of a long channel).
"""

from __future__ import annotations

from dataclasses import dataclass

from facemarket.contracts.typed_messages import domain_from_eip712, request_hash, sign_permit, sign_voucher

DEPOSIT = 10**9  # 10 FACE
CALL_PRICE = 10**5  # 0.001 FACE: 1,000 calls = 1 FACE
HOUR = 3600
CALLS_BETWEEN_CLAIMS = 1_000


@dataclass
class ChannelBench:
    """The channels side of gas_report's Bench: its chain, consumers and agent."""

    bench: object  # gas_report.Bench

    def __post_init__(self) -> None:
        b = self.bench
        self.channels = b.contracts.channels
        self.fns = self.channels.functions
        self.domain = domain_from_eip712(self.fns.eip712Domain().call())
        b.gas(b.consumer, b.contracts.token.functions.approve(self.channels.address, 2**256 - 1))
        self.served: dict[int, int] = {}  # channel id -> calls served so far

    def open(self) -> int:
        b = self.bench
        return b.gas(b.consumer, self.fns.openChannel(b.agent.address, b.consumer.address, DEPOSIT, b.expiry()))

    def open_with_permit(self) -> int:
        b = self.bench
        deadline = b.expiry()
        nonce = b.contracts.token.functions.nonces(b.permitter.address).call()
        v, r, s = sign_permit(b.permitter.key, b.token_domain, b.permitter.address, self.channels.address,
                              DEPOSIT, nonce, deadline)
        return b.gas(b.permitter, self.fns.openChannelWithPermit(
            b.agent.address, b.permitter.address, DEPOSIT, b.expiry(), deadline, v, r, s))

    def top_up(self) -> int:
        b = self.bench
        return b.gas(b.consumer, self.fns.topUp(self.new_channels(1)[0], CALL_PRICE))

    def new_channels(self, count: int) -> list[int]:
        """`count` channels of the approving consumer, each claimed once (claimed > 0)."""
        first = self.fns.nextChannelId().call()
        ids = list(range(first, first + count))
        for _ in ids:
            self.open()
        self.claim(ids)
        return ids

    def entry(self, channel_id: int) -> tuple[int, bytes, bytes]:
        """(amount, requestHash, signature) of the voucher for 1,000 more calls on the channel."""
        amount = (self.served.get(channel_id, 0) + CALLS_BETWEEN_CLAIMS) * CALL_PRICE
        self.served[channel_id] = self.served.get(channel_id, 0) + CALLS_BETWEEN_CLAIMS
        rh = request_hash(b'{"jsonrpc":"2.0","id":%d,"method":"find_face"}' % amount)
        return amount, rh, sign_voucher(self.bench.consumer.key, self.domain, channel_id, amount, rh)

    def claim(self, ids: list[int]) -> int:
        entries = [self.entry(i) for i in ids]
        b = self.bench
        if len(ids) == 1:
            amount, rh, signature = entries[0]
            return b.gas(b.agent, self.fns.claim(ids[0], amount, amount, rh, signature))
        amounts = [e[0] for e in entries]
        return b.gas(b.agent, self.fns.claimMany(ids, amounts, amounts, [e[1] for e in entries],
                                                 [e[2] for e in entries]))

    def reclaim(self) -> int:
        b = self.bench
        channel_id = self.fns.nextChannelId().call()
        self.open()
        b.w3.provider.make_request("evm_increaseTime", [HOUR + 1])
        b.w3.provider.make_request("evm_mine", [])
        return b.gas(b.consumer, self.fns.reclaim(channel_id))


def measure_channels(bench) -> list[tuple[str, int, int]]:
    """[(operation, gas of the transaction, channels it covers)], each after a warm-up run."""
    cb = ChannelBench(bench)
    rows = []

    def steady(label: str, count: int, run) -> None:
        run()
        rows.append((label, run(), count))

    steady("open: openChannel (after a standing approve)", 1, cb.open)
    steady("open: openChannelWithPermit (no approve)", 1, cb.open_with_permit)
    steady("topUp", 1, cb.top_up)
    steady("claim (one channel)", 1, lambda: cb.claim(cb.new_channels(1)))
    steady("claimMany, 10 channels", 10, lambda: cb.claim(cb.new_channels(10)))
    steady("claimMany, 100 channels", 100, lambda: cb.claim(cb.new_channels(100)))
    steady("reclaim (expired, never claimed)", 1, cb.reclaim)
    return rows


def per_call(rows: list[tuple[str, int, int]]) -> dict[str, float]:
    """Gas per call when a channel carries CALLS_BETWEEN_CLAIMS calls between claims."""
    per_channel = {label: gas / count for label, gas, count in rows}
    claim_one = per_channel["claim (one channel)"]
    claim_batched = per_channel["claimMany, 100 channels"]
    lifetime = per_channel["open: openChannelWithPermit (no approve)"] + per_channel["reclaim (expired, never claimed)"]
    n = CALLS_BETWEEN_CLAIMS
    return {
        f"a claim alone (one channel) / {n:,} calls": claim_one / n,
        f"a claim in a 100-channel claimMany / {n:,} calls": claim_batched / n,
        f"a channel's whole life (open with permit + 1 claim + reclaim) / {n:,} calls": (lifetime + claim_one) / n,
    }
