"""Test support for the contracts: parties on the session's deployment, sending calls and
naming the custom error a call reverts with (decoded from the revert data with the ABIs)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from facemarket.contracts.bind import Contracts, bind
from facemarket.contracts.custom_errors import all_errors, decode_custom_error, revert_data
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.escrow_job import JobState
from facemarket.contracts.transactions import call
from facemarket.contracts.typed_messages import (
    Domain,
    domain_from_eip712,
    request_hash,
    sign_invocation,
    sign_permit,
)

HOUR = 3600
PRICE = 25 * 10**6  # 0.25 FACE

NONE, CREATED, FUNDED, COMPLETED, REFUNDED = JobState  # IntEnum: equal to the ints getJob returns


ERRORS = all_errors()


def selector(error_name: str) -> bytes:
    return next(sel for sel, known in ERRORS.items() if known.name == error_name)


class Reverted(AssertionError):
    pass


def decode_revert(error: ContractLogicError) -> tuple[str, tuple]:
    """(error name, decoded arguments) of a custom-error revert, from eth_call or eth_estimateGas."""
    return decode_error(revert_data(error))


def decode_error(raw: bytes) -> tuple[str, tuple]:
    """(error name, decoded arguments in order) of ABI-encoded custom-error data."""
    name, arguments = decode_custom_error(raw, ERRORS)
    return name, tuple(arguments.values())


@dataclass
class Parties:
    """The session's deployment seen by: owner (deployer), two consumers, an agent, a stranger."""

    w3: Web3
    contracts: Contracts
    owner: LocalAccount
    consumer: LocalAccount
    other_consumer: LocalAccount
    agent: LocalAccount
    stranger: LocalAccount

    @classmethod
    def on(cls, w3: Web3, deployment: Deployment, keys: list[str]) -> Parties:
        accounts = [Account.from_key(k) for k in keys]
        return cls(w3, bind(w3, deployment), *accounts[:5])

    @property
    def escrow(self):
        return self.contracts.escrow

    @property
    def token(self):
        return self.contracts.token

    @property
    def domain(self) -> Domain:
        return domain_from_eip712(self.escrow.functions.eip712Domain().call())

    # ------------------------------------------------------------ chain

    def send(self, account: LocalAccount, function):
        return call(self.w3, account, function)

    def reverts(self, account: LocalAccount, function) -> tuple[str, tuple]:
        """The custom error the transaction would revert with (estimating it, as every send does)."""
        try:
            self.send(account, function)
        except ContractLogicError as error:
            return decode_revert(error)
        raise Reverted("the transaction did not revert")

    def now(self) -> int:
        """The chain's time now: a block is mined first, because the latest block's timestamp is
        that of the last transaction, which on a loaded machine can be a minute old (a job made to
        expire 60 s after it was then already expired when mined)."""
        self.w3.provider.make_request("evm_mine", [])
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def balance(self, account_or_address) -> int:
        address = getattr(account_or_address, "address", account_or_address)
        return self.token.functions.balanceOf(address).call()

    def balances(self) -> dict[str, int]:
        return {name: self.balance(getattr(self, name)) for name in ("consumer", "other_consumer", "agent", "stranger")} | {
            "escrow": self.balance(self.escrow.address)}

    def events(self, receipt, name: str, contract=None) -> list[dict]:
        """The `name` events (of the escrow, or `contract`) in a receipt, as dicts of their arguments."""
        event = getattr((contract or self.escrow).events, name)()
        return [dict(e["args"]) for e in event.process_receipt(receipt, errors=DISCARD)]

    # ------------------------------------------------------------ jobs

    def approve(self, consumer: LocalAccount, amount: int) -> None:
        self.send(consumer, self.token.functions.approve(self.escrow.address, amount))

    def open_funded(self, consumer: LocalAccount | None = None, price: int = PRICE, expires_in: int = HOUR,
                    count: int = 1) -> list[int]:
        """Opens `count` FUNDED jobs for the agent with approve + createAndFundJob(s); returns their ids."""
        consumer = consumer or self.consumer
        self.approve(consumer, price * count)
        first = self.escrow.functions.nextJobId().call()
        fns = self.escrow.functions
        expires = self.now() + expires_in
        if count == 1:
            self.send(consumer, fns.createAndFundJob(self.agent.address, price, expires))
        else:
            self.send(consumer, fns.createAndFundJobs(self.agent.address, price, expires, count))
        return list(range(first, first + count))

    def permit(self, consumer: LocalAccount, value: int, deadline: int, signer: LocalAccount | None = None):
        """(v, r, s) of consumer's permit for the escrow, signed by `signer` (default the consumer)."""
        nonce = self.token.functions.nonces(consumer.address).call()
        token_domain = domain_from_eip712(self.token.functions.eip712Domain().call())
        return sign_permit((signer or consumer).key, token_domain, consumer.address, self.escrow.address,
                           value, nonce, deadline)

    def invocation(self, job_id: int, body: bytes = b'{"jsonrpc":"2.0","id":1,"method":"detect_faces"}',
                   signer: LocalAccount | None = None, domain: Domain | None = None, agent: str | None = None):
        """(requestHash, signature) of an Invocation of `job_id` for the agent, by the consumer by default."""
        digest_of_body = request_hash(body)
        signature = sign_invocation((signer or self.consumer).key, domain or self.domain, job_id,
                                    agent or self.agent.address, digest_of_body)
        return digest_of_body, signature

    def job(self, job_id: int) -> tuple:
        return tuple(self.escrow.functions.getJob(job_id).call())
