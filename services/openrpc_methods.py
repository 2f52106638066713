"""The face services' methods as OpenRPC method objects, generated from the method table.

Why generated here: the method table (services/methods.py) is what the server dispatches, and
each method's signature holds its parameters, which are required and their defaults; the
enums are the services' own tables (`DETECTORS`, `MODELS`). The agent prices this document
(agent/spec.py) instead of restating it, so a method, parameter, enum value or default added
to the services is in the published spec (and its hash) at the next start.

Why imported by the agent rather than served as `rpc.discover`: the agent publishes its spec
and checks its hash against the registry at start-up, before (and whether or not) the services
answer; both come from one installed package. What a signature cannot say is here, once per
parameter name (the same name means the same thing in every method) and once per method.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from facemarket.services.detectors import DETECTORS
from facemarket.services.landmark_models import MODELS

BOX_REF = {"$ref": "#/components/schemas/Box"}
BOX_SCHEMA = {"type": "object", "required": ["x", "y", "w", "h"], "properties": {k: {"type": "integer"} for k in "xywh"}}

# What each parameter is, by name; "schema" gains the signature's default.
PARAMS: dict[str, dict[str, Any]] = {
    "image": {"description": "the photo, base64 (JPEG, PNG, ...)", "schema": {"type": "string", "contentEncoding": "base64"}},
    "faces": {"description": "face boxes {x, y, w, h}; detected when absent", "schema": {"type": "array", "items": BOX_REF}},
    "face": {"description": "which face box to enrol when there are several", "schema": BOX_REF},
    "algorithm": {"schema": {"enum": list(DETECTORS)}},
    "model": {"schema": {"enum": list(MODELS)}},
    "size": {"schema": {"type": "integer"}},
    "padding": {"schema": {"type": "number"}},
    "name": {"schema": {"type": "string"}},
    "threshold": {"schema": {"type": "number"}},
    "top": {"schema": {"type": "integer"}},
    "margin": {"description": "name a face only when the next name is at least this much farther",
               "schema": {"type": "number"}},
    "id": {"schema": {"type": "integer"}},
}
_FACES_RESULT = {"name": "faces", "schema": {"type": "object", "properties": {"faces": {"type": "array"}}}}
# What each method does and answers.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "find_face": ("Detect faces.", _FACES_RESULT),
    "find_landmarks": ("Face landmarks (68 or 5 points per face).", _FACES_RESULT),
    "landmark_models": ("The landmark models and what each point is.", {"name": "models", "schema": {"type": "object"}}),
    "align_face": ("Aligned face chips (base64 PNG).", _FACES_RESULT),
    "face_identity": ("128-d identity vectors (nearer than 0.6: same person).", _FACES_RESULT),
    "enrol": ("Enrol a named face in the caller's gallery.", {"name": "enrolled", "schema": {"type": "object"}}),
    "recall": ("Who in the caller's gallery is in the photo.", _FACES_RESULT),
    "forget": ("Remove faces from the caller's gallery by name or id.", {"name": "removed", "schema": {"type": "object"}}),
    "gallery": ("The names in the caller's gallery.", {"name": "names", "schema": {"type": "object"}}),
    "ping": ("Liveness of the service; answers \"pong\".", {"name": "pong", "schema": {"const": "pong"}}),
}


def openrpc_param(parameter: inspect.Parameter) -> dict[str, Any]:
    """One content descriptor: required without a default, else the default in its schema."""
    known = PARAMS[parameter.name]
    entry: dict[str, Any] = {"name": parameter.name, **known}
    if parameter.default is inspect.Parameter.empty:
        entry["required"] = True
    elif parameter.default is not None:
        entry["schema"] = {**known["schema"], "default": parameter.default}
    return entry


def openrpc_methods(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The OpenRPC method objects of `table` (name -> `async def method(context, ...)`), in its order."""
    methods = []
    for name, function in table.items():
        summary, result = METHODS[name]
        params = list(inspect.signature(function).parameters.values())[1:]  # after `context`
        methods.append({"name": name, "summary": summary, "params": [openrpc_param(p) for p in params], "result": result})
    return methods
