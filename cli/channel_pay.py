"""Paying a call from a payment channel: the voucher, the request, the agent's receipt.

A call on a channel signs a Voucher(channel, cumulative amount, keccak256(body)) with the
channel's session key (cli/channel_store.py: the amount is recorded durably before the voucher
leaves), POSTs it to the agent and checks the agent's ChannelReceipt. Nothing touches the chain
and the keystore stays encrypted: that is what makes a call on a channel fast.

Which channel: one of this consumer's to the service's agent, open, not expiring within the
agent's margin, with room for the price (as this client knows it; deposits only grow). When
none is known here (`--pay channel`), the chain lists the consumer's channels to that agent and
the client resumes from the agent's own state (GET /channels/{id}, signed), as it does when the
agent says a voucher is below what it already holds (another machine paid on the channel).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import requests
from facemarket.contracts.keccak import keccak

from facemarket.cli.bounded_http import MAX_ANSWER_BYTES, read_bounded
from facemarket.cli.channel_store import ChannelRecord, ChannelStore
from facemarket.cli.channels import Channels, ChannelUnusable
from facemarket.contracts.channel import Channel
from facemarket.cli.durations import describe
from facemarket.cli.errors import AgentRefused, AgentUnreachable, ServiceFailed
from facemarket.cli.kept_http import Answer, ExchangeFailed
from facemarket.cli.receipts import checked_receipt
from facemarket.cli.refusals import BY_CODE
from facemarket.cli.registry import Service
from facemarket.cli.signers import KeySigner, Signer
from facemarket.contracts.agent_protocol import (CHANNEL_AMOUNT_HEADER, CHANNEL_ID_HEADER,
                                                 CHANNEL_RECEIPT_HEADER, CHANNEL_SIGNATURE_HEADER,
                                                 CHANNEL_STATE_SIGNATURE_HEADER,
                                                 CHANNEL_STATE_TIME_HEADER, Reason)
from facemarket.contracts.typed_messages import recover_channel_receipt_signer

if TYPE_CHECKING:
    from facemarket.cli.client import Client, PaidCall

DEFAULT_MARGIN = 360        # seconds: a channel is used only if it lives this much longer
STATE_TIMEOUT = 10.0        # seconds for GET /channels/{id}

# the agent's refusal of a voucher -> what to do ({channel}, {service} filled in)
CHANNEL_ADVICE: dict[Reason, str] = {
    Reason.UNKNOWN_CHANNEL: "the agent cannot find channel {channel} on its chain: check you and "
                            "the agent use the same network (`facemarket network list`)",
    Reason.CHANNEL_WRONG_AGENT: "channel {channel} pays another agent: open one to this service's "
                                "(`facemarket channel open --service {service}`), or --pay job",
    Reason.CHANNEL_BAD_SIGNATURE: "the voucher is not signed by channel {channel}'s signer: call as "
                                  "the account that opened it (--account)",
    Reason.CHANNEL_UNDERPAID: "the agent holds more on channel {channel} than this client signed: "
                              "`facemarket channel status {channel}` shows both",
    Reason.CHANNEL_DEPOSIT_EXCEEDED: "channel {channel} is used up: `facemarket channel topup "
                                     "{channel} --amount 5`, or --pay job",
    Reason.CHANNEL_EXPIRING: "channel {channel} expires too soon for the agent to claim: "
                             "`facemarket channel extend {channel} --expires-in 7d`, or --pay job",
    Reason.CHANNEL_CLOSED: "channel {channel} was reclaimed: open a new one (`facemarket channel "
                           "open --service {service}`)",
    Reason.CHANNEL_BUSY: "the same call is being served right now: wait for it",
}


@dataclass(frozen=True)
class ChannelCharge:
    """What a call on a channel paid: the voucher's cumulative amount, this call's price and the
    room left on the channel afterwards (as this client knows it); and the seconds this client
    spent on the payment itself (the amount made durable, keccak of body and answer, the
    voucher's signature, the receipt checked), so a caller can say what paying added to a call."""

    channel_id: int
    amount: int
    price: int
    room: int
    payment_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"id": self.channel_id, "amount": self.amount, "price": self.price, "room": self.room}


class _Underpaid(Exception):
    """The agent holds a higher voucher than this client's record: resume and sign again."""


