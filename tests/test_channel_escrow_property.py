"""Random sequences of channel calls keep the books straight. After every call: the contract
holds exactly the sum of its open channels' deposits minus their claims (refunds have closed
the others); the agent has been paid exactly the sum of what the channels say it claimed, and
each consumer has lost exactly its open deposits plus the claims on its closed channels (nobody
is paid twice, no token is created or lost); no channel's claims exceed the highest voucher its
consumer or one of its signers ever signed (a consumer never loses more than its latest
voucher); claims only grow, and a closed channel never changes again. Honest calls mix with
calls by the wrong party, with the wrong key, above the voucher, replayed or in duplicate; a
revert is a legal outcome, the invariants hold either way."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from web3.exceptions import ContractLogicError

from facemarket.contracts.channel import Channel
from tests.channel_support import ChannelParties, fresh_channels
from tests.escrow_support import HOUR, Parties

CONSUMERS = ("consumer", "other_consumer", "stranger")
ACTORS = CONSUMERS + ("agent",)
ACTOR = st.sampled_from(ACTORS)
PICK = st.integers(0, 7)  # which channel or voucher (wraps around)


@pytest.fixture(scope="module")
def own_channels(chain, chain_w3, deployment) -> ChannelParties:
    """A fresh ChannelEscrow on the session's token: every channel in it is this module's."""
    parties = Parties.on(chain_w3, deployment, chain.accounts)
    cp = fresh_channels(parties, Account.from_key(chain.accounts[0]))
    for name in ACTORS:
        cp.approve(getattr(cp, name), 2**255)
    return cp


def test_channel_books_stay_straight(own_channels):
    cp = own_channels
    outcomes: dict[str, int] = {}

    class ChannelMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = cp.w3.provider.make_request("evm_snapshot", [])["result"]
            self.first_id = cp.fns.nextChannelId().call()
            self.start = cp.balances()
            self.total = sum(self.start.values())
            self.channels: dict[int, Channel] = {}
            self.vouchers: dict[int, list[tuple[int, str, bytes, bytes]]] = {}  # amount, signer, rh, signature
            self.keys_ever: dict[int, set[str]] = {}  # the consumer and every signer the channel ever named
            self.closed: dict[int, Channel] = {}
            self.now = cp.now()

        def teardown(self) -> None:
            cp.w3.provider.make_request("evm_revert", [self.snapshot])

        # ------------------------------------------------------------ helpers

        def send(self, kind: str, account, function) -> None:
            try:
                cp.send(account, function)
                outcomes[kind] = outcomes.get(kind, 0) + 1
            except ContractLogicError:
                outcomes[kind + " reverted"] = outcomes.get(kind + " reverted", 0) + 1

        def pick(self, pick: int) -> Channel:
            ids = sorted(self.channels)
            return self.channels[ids[pick % len(ids)]]

        def account(self, address: str):
            return next(getattr(cp, n) for n in ACTORS if getattr(cp, n).address == address)

        def sign(self, channel: Channel, amount: int, signer) -> tuple[int, str, bytes, bytes]:
            rh, signature = cp.voucher(channel.id, amount, signer, body=b"%d" % amount)
            return amount, signer.address, rh, signature

        def open_ones(self) -> list[Channel]:
            return [c for c in self.channels.values() if not c.closed]

        # ------------------------------------------------------------ rules

        @rule(actor=st.sampled_from(CONSUMERS), signer=ACTOR, deposit=st.integers(1, 10**6),
              expires_in=st.sampled_from([HOUR, 2 * HOUR]))
        def open(self, actor, signer, deposit, expires_in):
            self.send("open", getattr(cp, actor), cp.fns.openChannel(
                cp.agent.address, getattr(cp, signer).address, deposit, cp.now() + expires_in))

        @precondition(lambda self: self.open_ones())
        @rule(pick=PICK, step=st.integers(1, 4 * 10**5), by_consumer=st.booleans())
        def voucher(self, pick, step, by_consumer):
            """The consumer's side signs the next cumulative voucher (it may run past the deposit)."""
            channel = self.open_ones()[pick % len(self.open_ones())]
            latest = max((v[0] for v in self.vouchers.get(channel.id, [])), default=0)
            signer = self.account(channel.consumer if by_consumer else channel.signer)
            self.vouchers.setdefault(channel.id, []).append(self.sign(channel, latest + step, signer))
            outcomes["voucher"] = outcomes.get("voucher", 0) + 1

        @precondition(lambda self: self.vouchers)
        @rule(pick=PICK, which=PICK, amount=st.sampled_from(["voucher", "below", "above", "claimed", "deposit"]),
              intruder=st.one_of(st.none(), ACTOR), forged=st.booleans(), batch=st.booleans())
        def claim(self, pick, which, amount, intruder, forged, batch):
            ids = sorted(self.vouchers)
            channel = self.channels[ids[pick % len(ids)]]
            vouchers = self.vouchers[channel.id]
            voucher_amount, _, rh, signature = vouchers[which % len(vouchers)]
            if forged:  # the same amount, signed by the agent (never a signer of its own channels)
                _, _, rh, signature = self.sign(channel, voucher_amount, cp.agent)
            value = {"voucher": voucher_amount, "below": max(voucher_amount // 2, 1), "above": voucher_amount + 1,
                     "claimed": channel.claimed, "deposit": min(channel.deposit, voucher_amount)}[amount]
            caller = getattr(cp, intruder) if intruder else cp.agent
            if batch:  # the same entry twice in one batch: the second must be skipped
                function = cp.fns.claimMany([channel.id] * 2, [value] * 2, [voucher_amount] * 2, [rh] * 2,
                                            [signature] * 2)
            else:
                function = cp.fns.claim(channel.id, value, voucher_amount, rh, signature)
            self.send("claim", caller, function)

        @precondition(lambda self: self.channels)
        @rule(pick=PICK, amount=st.integers(0, 10**6), intruder=st.one_of(st.none(), ACTOR))
        def top_up(self, pick, amount, intruder):
            channel = self.pick(pick)
            self.send("top up", getattr(cp, intruder) if intruder else self.account(channel.consumer),
                      cp.fns.topUp(channel.id, amount))

        @precondition(lambda self: self.channels)
        @rule(pick=PICK, later=st.sampled_from([-60, HOUR, 3 * HOUR]), intruder=st.one_of(st.none(), ACTOR))
        def extend(self, pick, later, intruder):
            channel = self.pick(pick)
            self.send("extend", getattr(cp, intruder) if intruder else self.account(channel.consumer),
                      cp.fns.extend(channel.id, cp.now() + later))

        @precondition(lambda self: self.channels)
        @rule(pick=PICK, signer=ACTOR, intruder=st.one_of(st.none(), ACTOR))
        def set_signer(self, pick, signer, intruder):
            channel = self.pick(pick)
            self.send("set signer", getattr(cp, intruder) if intruder else self.account(channel.consumer),
                      cp.fns.setSigner(channel.id, getattr(cp, signer).address))

        @precondition(lambda self: self.channels)
        @rule(pick=PICK, actor=ACTOR)
        def reclaim(self, pick, actor):
            """Any channel, by anyone, expired or not."""
            channel = self.pick(pick)
            self.send("reclaim", getattr(cp, actor), cp.fns.reclaim(channel.id))

        @precondition(lambda self: [c for c in self.open_ones() if c.expires_at <= self.now])
        @rule(pick=PICK)
        def reclaim_expired(self, pick):
            expired = [c for c in self.open_ones() if c.expires_at <= self.now]
            channel = expired[pick % len(expired)]
            self.send("reclaim", self.account(channel.consumer), cp.fns.reclaim(channel.id))

        @rule(seconds=st.sampled_from([60, HOUR + 1]))
        def advance(self, seconds):
            cp.advance(seconds)

        # ------------------------------------------------------------ invariants

        @invariant()
        def books_are_straight(self):
            last_id = cp.fns.nextChannelId().call() - 1
            previous = self.channels
            self.channels = {i: cp.channel(i) for i in range(self.first_id, last_id + 1)}
            self.now = cp.now()
            balances = cp.balances()
            channels = list(self.channels.values())
            assert balances["escrow"] == self.start["escrow"]  # the JobEscrow is untouched (other modules leave jobs in it)
            assert cp.holdings() == sum(c.deposit - c.claimed for c in channels if not c.closed)
            assert sum(balances.values()) + cp.holdings() == self.total
            assert balances["agent"] - self.start["agent"] == sum(c.claimed for c in channels)
            for name in CONSUMERS:
                mine = [c for c in channels if c.consumer == getattr(cp, name).address]
                lost = sum(c.claimed if c.closed else c.deposit for c in mine)
                assert self.start[name] - balances[name] == lost, name
            for channel in channels:
                keys = self.keys_ever.setdefault(channel.id, {channel.consumer})
                keys.add(channel.signer)
                signed = [v[0] for v in self.vouchers.get(channel.id, []) if v[1] in keys]
                assert channel.claimed <= max(signed, default=0), channel
                assert channel.claimed <= channel.deposit
                if channel.id in previous:
                    assert channel.claimed >= previous[channel.id].claimed
                if channel.id in self.closed:
                    assert channel == self.closed[channel.id]
                elif channel.closed:
                    self.closed[channel.id] = channel

    run_state_machine_as_test(ChannelMachine, settings=settings(
        max_examples=8, stateful_step_count=14, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # the sequences did exercise every path that moves tokens
    assert all(outcomes.get(kind, 0) > 0 for kind in ("open", "voucher", "claim", "top up", "reclaim")), outcomes
