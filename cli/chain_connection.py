"""One connection to a network's chain: the bound contracts, token facts, and transactions.

Transactions are built, checked (gas estimation runs them first, so a revert is reported with
the contract's own error before anything is sent), signed locally and waited for by
contracts/transactions.Sender; here a failure becomes advice — the one place every command
and the client send through.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from facemarket.cli.amounts import format_amount
from facemarket.cli.durations import describe, utc
from facemarket.cli.errors import (ChainUnreachable, ConfigError, InsufficientTokens,
                                   TransactionFailed)
from facemarket.cli.json_rpc import JsonRpc
from facemarket.cli.networks import LOCAL_CHAIN_ID, Network
from facemarket.cli.progress import Progress, silent
from facemarket.contracts.bind import bind
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.escrow_job import JobState
from facemarket.contracts.typed_messages import Domain, domain_from_eip712
from facemarket.contracts.view_calls import call_params, call_result

if TYPE_CHECKING:
    from facemarket.cli.signers import Signer
    from facemarket.contracts.custom_errors import CustomError

# artifact name of each contract of a deployment
ARTIFACTS = {"token": "FaceToken", "registry": "ServiceRegistry", "escrow": "JobEscrow",
             "channels": "ChannelEscrow"}


# custom error -> (what happened, what to do or None)
_SAYS = {
    "NotJobConsumer": ("only the job's consumer {consumer} may do this, not {caller}",
                       "act as the right account (--account)"),
    "ServiceNotRegistered": ("provider {provider!r} has no service {name!r}",
                             "register it first (`facemarket service register`)"),
    "ServiceNotEnabled": ("service {provider}/{name} is disabled",
                          "register it again to enable it"),
    "ServiceAlreadyRegistered": ("{provider}/{name} is already registered",
                                 "use `facemarket service update`"),
    "ProviderTaken": ("provider {provider!r} already belongs to {owner}",
                      "choose another provider name"),
    "ProviderNotFound": ("there is no provider {provider!r}",
                         "create it first (`facemarket provider create {provider}`)"),
    "NotProviderOwner": ("provider {provider!r} belongs to {owner}, not {caller}",
                         "act as the provider's owner (--account)"),
    "InvalidName": ("{name!r} is not a valid name",
                    "use 1-64 of a-z 0-9 . _ - (no capitals, no /)"),
}


def _dev_owner_hint(owner: str, chain_id: int) -> str:
    """How to act as `owner` when it is one of the local chain's dev accounts."""
    if chain_id != LOCAL_CHAIN_ID:
        return ""
    from facemarket.cli.accounts import dev_index_of
    index = dev_index_of(owner)
    return ("" if index is None else f" (it is the local chain's dev account {index}: "
            f"`facemarket account import-dev {index} owner`, then --account owner)")


@dataclass(frozen=True)
class TokenInfo:
    symbol: str
    decimals: int

    def format(self, units: int) -> str:
        return format_amount(units, self.decimals, self.symbol)


