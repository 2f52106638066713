"""Test support for calls paid from channels: a consumer's side of a channel to a test agent
(opening it on the session's ChannelEscrow, signing vouchers and state requests with
contracts.typed_messages directly) and the chain's view of it."""

from __future__ import annotations

import time

from eth_account.signers.local import LocalAccount
from web3 import Web3

from facemarket.contracts.channel import Channel, read_channel
from facemarket.contracts.typed_messages import (channels_domain, recover_channel_receipt_signer, request_hash,
                                                 sign_channel_state_request, sign_voucher)
from tests.fixtures.agent import Market, Reply

DEPOSIT = 10**6


class ChannelConsumer:
    """A consumer (its own key and tokens) with channels to agents on the market's ChannelEscrow."""

    def __init__(self, market: Market, account: LocalAccount | None = None) -> None:
        self.market = market
        self.account = account or market.new_account()
        self.channels = market.contracts.channels
        self.domain = channels_domain(market.deployment.chain_id, market.deployment.channels)

    def open(self, agent: str, deposit: int = DEPOSIT, expires_in: int = 3600, signer: str | None = None) -> int:
        self.market.send(self.account, self.market.contracts.token.functions.approve(self.channels.address, deposit))
        channel_id = self.channels.functions.nextChannelId().call()
        self.market.send(self.account, self.channels.functions.openChannel(
            agent, signer or self.account.address, deposit, self.market.now() + expires_in))
        return channel_id

    def pay(self, channel_id: int, amount: int, body: bytes, key: LocalAccount | None = None) -> dict[str, str]:
        """The X-Channel-* headers of a voucher for `amount` over `body` (signed by the consumer)."""
        signature = sign_voucher((key or self.account).key, self.domain, channel_id, amount, request_hash(body))
        return {"X-Channel-Id": str(channel_id), "X-Channel-Amount": str(amount),
                "X-Channel-Signature": "0x" + signature.hex()}

    def state_headers(self, channel_id: int, key: LocalAccount | None = None,
                      issued_at: int | None = None) -> dict[str, str]:
        issued_at = int(time.time()) if issued_at is None else issued_at
        signature = sign_channel_state_request((key or self.account).key, self.domain, channel_id, issued_at)
        return {"X-Channel-State-Issued-At": str(issued_at), "X-Channel-State-Signature": "0x" + signature.hex()}

    def chain(self, channel_id: int) -> Channel:
        return read_channel(self.channels, channel_id)

    def receipt_signer(self, channel_id: int, amount: int, body: bytes, reply: Reply) -> str:
        """Who signed the answer's X-Channel-Receipt (the agent, if it is right)."""
        return recover_channel_receipt_signer(self.domain, channel_id, amount, request_hash(body),
                                              request_hash(reply.body), reply.headers["X-Channel-Receipt"])

    def claimed_events(self, channel_id: int) -> list[dict]:
        """The ChannelClaimed logs of `channel_id`."""
        topic = "0x" + Web3.keccak(text="ChannelClaimed(uint256,address,uint256,uint256)").hex().removeprefix("0x")
        return self.market.w3.eth.get_logs({"fromBlock": self.market.deployment.block, "toBlock": "latest",
                                            "address": self.channels.address,
                                            "topics": [topic, "0x" + channel_id.to_bytes(32, "big").hex()]})
