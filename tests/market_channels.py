"""The market's load paid from payment channels instead of jobs.

Each consumer opens one channel to the agent with a permit (one transaction, no approve), its
signer a session key from the client library's voucher store (`cli/channel_store.py`), and pays
every call from it: the store raises the channel's signed amount by the price durably, then the
voucher over that amount and the body is signed with the session key. Two lanes per consumer
call at once on the same channel, so vouchers reach the agent out of order. A retry sends the
same voucher and body (the agent answers a served one from its ledger, 409 for one in
progress). The agent's ChannelReceipt over channel, amount, request and answer is checked.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from facemarket.cli.channel_store import ChannelRecord, ChannelStore
from facemarket.cli.home import Home
from facemarket.contracts.typed_messages import (channels_domain, domain_from_eip712, recover_channel_receipt_signer,
                                                 request_hash, sign_permit, sign_voucher)
from tests.fixtures.agent import Market, rpc_body
from tests.market_load import MIX, PRICES, Call, LoadConsumer, LoadRun

LANES = 2   # concurrent calls per consumer on its one channel


def channel_store(market: Market, home: Path) -> ChannelStore:
    return ChannelStore(Home(home), market.deployment.chain_id, market.deployment.channels)


def deposit_needed(seconds: float, consumers: int, calls_per_second: float) -> int:
    """A deposit that pays the most expensive call at `calls_per_second` for the whole market
    all round, with room to spare (a consumer whose channel runs dry stops calling, which would
    hide throughput; what is not claimed comes back after the round)."""
    return int(seconds * calls_per_second / consumers * max(PRICES.values()) * 4) + 10 * max(PRICES.values())


def open_channel(market: Market, consumer: LoadConsumer, agent: str, deposit: int, expires_in: int,
                 store: ChannelStore) -> ChannelRecord:
    """`consumer`'s channel to `agent` for this round, opened with a permit; its signer a fresh
    session key kept by `store`, which records every amount signed on it."""
    token, channels = market.contracts.token, market.contracts.channels
    token_domain = domain_from_eip712(token.functions.eip712Domain().call())
    session_key = store.new_session_key()
    deadline = expires_at = market.now() + expires_in
    nonce = token.functions.nonces(consumer.address).call()
    v, r, s = sign_permit(consumer.account.key, token_domain, consumer.address, channels.address, deposit, nonce, deadline)
    channel_id = channels.functions.nextChannelId().call()
    market.send(consumer.account, channels.functions.openChannelWithPermit(
        agent, session_key.address, deposit, expires_at, deadline, v, r, s))
    consumer.jobs, consumer.opened, consumer.calls = {}, {}, []
    return store.save(ChannelRecord(channel_id, consumer.address, agent, session_key.address, deposit, expires_at))


class ChannelLoadRun(LoadRun):
    """`LoadRun` paying from each consumer's channel (`channels`: consumer address -> its id)."""

    def __init__(self, market: Market, agent_url: str, agent_address: str, consumers: list[LoadConsumer],
                 seconds: float, seed: int, stores: Mapping[str, ChannelStore], channels: Mapping[str, int]) -> None:
        super().__init__(market, agent_url, agent_address, consumers, seconds, seed)
        self.stores, self.channels = stores, channels
        self.domain = channels_domain(market.deployment.chain_id, market.deployment.channels)
        self._request_ids = iter(range(1, 1 << 62))

    async def _run(self) -> None:
        deadline = self.started + self.seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(self._consume(session, consumer, deadline,
                                                 random.Random(f"{self.seed}-{consumer.index}-{lane}"))
                                   for consumer in self.consumers for lane in range(LANES)))
        self.load_ended = time.monotonic()

    def _record(self, consumer: LoadConsumer) -> ChannelRecord:
        return self.stores[consumer.address].get(self.channels[consumer.address])

    def _usable(self, consumer: LoadConsumer) -> list[str]:
        """The methods the channel still has room for (as this client knows it)."""
        room = self._record(consumer).room
        return [m for m in MIX if PRICES[m] <= room]

    def _new_call(self, consumer: LoadConsumer, method: str, params: dict) -> tuple[Call, bytes]:
        body = rpc_body(method, params, request_id=next(self._request_ids))
        return Call(consumer.address, 0, method, PRICES[method], request_hash(body),
                    channel_id=self.channels[consumer.address]), body

    def _payment_headers(self, consumer: LoadConsumer, call: Call) -> dict[str, str]:
        """A voucher one price above everything this client signed on the channel (recorded
        durably first, so no later voucher is ever lower)."""
        store = self.stores[consumer.address]
        record = store.allocate(call.channel_id, call.price)
        call.amount = record.signed
        signature = sign_voucher(store.session_key(record.signer).key, self.domain, call.channel_id, call.amount,
                                 call.request_hash)
        return {"X-Channel-Id": str(call.channel_id), "X-Channel-Amount": str(call.amount),
                "X-Channel-Signature": "0x" + signature.hex()}

    def _receipt_signer(self, call: Call, answer: bytes, headers: Mapping[str, str]) -> str:
        return recover_channel_receipt_signer(self.domain, call.channel_id, call.amount, call.request_hash,
                                              request_hash(answer), headers.get("X-Channel-Receipt") or "")
