"""Contract view calls as bare `eth_call` requests: encoded and decoded here, sent by the caller.

Why: web3's `contract.functions.f(...).call()` spends 1.5-2 ms of Python per call (middleware,
formatters; AsyncWeb3 also asks `eth_chainId` twice) around a ~2.5 ms answer from Ganache
(benchmarks/view_call_bench.py prints both ways from the same run: on 2 cores at load 9, 7.7 ms
bare against 15.5 ms through `.call()`). The
paid-call hot path reads the chain twice: the client's balance and permit nonce before opening a
job (sent here as one JSON-RPC batch), and the agent's first sight of a new job.

`view_params` / `view_values` work from an ABI entry alone, with the hand-written codec of
contracts/abi_codec.py: neither web3 (half a second to import) nor eth_abi and eth_utils (0.2 s of
CPU) are loaded by the CLI's prepaid `call`, which reads the chain through them (cli/json_rpc.py);
`call_params` / `call_result` take a bound web3 function and raise web3's ContractLogicError.
"""

from __future__ import annotations

from typing import Any

from facemarket.contracts.abi_codec import canonical, decode, encode, selector


class ViewReverted(Exception):
    """The node answered an eth_call with an error (a revert); `data` is its revert data."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


def view_params(address: str, abi: dict, args: tuple | list, block: int | str = "latest") -> list:
    """The `eth_call` params of function `abi` of the contract at `address` with `args`."""
    data = selector(abi) + encode([canonical(i) for i in abi["inputs"]], list(args))
    return [{"to": address, "data": "0x" + data.hex()},
            block if isinstance(block, str) else hex(block)]


def view_values(abi: dict, response: dict) -> Any:
    """The return value of the `eth_call` answer `response`, decoded as eth_abi does (addresses in
    lower case; a single output unwrapped, several as a tuple). An error answer raises
    ViewReverted with the revert data."""
    if "error" in response:
        error = response["error"]
        raise ViewReverted(str(error.get("message", error)), error.get("data"))
    values = decode([canonical(o) for o in abi["outputs"]], bytes.fromhex(response["result"][2:]))
    return values[0] if len(values) == 1 else values


def call_params(function: Any, block: int | str = "latest") -> list:
    """The `eth_call` params of a bound contract function (`contract.functions.f(args)`)."""
    return view_params(function.address, function.abi, function.args, block)


def call_result(function: Any, response: dict) -> Any:
    """`view_values` of a bound function; a revert raises ContractLogicError with the revert
    data, as web3's `.call()` does."""
    try:
        return view_values(function.abi, response)
    except ViewReverted as reverted:
        from web3.exceptions import ContractLogicError
        raise ContractLogicError(str(reverted), data=reverted.data) from None
