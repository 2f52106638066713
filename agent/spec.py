"""The published API spec (`GET /spec`): an OpenRPC document with each method's price.

Why a hash: the document's keccak256 is the `specHash` the agent registers in the
ServiceRegistry, so a client that fetched the spec (and its prices) can check against the
chain that the agent did not change them. The bytes served are the bytes hashed: canonical
JSON (sorted keys, no spaces), built once at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from facemarket.contracts.keccak import keccak

from facemarket.agent.config import AgentConfig
from facemarket.contracts.agent_protocol import JOB_ID_HEADER, JOB_SIGNATURE_HEADER, RECEIPT_HEADER, Reason
from facemarket.contracts.param_prices import openrpc_defaults
from facemarket.services.methods import method_table
from facemarket.services.openrpc_methods import BOX_SCHEMA, openrpc_methods

# The face services' methods, generated from the table they dispatch (services/openrpc_methods.py
# says why the agent imports it instead of asking the services). The gallery methods act on the
# caller's own gallery: the agent names the caller to the service.
FACE_SERVICES_METHODS: list[dict[str, Any]] = openrpc_methods(method_table())


def build_spec(config: AgentConfig, modes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The OpenRPC document: the service's methods (from `spec_file` or the face services),
    each with `x-price` (token units per call; `x-price-when` lists parameter prices, the
    highest matching one applies, an absent parameter matching as its schema default), the
    agent's payment errors and its payment `modes` (agent/how_to_pay.py)."""
    if config.spec_file is not None:
        base = json.loads(Path(config.spec_file).read_text())
        methods, info = base.get("methods", []), base.get("info", {})
    else:
        methods, info = FACE_SERVICES_METHODS, {"title": config.service_name, "version": "1"}
    errors = [{"code": r.code, "message": r.name.lower(), "data": {"httpStatus": r.http_status, "hint": r.hint}}
              for r in Reason]

    def priced(method: dict[str, Any]) -> dict[str, Any]:
        # by-name: the agent refuses positional params (a price depends on parameter names)
        entry = {**method, "paramStructure": "by-name", "x-price": config.price_of(method["name"]),
                 "errors": errors}
        variants = config.parameter_prices(method["name"])
        if variants:
            entry["x-price-when"] = [{"params": {name: value}, "price": price}
                                     for (name, value), price in sorted(variants.items())]
        return entry

    return {
        "openrpc": "1.3.2",
        "info": {**info, "title": info.get("title", config.service_name),
                 "x-payment": {"headers": [JOB_ID_HEADER, JOB_SIGNATURE_HEADER], "defaultPrice": config.price,
                               "receiptHeader": RECEIPT_HEADER,
                               # a job closer than this to its expiry is refused: clients size jobs by it
                               "expiryMarginSeconds": config.expiry_margin,
                               **({"modes": modes} if modes is not None else {})}},
        "methods": [priced(method) for method in methods],
        "components": {"schemas": {"Box": BOX_SCHEMA}},
    }


def call_pricer(config: AgentConfig, spec: dict[str, Any]) -> Callable[[str, Any], int]:
    """The gate's price of a call: the config's prices, an absent parameter priced as the
    default the published spec gives it (so the gate and a client reading /spec agree)."""
    defaults = {method["name"]: openrpc_defaults(method) for method in spec["methods"]}
    return lambda method, params: config.price_of(method, params, defaults.get(method))


def spec_bytes(spec: dict[str, Any]) -> bytes:
    """Canonical JSON: the exact bytes served and hashed."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()


def spec_hash(document: bytes) -> bytes:
    """The registry's specHash for the served document."""
    return keccak(document)
