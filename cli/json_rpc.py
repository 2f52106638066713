"""The chain's JSON-RPC without web3: what a prepaid `facemarket call` reads from the chain.

Importing web3 costs about half a second in a new process (it loads eth_account, whose keyfile
module builds py_ecc's BLS pairing tables at import), more than everything else a prepaid call
does. The reads on that path (chain id, code at the escrow, the latest block's time, contract
views) are plain JSON-RPC requests, sent here over one HTTP session; web3 is imported only by a
command that sends a transaction or reads events (cli/chain_connection.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import requests

from facemarket.cli.errors import ChainUnreachable
from facemarket.contracts import artifacts
from facemarket.contracts.view_calls import view_params, view_values

TIMEOUT = 30.0


def unreachable(url: str) -> ChainUnreachable:
    """The error of a node that does not answer, with what to do."""
    return ChainUnreachable(f"cannot reach the chain at {url}",
                            "start it (`facemarket chain up`) or pick another network "
                            "(--network, `facemarket network list`)")


class ChainError(ChainUnreachable):
    """The node answered a request that is not a contract view with an error."""


@cache
def function_abi(contract: str, function: str) -> dict:
    """The ABI entry of `function` in the committed artifact of `contract`."""
    for entry in artifacts.load(contract)["abi"]:
        if entry["type"] == "function" and entry["name"] == function:
            return entry
    raise KeyError(f"{contract} has no function {function}")


class JsonRpc:
    """Requests to one node's HTTP JSON-RPC endpoint; an unreachable node is ChainUnreachable
    with what to do, as web3's provider in chain_connection.py says it."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.http = requests.Session()
        self._ids = 0

    def _post(self, payload: Any) -> Any:
        try:
            response = self._sent(payload)
            response.raise_for_status()
            return response.json()
        except (requests.ConnectionError, requests.Timeout):
            raise unreachable(self.url) from None
        except (requests.RequestException, ValueError) as error:
            raise ChainError(f"the chain at {self.url} did not answer JSON-RPC ({error})",
                             "check the network's RPC URL (`facemarket network list`)") from None

    def _sent(self, payload: Any) -> requests.Response:
        """POST, and once more on a new connection when the kept-alive one was closed under it.

        Why: a node closes idle connections (Ganache after about 10 s) and a request sent as it
        closes is lost unread; a long-lived client (the desk, a script using the client) meets
        that now and then, and a chain that answers must not be called unreachable. Everything
        sent here is a read, so sending it again is safe; a node that is down fails both at once."""
        try:
            return self.http.post(self.url, json=payload, timeout=self.timeout)
        except requests.ConnectionError:
            return self.http.post(self.url, json=payload, timeout=self.timeout)

    def answer(self, method: str, params: list) -> dict:
        """The whole JSON-RPC answer (an `error` member included) of one request."""
        self._ids += 1
        return self._post({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})

    def request(self, method: str, params: list) -> Any:
        """The result of one request; an error answer is ChainError."""
        reply = self.answer(method, params)
        if "error" in reply:
            raise ChainError(f"the chain at {self.url} refused {method}: "
                             f"{reply['error'].get('message', reply['error'])}")
        return reply.get("result")

    def view(self, contract: str, address: str, function: str, *args: Any) -> Any:
        """A contract view (`contract` names its artifact), as view_calls.view_values decodes it;
        a revert raises view_calls.ViewReverted."""
        abi = function_abi(contract, function)
        return view_values(abi, self.answer("eth_call", view_params(address, abi, args)))

    def chain_id(self) -> int:
        return int(self.request("eth_chainId", []), 16)

    def latest_timestamp(self) -> int:
        """The latest block's time: the chain's clock."""
        return int(self.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def code(self, address: str) -> str:
        return self.request("eth_getCode", [address, "latest"]) or "0x"
