"""The agent's channel endpoints: a call paid by a voucher (`POST /` with X-Channel-*) and the
channel's state for its consumer (`GET /channels/{id}`). A mixin of `Agent` (app.py), which
holds the gate, ledger, upstream and claimer they use.

Why the state endpoint: a client keeps its last signed amount locally; one that lost it (a new
machine, a deleted file) asks the agent, which holds every voucher, what the next one must cover.
Only the channel's consumer or signer may ask (a ChannelStateRequest signature, issued within
`STATE_REQUEST_WINDOW` of now), since the answer tells how much the consumer spends.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from aiohttp import web

from facemarket.agent.channel_claims import ChannelClaims
from facemarket.agent.channel_gate import ChannelGate, parse_channel_payment, parse_decimal, parse_signature
from facemarket.agent.channel_ledger import MAX_AMOUNT, ChannelCall
from facemarket.agent.gate import Call
from facemarket.agent.receipts import ReceiptSigner
from facemarket.agent.serving import Service
from facemarket.contracts.agent_protocol import (CHANNEL_RECEIPT_HEADER, CHANNEL_STATE_SIGNATURE_HEADER,
                                                 CHANNEL_STATE_TIME_HEADER, Reason, Refused)
from facemarket.contracts.typed_messages import InvalidSignature, recover_channel_state_request_signer

STATE_REQUEST_WINDOW = 300  # seconds either side of now


class ChannelCalls:
    """Channel calls and state, for `Agent` (its attributes are declared there)."""

    channel_gate: ChannelGate | None
    channel_receipts: ReceiptSigner | None
    channel_claims: ChannelClaims | None
    ledger: Any
    metrics: Any

    def channel_payment(self, headers: Mapping[str, str]) -> tuple[int, int, bytes]:
        """(channel id, amount, signature) of a channel call, refused before its body is read
        when the headers are malformed or the channel is known never to pay this agent."""
        if self.channel_gate is None:
            raise Refused(Reason.UNKNOWN_CHANNEL, "this agent takes no channels: its deployment has no ChannelEscrow")
        payment = parse_channel_payment(headers)
        self.channel_gate.precheck(payment[0])
        return payment

    async def _channel_call(self, channel_id: int, amount: int, signature: bytes, call: Call) -> web.Response:
        payer = f"channel={channel_id}"
        admitted = await self._admit(self.channel_gate.admit(channel_id, amount, signature, call), call, payer)
        if isinstance(admitted, web.Response):
            return admitted
        voucher = admitted.call
        if admitted.replay is not None:
            self.metrics.count("replayed")
            return self._channel_answer(voucher, admitted.replay)
        key = (channel_id, amount, voucher.request_hash)
        return await self._serve(call, admitted.consumer, payer, Service(
            release=lambda: self.ledger.release_channel_call(*key),
            record=lambda answer: self.ledger.finish_channel_call(*key, answer),
            answer=lambda answer: self._channel_answer(voucher, answer),
            served=lambda: self.channel_claims.served(channel_id, voucher.price, admitted.expires_at)))

    def _channel_answer(self, voucher: ChannelCall, body: bytes) -> web.Response:
        receipt = self.channel_receipts.channel_header(voucher.channel_id, voucher.amount, voucher.request_hash, body)
        return web.Response(body=body, content_type="application/json", headers={CHANNEL_RECEIPT_HEADER: receipt})

    async def handle_channel_state(self, request: web.Request) -> web.Response:
        """GET /channels/{id}: the agent's view of the channel, for its consumer or signer."""
        try:
            channel_id = parse_decimal(request.match_info["channel_id"], "channel id", MAX_AMOUNT)
            issued_at = parse_decimal(request.headers.get(CHANNEL_STATE_TIME_HEADER), CHANNEL_STATE_TIME_HEADER,
                                      MAX_AMOUNT)
            signature = parse_signature(request.headers.get(CHANNEL_STATE_SIGNATURE_HEADER),
                                        CHANNEL_STATE_SIGNATURE_HEADER)
            if abs(time.time() - issued_at) > STATE_REQUEST_WINDOW:
                raise Refused(Reason.CHANNEL_BAD_SIGNATURE, f"{CHANNEL_STATE_TIME_HEADER} {issued_at} is not within "
                                                            f"{STATE_REQUEST_WINDOW} s of now ({int(time.time())})")
            if self.channel_gate is None:
                raise Refused(Reason.UNKNOWN_CHANNEL, "this agent takes no channels")
            try:
                signer = recover_channel_state_request_signer(self.channel_gate.domain, channel_id, issued_at,
                                                              signature)
            except InvalidSignature:
                signer = None
            channel = await self.channel_gate.channel(channel_id)
            if signer not in (channel.consumer, channel.signer):
                raise Refused(Reason.CHANNEL_BAD_SIGNATURE, f"channel {channel_id}: the state request is not signed "
                                                            "by the channel's consumer or signer")
        except Refused as refusal:
            return self._refusal(refusal, payer=f"channel-state={request.match_info['channel_id'][:40]!r}")
        return web.json_response({
            "channel_id": channel.channel_id, "consumer": channel.consumer, "signer": channel.signer,
            "deposit": str(channel.deposit), "expires_at": channel.expires_at, "closed": channel.closed,
            "highest_voucher": str(channel.highest), "served": str(channel.served),
            "reserved": str(channel.reserved), "claimed": str(channel.claimed),
            "next_amount": str(channel.next_amount)})
