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

from eth_utils import keccak

from facemarket.agent.config import AgentConfig
from facemarket.agent.errors import Reason
from facemarket.agent.param_prices import openrpc_defaults

_IMAGE = {"name": "image", "required": True, "description": "the photo, base64 (JPEG, PNG, ...)",
          "schema": {"type": "string", "contentEncoding": "base64"}}
_FACES = {"name": "faces", "description": "face boxes {x, y, w, h}; detected when absent",
          "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Box"}}}
_FACES_RESULT = {"type": "object", "properties": {"faces": {"type": "array"}}}

# The face services' methods (issues 2 and 6 own their behaviour; this is what the agent sells).
# The gallery methods act on the caller's own gallery: the agent names the caller to the service.
FACE_SERVICES_METHODS: list[dict[str, Any]] = [
    {"name": "find_face", "summary": "Detect faces.",
     "params": [_IMAGE, {"name": "algorithm", "schema": {"enum": ["haar_cascade", "dlib_hog", "dlib_cnn"],
                                                         "default": "dlib_hog"}}],
     "result": {"name": "faces", "schema": _FACES_RESULT}},
    {"name": "find_landmarks", "summary": "Face landmarks (68 or 5 points per face).",
     "params": [_IMAGE, _FACES, {"name": "model", "schema": {"enum": ["68", "5"], "default": "68"}}],
     "result": {"name": "faces", "schema": _FACES_RESULT}},
    {"name": "landmark_models", "summary": "The landmark models and what each point is.", "params": [],
     "result": {"name": "models", "schema": {"type": "object"}}},
    {"name": "align_face", "summary": "Aligned face chips (base64 PNG).",
     "params": [_IMAGE, _FACES, {"name": "size", "schema": {"type": "integer", "default": 150}},
                {"name": "padding", "schema": {"type": "number"}}],
     "result": {"name": "faces", "schema": _FACES_RESULT}},
    {"name": "face_identity", "summary": "128-d identity vectors (nearer than 0.6: same person).",
     "params": [_IMAGE, _FACES], "result": {"name": "faces", "schema": _FACES_RESULT}},
    {"name": "enrol", "summary": "Enrol a named face in the caller's gallery.",
     "params": [{"name": "name", "required": True, "schema": {"type": "string"}}, _IMAGE,
                {"name": "face", "description": "which face box to enrol when there are several",
                 "schema": {"$ref": "#/components/schemas/Box"}}],
     "result": {"name": "enrolled", "schema": {"type": "object"}}},
    {"name": "recall", "summary": "Who in the caller's gallery is in the photo.",
     "params": [_IMAGE, {"name": "threshold", "schema": {"type": "number"}},
                {"name": "top", "schema": {"type": "integer"}}, {"name": "margin", "schema": {"type": "number"}}],
     "result": {"name": "faces", "schema": _FACES_RESULT}},
    {"name": "forget", "summary": "Remove faces from the caller's gallery by name or id.",
     "params": [{"name": "name", "schema": {"type": "string"}}, {"name": "id", "schema": {"type": "integer"}}],
     "result": {"name": "removed", "schema": {"type": "object"}}},
    {"name": "gallery", "summary": "The names in the caller's gallery.", "params": [],
     "result": {"name": "names", "schema": {"type": "object"}}},
    {"name": "ping", "summary": "Liveness of the service; answers \"pong\".", "params": [],
     "result": {"name": "pong", "schema": {"const": "pong"}}},
]


def build_spec(config: AgentConfig) -> dict[str, Any]:
    """The OpenRPC document: the service's methods (from `spec_file` or the face services),
    each with `x-price` (token units per call; `x-price-when` lists parameter prices, the
    highest matching one applies, an absent parameter matching as its schema default), and the
    agent's payment errors."""
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
                 "x-payment": {"headers": ["X-Job-Id", "X-Job-Signature"], "defaultPrice": config.price,
                               "receiptHeader": "X-Job-Receipt"}},
        "methods": [priced(method) for method in methods],
        "components": {"schemas": {"Box": {"type": "object", "required": ["x", "y", "w", "h"],
                                           "properties": {k: {"type": "integer"} for k in "xywh"}}}},
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