class Chain:
    """The contracts of one network, reached over its RPC URL."""

    def __init__(self, network: Network, progress: Progress = silent) -> None:
        self.network = network
        self.progress = progress
        path = network.deployment_path
        if not path.is_file():
            raise ConfigError(f"network {network.name!r} has no deployment file at {path}",
                              "deploy the contracts (`facemarket contracts deploy`) or give the "
                              "file with `facemarket network add NAME --deployment FILE`")
        self.deployment = Deployment.load(path)
        self.rpc = JsonRpc(network.rpc_url)
        self.chain_id = self.rpc.chain_id()
        expected = network.chain_id or self.deployment.chain_id
        if self.chain_id != expected or self.chain_id != self.deployment.chain_id:
            raise ChainUnreachable(
                f"{network.rpc_url} is chain {self.chain_id}, but network {network.name!r} "
                f"expects {expected} and its deployment {self.deployment.chain_id}",
                "check the RPC URL, or redeploy for this chain")
        if self.rpc.code(self.deployment.escrow) in ("0x", ""):
            raise ConfigError(f"no contract at the escrow address {self.deployment.escrow} on "
                              f"{network.rpc_url} (was the chain restarted?)",
                              "deploy again with `facemarket contracts deploy`")

    # --- web3, loaded by the first command that needs it (transactions, events) -------------
    @cached_property
    def w3(self) -> Any:
        from facemarket.cli.web3_provider import connect
        return connect(self.network.rpc_url)

    @cached_property
    def contracts(self) -> Any:
        """web3 contract objects of the deployment (contracts/bind.py)."""
        return bind(self.w3, self.deployment)

    @cached_property
    def _sender(self) -> Any:
        from facemarket.contracts.transactions import Sender
        return Sender(self.w3, self.chain_id)

    # --- reads without web3 ------------------------------------------------------------------
    def view(self, contract: str, function: str, *args: Any) -> Any:
        """A view of the deployment's `contract` (token, registry, escrow, channels) read with a bare
        eth_call (cli/json_rpc.py; addresses in lower case, as eth_abi decodes them); a revert
        raises contracts.view_calls.ViewReverted."""
        return self.rpc.view(ARTIFACTS[contract], getattr(self.deployment, contract), function, *args)

    # --- facts read once ---------------------------------------------------------------------
    @cached_property
    def token(self) -> TokenInfo:
        return TokenInfo(self.view("token", "symbol"), self.view("token", "decimals"))

    @cached_property
    def domain(self) -> Domain:
        """The escrow's EIP-712 domain, as it publishes it (ERC-5267), not hard-coded."""
        return domain_from_eip712(self.view("escrow", "eip712Domain"))

    def read(self, *functions: Any) -> list[Any]:
        """The values of view calls (`contract.functions.f(args)`) at the latest block, in one
        round trip: a JSON-RPC batch of bare eth_calls (see contracts/view_calls.py for why).
        A node that refuses batches (some hosted ones limit them) is asked once per call."""
        requests_ = [("eth_call", call_params(function)) for function in functions]
        answers = self.w3.provider.make_batch_request(requests_)
        if not isinstance(answers, list):  # the node refused the batch as a whole
            answers = [self.w3.provider.make_request(method, params) for method, params in requests_]
        return [call_result(function, answer) for function, answer in zip(functions, answers)]

    def now(self) -> int:
        """The chain's clock (latest block time): expiries are judged by it, not by ours."""
        return self.rpc.latest_timestamp()

    @cached_property
    def _errors(self) -> dict[bytes, CustomError]:
        """Custom errors of every contract by selector, to say why a call would revert."""
        from facemarket.contracts.custom_errors import all_errors
        return all_errors()

    # --- transactions ------------------------------------------------------------------------
    def send(self, signer: Signer, call: Any, what: str, *,
             reuse_gas: Hashable | None = None) -> Any:
        """Check, sign, send and wait for a contract call (contracts/transactions.Sender);
        returns the receipt (status 1), or raises TransactionFailed with the contract's reason
        and what to do.

        Gas estimation runs the call first, so a revert is reported before anything is sent.
        A hot path names its call shape in `reuse_gas` and later calls of that shape reuse the
        first estimate (a revert then shows on the receipt, and its reason is read by
        replaying the call)."""
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

        from facemarket.contracts.transactions import ReceiptTimeout
        from facemarket.contracts.transactions import TransactionFailed as Reverted
        try:
            with self.progress(f"{what}: waiting for the transaction"):
                return self._sender.send(signer, call, reuse_gas=reuse_gas)
        except (ContractCustomError, ContractLogicError) as error:
            raise self.revert_error(error, what) from None
        except Web3RPCError as error:
            message = error.rpc_response.get("error", {}).get("message") if isinstance(
                getattr(error, "rpc_response", None), dict) else None
            message = message or str(error)
            hint = (f"account {signer.address} needs ETH for gas: on the local chain "
                    f"`facemarket account fund {signer.address} --eth 1`, elsewhere send it ETH "
                    "(an exchange, another wallet, a testnet's faucet)"
                    if "insufficient funds" in message.lower() else None)
            raise TransactionFailed(f"{what} failed: {message}", hint) from None
        except ReceiptTimeout as error:
            raise TransactionFailed(str(error), "check the chain, then look it up") from None
        except Reverted as reverted:
            try:  # replay it to learn why (the state may have moved on; then say no more)
                call.call({"from": signer.address})
            except (ContractCustomError, ContractLogicError) as error:
                raise self.revert_error(error, what) from None
            tx_hash = reverted.receipt["transactionHash"]
            raise TransactionFailed(f"{what}: transaction {tx_hash.to_0x_hex()} reverted") from None

    def tracked_nonce(self, address: str) -> int | None:
        """The nonce the next transaction of `address` sent here will carry, when tracked."""
        if "_sender" not in self.__dict__:  # nothing sent yet: do not load web3 to say so
            return None
        return self._sender.tracked_nonce(address)

    def revert_error(self, error: Exception, what: str) -> TransactionFailed:
        """Turn a revert into an error naming the contract's reason and what to do."""
        name, args = self.decode_revert(error)
        if name == "ERC20InsufficientBalance":
            return InsufficientTokens(
                f"{what}: account {args['sender']} holds {self.token.format(args['balance'])}, "
                f"needs {self.token.format(args['needed'])}",
                "get tokens first (`facemarket token mint` by the token owner, or "
                "`facemarket token transfer` from another account)")
        if name == "JobNotExpired":
            left = describe(args["expiresAt"] - self.now())
            return TransactionFailed(f"{what}: job {args['jobId']} has not expired yet (expires "
                                     f"{left}, at {utc(args['expiresAt'])} by the chain's clock)",
                                     "a job can be refunded once it has expired")
        if name == "JobNotRefundable":
            return TransactionFailed(f"{what}: job {args['jobId']} is "
                                     f"{JobState(args['state']).name}", "only an unused job (CREATED "
                                     "or FUNDED) can be refunded")
        if name in _SAYS:
            says, hint = _SAYS[name]
            return TransactionFailed(f"{what}: {says.format(**args)}", hint.format(**args))
        if name == "OwnableUnauthorizedAccount":
            owner = self.contracts.token.functions.owner().call()
            return TransactionFailed(
                f"{what}: account {args['account']} is not the token's owner {owner}",
                "act as the owner: --account NAME|ADDRESS of an imported account holding its key"
                + _dev_owner_hint(owner, self.chain_id))
        detail = f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})" if name else str(error)
        return TransactionFailed(f"{what} would revert: {detail}")

    def decode_revert(self, error: Exception) -> tuple[str | None, dict[str, Any]]:
        from facemarket.contracts.custom_errors import decode_custom_error, revert_data
        raw = revert_data(error)
        decoded = decode_custom_error(raw, self._errors) if raw else None
        if decoded is None:
            return None, {}
        name, args = decoded
        return name, {k: v.hex() if isinstance(v, bytes) else v for k, v in args.items()}
