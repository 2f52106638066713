"""A reorg undoes channel facts too: a top-up in undone blocks is forgotten (the channel is read
again as of the block the follower went back to), so a voucher it allowed is refused again.
On a Ganache of the module's own (evm_snapshot / evm_revert), as tests/test_reorg_rewind.py does
for jobs."""

from __future__ import annotations

from facemarket.contracts.agent_protocol import Reason
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import http, rpc_body, wait_until
from tests.test_reorg_rewind import own_market, rpc  # noqa: F401  (own_market: the module's own chain)


def test_a_top_up_in_undone_blocks_is_forgotten(agent_factory, own_market, counting_upstream):  # noqa: F811
    chain, market = own_market
    agent = agent_factory(counting_upstream.url, chain_url=chain.url, deployment_=market.deployment,
                          key=market.new_account(tokens=0), prices={"ping": 1})
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(agent.address, deposit=10)

    def deposit() -> int:
        reply = http("GET", agent.url + f"channels/{channel_id}", headers=consumer.state_headers(channel_id))
        return int(reply.json["deposit"])

    wait_until(lambda: deposit() == 10, 30, "the channel in the agent's ledger")
    before_top_up = rpc(market, "evm_snapshot")
    market.send(consumer.account, market.contracts.token.functions.approve(consumer.channels.address, 10))
    market.send(consumer.account, consumer.channels.functions.topUp(channel_id, 10))
    wait_until(lambda: deposit() == 20, 30, "the top-up in the agent's ledger")

    assert rpc(market, "evm_revert", before_top_up) is True  # the top-up's blocks are undone
    for _ in range(4):  # the new chain's own blocks, where the top-up is not
        rpc(market, "evm_mine")
    wait_until(lambda: deposit() == 10, 30, "the rewind to forget the top-up")
    body = rpc_body("ping")
    refused = agent.post(body, consumer.pay(channel_id, 15, body))
    assert refused.error_code == Reason.CHANNEL_DEPOSIT_EXCEEDED.code, refused.body
    assert "rewound 1 channels" in agent.log_path.read_text()