class ChannelPayer:
    """The channels of a `Client`'s consumer: opening one, and paying calls from them."""

    def __init__(self, client: "Client") -> None:
        self.client = client
        self.chain = client.chain
        self._keys: dict[str, KeySigner | None] = {}

    @cached_property
    def contract(self) -> Channels:
        return Channels(self.chain)

    @cached_property
    def store(self) -> ChannelStore:
        return ChannelStore(self.client.session.home, self.chain.chain_id,
                            self.chain.deployment.channels)

    def margin(self, svc: Service) -> int:
        spec = self.client.spec(svc)
        return max(spec.expiry_margin, DEFAULT_MARGIN) if spec is not None else DEFAULT_MARGIN

    # --- opening ------------------------------------------------------------------------------
    def open(self, svc: Service, deposit: int, expires_in: int) -> ChannelRecord:
        """A channel to `svc`'s agent with a fresh session key as its signer (on disk first)."""
        self.check_lifetime(svc, expires_in)
        session_key = self.store.new_session_key()
        channel = self.contract.open(self.client.signer, svc.agent, session_key.address, deposit,
                                     self.client.chain_time() + expires_in)
        return self.store.save(_record(channel, 0, svc.ref))

    def check_lifetime(self, svc: Service, expires_in: int) -> None:
        """Refuse a channel the agent would refuse every voucher of: one no longer than its margin."""
        margin = self.margin(svc)
        if expires_in <= margin:
            raise ChannelUnusable(f"a channel expiring {describe(expires_in)} is too short for the "
                                  f"agent of {svc.ref}: it refuses vouchers within "
                                  f"{describe(margin)[3:]} of expiry", "nothing was paid; give a "
                                  f"longer --expires-in (e.g. --expires-in {max(2 * margin, 86400)}s)")

    # --- choosing -----------------------------------------------------------------------------
    def usable(self, svc: Service, price: int) -> ChannelRecord | None:
        """A channel known here that can pay `price` to `svc`'s agent (no chain round trip
        beyond the clock): the one with the least room that suffices, to use channels up."""
        valid_after = self.client.chain_time() + self.margin(svc)
        fits = [r for r in self.store.all(self.client.address)
                if r.agent == svc.agent and r.expires_at > valid_after and r.room >= price]
        return min(fits, key=lambda r: (r.room, r.id)) if fits else None

    def from_chain(self, svc: Service, price: int) -> ChannelRecord | None:
        """A channel of this consumer to `svc`'s agent found on chain, resumed from the agent."""
        valid_after = self.chain.now() + self.margin(svc)
        for channel in self.contract.of_consumer(self.client.address, svc.agent):
            if not channel.closed and channel.expires_at > valid_after and channel.deposit - channel.claimed >= price:
                record = self.resume(svc, channel)
                if record.room >= price:
                    return record
        return None

    def resume(self, svc: Service, channel: Channel) -> ChannelRecord:
        """The record rebuilt from the chain and the agent's state: the next voucher covers the
        highest one the agent holds and everything it served or is serving."""
        state = self.agent_state(svc, channel)
        signed = max(int(state["next_amount"]), channel.claimed)
        return self.store.save(_record(channel, signed, svc.ref))

    def agent_state(self, svc: Service, channel: Channel) -> dict:
        """GET /channels/{id}, signed by the channel's session key (or the consumer's key)."""
        issued_at = int(time.time())
        signature = self._key_for(channel.signer).sign_channel_state_request(
            self.contract.domain, channel.id, issued_at)
        url = f"{svc.endpoint.rstrip('/')}/channels/{channel.id}"
        try:
            response = self.client.http.get(url, timeout=STATE_TIMEOUT, stream=True, headers={
                CHANNEL_STATE_TIME_HEADER: str(issued_at),
                CHANNEL_STATE_SIGNATURE_HEADER: "0x" + signature.hex()})
            state = json.loads(read_bounded(response, MAX_ANSWER_BYTES, f"the state of channel {channel.id}"))
        except requests.RequestException as error:
            raise AgentUnreachable(f"cannot ask the agent of {svc.ref} for channel {channel.id}'s "
                                   f"state at {url} ({type(error).__name__})",
                                   "try again when the agent is up") from None
        except ValueError:
            raise AgentRefused(f"the agent's state of channel {channel.id} is not JSON "
                               f"(HTTP {response.status_code})") from None
        amounts = ("next_amount", "served")
        if (response.status_code != 200 or not isinstance(state, dict)
                or not all(str(state.get(key, "")).isdigit() for key in amounts)):
            error = state.get("error") if isinstance(state, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise AgentRefused(f"the agent of {svc.ref} did not give channel {channel.id}'s state "
                               f"(HTTP {response.status_code}: {message or str(state)[:200]})",
                               "check the channel is this agent's (`facemarket channel list`)")
        return state

    # --- paying -------------------------------------------------------------------------------
    def pay(self, svc: Service, method: str, body: bytes, price: int,
            record: ChannelRecord) -> "PaidCall":
        """One call paid on `record`'s channel; signs again once, higher, when the agent shows it
        holds more on the channel than this client knew (state resumed from the agent)."""
        try:
            return self._post(svc, method, body, price, record)
        except _Underpaid:
            record = self.resume(svc, self.contract.get(record.id))
            try:
                return self._post(svc, method, body, price, record)
            except _Underpaid:
                raise AgentRefused(f"the agent refused channel {record.id}'s voucher as too low "
                                   "twice, after this client resumed from the agent's own state",
                                   "report the agent; pay this call with --pay job") from None

    def _post(self, svc: Service, method: str, body: bytes, price: int,
              record: ChannelRecord) -> "PaidCall":
        from facemarket.cli.client import PaidCall
        started = time.perf_counter()
        try:
            record = self.store.allocate(record.id, price)
        except ValueError:
            raise ChannelUnusable(f"channel {record.id} has {self.chain.token.format(record.room)} "
                                  f"left, {method} costs {self.chain.token.format(price)}",
                                  f"`facemarket channel topup {record.id} --amount 5`, or --pay job") from None
        request_hash = keccak(body)
        signature = self._key_for(record.signer).sign_voucher(self.contract.domain, record.id,
                                                              record.signed, request_hash)
        paying = time.perf_counter() - started
        headers = {"Content-Type": "application/json", CHANNEL_ID_HEADER: str(record.id),
                   CHANNEL_AMOUNT_HEADER: str(record.signed),
                   CHANNEL_SIGNATURE_HEADER: "0x" + signature.hex()}
        what = f"{svc.ref}.{method} (channel {record.id})"
        try:
            with self.client.session.progress(f"calling {what}"):
                answer = self.client.calls.post(svc.endpoint, body, headers, self.client.timeout,
                                                MAX_ANSWER_BYTES, f"the answer of {what}")
        except ExchangeFailed as error:
            raise AgentUnreachable(f"cannot reach the agent of {svc.ref!r} at {svc.endpoint} "
                                   f"({error})",
                                   f"the voucher for channel {record.id} is signed; the agent "
                                   "claims only calls it served: call again when it is up") from None
        try:
            payload = json.loads(answer.body)
        except ValueError:
            raise AgentRefused(f"the agent answered HTTP {answer.status} without JSON",
                               "nothing was served; the agent claims only served calls") from None
        error = payload.get("error") if isinstance(payload, dict) else None
        if error and 4000 <= int(error.get("code", 0)) <= 4099:
            self._refused(svc, record, error)
        if error and 400 <= answer.status < 500:
            raise ServiceFailed(f"{svc.ref}.{method} refused the request: {error.get('message')}",
                                "nothing was charged (refused before any face work); fix the "
                                "request and call again", code=error.get("code"), data=error.get("data"))
        checking = time.perf_counter()
        receipt = self._check_receipt(answer, record, request_hash)
        if error:
            raise ServiceFailed(f"{svc.ref}.{method} failed: {error.get('message')}",
                                "the call was served and paid; fix the request and call again",
                                code=error.get("code"), data=error.get("data"))
        response_hash = keccak(answer.body)
        charge = ChannelCharge(record.id, record.signed, price, record.room,
                               paying + time.perf_counter() - checking)
        return PaidCall(payload.get("result"), None, svc, method, request_hash, response_hash, receipt, False, charge)

    def _refused(self, svc: Service, record: ChannelRecord, error: dict) -> None:
        code = int(error["code"])
        reason = BY_CODE.get(code)
        if reason is Reason.CHANNEL_UNDERPAID:
            raise _Underpaid
        hint = (CHANNEL_ADVICE.get(reason, "nothing was charged; the agent claims only served "
                                           "calls: try again")
                if reason is not None else None)
        raise AgentRefused(f"agent refused channel {record.id}'s voucher: {error.get('message')}",
                           hint and hint.format(channel=record.id, service=svc.ref), code=code,
                           reason=reason.name.lower() if reason else None)

    def _check_receipt(self, answer: Answer, record: ChannelRecord, request_hash: bytes) -> bytes:
        """The agent's ChannelReceipt over (channel, amount, request, response)."""
        return checked_receipt(answer, CHANNEL_RECEIPT_HEADER, f"channel {record.id}", record.agent,
                               lambda response_hash, receipt: recover_channel_receipt_signer(
                                   self.contract.domain, record.id, record.signed, request_hash,
                                   response_hash, receipt))

    def _key_for(self, signer: str) -> Signer:
        """The session key of `signer` when held here, else the consumer's own signer (its key
        agent or its decrypted key: the contract and the agent accept the consumer's vouchers
        too)."""
        if signer not in self._keys:
            key = self.store.session_key(signer)
            self._keys[signer] = KeySigner(key) if key is not None else None
        return self._keys[signer] or self.client.signer


def _record(channel: Channel, signed: int, service: str) -> ChannelRecord:
    return ChannelRecord(channel.id, channel.consumer, channel.agent, channel.signer,
                         channel.deposit, channel.expires_at, signed, service)
