"""Contract view calls as bare `eth_call` requests: encoded and decoded here, sent by the caller.

Why: web3's `contract.functions.f(...).call()` spends 1.5-2 ms of Python per call (middleware,
formatters; AsyncWeb3 also asks `eth_chainId` twice) around a ~2.5 ms answer from Ganache
(benchmarks/view_call_bench.py prints both ways from the same run: on 2 cores at load 9, 7.7 ms
bare against 15.5 ms through `.call()`). The
paid-call hot path reads the chain twice: the client's balance and permit nonce before opening a
job (sent here as one JSON-RPC batch), and the agent's first sight of a new job.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode, encode
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from web3.exceptions import ContractLogicError


def call_params(function: Any, block: int | str = "latest") -> list:
    """The `eth_call` params of a bound contract function (`contract.functions.f(args)`)."""
    data = function_abi_to_4byte_selector(function.abi) + encode(get_abi_input_types(function.abi),
                                                                  function.args)
    return [{"to": function.address, "data": "0x" + data.hex()},
            block if isinstance(block, str) else hex(block)]


def call_result(function: Any, response: dict) -> Any:
    """The return value of the `eth_call` answer `response`, as eth_abi decodes it (addresses in
    lower case; a single output unwrapped, several as a tuple). An error answer raises
    ContractLogicError with the revert data, as web3's `.call()` does on a revert."""
    if "error" in response:
        error = response["error"]
        raise ContractLogicError(str(error.get("message", error)), data=error.get("data"))
    values = decode(get_abi_output_types(function.abi), bytes.fromhex(response["result"][2:]))
    return values[0] if len(values) == 1 else values
