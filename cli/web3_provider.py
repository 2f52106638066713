"""web3's HTTP provider for the CLI, imported only by commands that need web3 (transactions,
events): it fails fast and says which chain could not be reached, as cli/json_rpc.py does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import requests
from web3 import Web3

from facemarket.cli.json_rpc import unreachable


class Provider(Web3.HTTPProvider):
    """HTTP provider that fails fast and says which chain could not be reached."""

    def make_request(self, method: Any, params: Any) -> Any:
        with self._reachable():
            return super().make_request(method, params)

    def make_batch_request(self, batch: list[tuple[Any, Any]]) -> Any:
        with self._reachable():
            return super().make_batch_request(batch)

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except (requests.ConnectionError, requests.Timeout):
            raise unreachable(self.endpoint_uri) from None


def connect(rpc_url: str) -> Web3:
    """A sync Web3 on `rpc_url` that asks eth_chainId once, not per transaction."""
    return Web3(Provider(rpc_url, request_kwargs={"timeout": 30}, exception_retry_configuration=None,
                         cache_allowed_requests=True))
