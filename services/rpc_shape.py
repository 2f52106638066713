"""The shape of a JSON-RPC 2.0 request, checked by hand: jsonrpcserver's verdicts without jsonschema.

jsonrpcserver 5 validates every request with the `jsonschema` package against its
request-schema.json (draft-04); a py-spy profile found that at about two thirds of the services'
dispatch of a `ping` and a tenth of the in-process agent's CPU per paid `ping` (docs/agent.md).
The schema is small and fixed, so a few isinstance checks give the same verdicts on anything
json.loads returns: an object with exactly the keys `jsonrpc` ("2.0") and `method` (a string),
and optionally `id` (a string, a number that is not a boolean, or null) and `params` (an array or
an object); or a non-empty array of such objects. tests/test_rpc_dispatch.py holds this to
jsonrpcserver's own validator on generated requests and near-misses.
"""

from __future__ import annotations

from typing import Any

_KEYS = frozenset({"jsonrpc", "method", "id", "params"})


class NotARequest(ValueError):
    """Raised by `check_shape`: jsonrpcserver answers any exception of its validator with
    -32600 "Invalid request"."""


def is_request(value: Any) -> bool:
    """One request object (the schema's `definitions/request`)."""
    if not (isinstance(value, dict) and value.keys() <= _KEYS and value.get("jsonrpc") == "2.0"
            and isinstance(value.get("method"), str)):
        return False
    if "id" in value:
        id = value["id"]
        if not (id is None or (isinstance(id, (str, int, float)) and not isinstance(id, bool))):
            return False
    return "params" not in value or isinstance(value["params"], (list, dict))


def check_shape(value: Any) -> None:
    """jsonrpcserver's `validator`: a request, or a non-empty batch of them, else NotARequest."""
    if not (is_request(value) or (isinstance(value, list) and value and all(map(is_request, value)))):
        raise NotARequest("not a JSON-RPC 2.0 request")
