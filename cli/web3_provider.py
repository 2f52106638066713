"""web3's HTTP provider for the CLI, imported only by commands that need web3 (transactions,
events): it fails fast and says which chain could not be reached, as cli/json_rpc.py does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import requests
from web3 import Web3
from web3.providers.rpc.utils import ExceptionRetryConfiguration

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


# A request is sent once more, at once, when its connection broke: a node closes idle kept-alive
# connections (Ganache after about 10 s) and a request sent as it closes is lost unread (see
# json_rpc.JsonRpc._sent). web3 sends again only what its allow-list holds safe to repeat: reads,
# and a signed transaction, which is the same transaction again (its nonce and hash: it cannot be
# mined twice). A node that is down still fails at once, twice.
RESEND_A_READ = ExceptionRetryConfiguration(errors=(requests.ConnectionError,), retries=2, backoff_factor=0)


def connect(rpc_url: str) -> Web3:
    """A sync Web3 on `rpc_url` that asks eth_chainId once, not per transaction."""
    return Web3(Provider(rpc_url, request_kwargs={"timeout": 30}, exception_retry_configuration=RESEND_A_READ,
                         cache_allowed_requests=True))
