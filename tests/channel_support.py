"""Test support for ChannelEscrow: the session's parties (tests.escrow_support.Parties) acting on
channels: opening (approve or permit), signing vouchers, claiming, reading a channel."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from facemarket.contracts import artifacts
from facemarket.contracts.channel import Channel, read_channel
from facemarket.contracts.deploy import deploy_contract
from facemarket.contracts.typed_messages import Domain, domain_from_eip712, request_hash, sign_permit, sign_voucher
from tests.escrow_support import HOUR, Parties

DEPOSIT = 5 * 10**8  # 5 FACE
PRICE = 10**6  # 0.01 FACE a call
BODY = b'{"jsonrpc":"2.0","id":1,"method":"find_face"}'


class ChannelParties:
    """Parties on the deployment's ChannelEscrow (or another one, `channels`)."""

    def __init__(self, parties: Parties, channels=None) -> None:
        self.p = parties
        self.channels = channels if channels is not None else parties.contracts.channels
        self.fns = self.channels.functions

    def __getattr__(self, name: str):
        return getattr(self.p, name)  # consumer, agent, send, reverts, now, advance, balance, events…

    @property
    def domain(self) -> Domain:
        return domain_from_eip712(self.fns.eip712Domain().call())

    def holdings(self) -> int:
        return self.p.balance(self.channels.address)

    def approve(self, consumer: LocalAccount, amount: int) -> None:
        self.p.send(consumer, self.p.token.functions.approve(self.channels.address, amount))

    def permit(self, consumer: LocalAccount, value: int, deadline: int, signer: LocalAccount | None = None):
        """(v, r, s) of consumer's permit for the channels contract."""
        nonce = self.p.token.functions.nonces(consumer.address).call()
        token_domain = domain_from_eip712(self.p.token.functions.eip712Domain().call())
        return sign_permit((signer or consumer).key, token_domain, consumer.address, self.channels.address,
                           value, nonce, deadline)

    def open(self, consumer: LocalAccount | None = None, signer: str | None = None, deposit: int = DEPOSIT,
             expires_in: int = HOUR, agent: str | None = None) -> int:
        """Opens a channel with approve + openChannel; returns its id."""
        consumer = consumer or self.p.consumer
        self.approve(consumer, deposit)
        channel_id = self.fns.nextChannelId().call()
        self.p.send(consumer, self.fns.openChannel(agent or self.p.agent.address, signer or consumer.address,
                                                   deposit, self.p.now() + expires_in))
        return channel_id

    def open_with_permit(self, consumer: LocalAccount | None = None, signer: str | None = None,
                         deposit: int = DEPOSIT, expires_in: int = HOUR):
        """Opens a channel with openChannelWithPermit (no approve); returns (id, receipt)."""
        consumer = consumer or self.p.consumer
        deadline = self.p.now() + HOUR
        v, r, s = self.permit(consumer, deposit, deadline)
        channel_id = self.fns.nextChannelId().call()
        receipt = self.p.send(consumer, self.fns.openChannelWithPermit(
            self.p.agent.address, signer or consumer.address, deposit, self.p.now() + expires_in, deadline, v, r, s))
        return channel_id, receipt

    def voucher(self, channel_id: int, amount: int, signer: LocalAccount | None = None,
                body: bytes = BODY) -> tuple[bytes, bytes]:
        """(requestHash, signature) of a Voucher for `amount`, by the consumer by default."""
        digest_of_body = request_hash(body)
        key = (signer or self.p.consumer).key
        return digest_of_body, sign_voucher(key, self.domain, channel_id, amount, digest_of_body)

    def claim_call(self, channel_id: int, amount: int, voucher_amount: int | None = None,
                   signer: LocalAccount | None = None, body: bytes = BODY):
        """The claim(…) call for `amount` with a voucher for `voucher_amount` (default: amount)."""
        voucher_amount = amount if voucher_amount is None else voucher_amount
        rh, signature = self.voucher(channel_id, voucher_amount, signer, body)
        return self.fns.claim(channel_id, amount, voucher_amount, rh, signature)

    def channel(self, channel_id: int) -> Channel:
        return read_channel(self.channels, channel_id)

    def events(self, receipt, name: str) -> list[dict]:
        return self.p.events(receipt, name, self.channels)


def fresh_channels(parties: Parties, owner: LocalAccount, token: str | None = None) -> ChannelParties:
    """A newly deployed ChannelEscrow (on the session's token unless `token`), seen by the same parties."""
    address = deploy_contract(parties.w3, owner, "ChannelEscrow", token or parties.token.address)["contractAddress"]
    return ChannelParties(parties, parties.w3.eth.contract(address=address, abi=artifacts.load("ChannelEscrow")["abi"]))
