"""The JSON-RPC method table: every method the server can serve, grouped by service.

How to add a method (the gallery's `enrol`, say):

1. Write it as `async def enrol(context: RequestContext, image: Any, name: Any) -> Result`
   in your area's module. Its parameters are the JSON-RPC params by name (jsonrpcserver
   answers -32602 for a missing or unknown one); return `Success(...)`; for bad input
   raise `ServiceError(code, message)` (services/errors.py) with a code from your range.
   `context` (services/rpc_context.py) carries `consumer` (the X-Facemarket-Consumer
   header, None when absent), `app` (server-wide state) and the worker pool; CPU work
   goes to the workers — `await context.identities(image)` gives (box, 128-d vector) per
   face, or `await context.pool.run(job, *args)` runs any module-level function.
2. Add a dict of your methods to SERVICES below under your service's name, e.g.
   `"gallery": GALLERY_METHODS`. It is then served, listed by GET /health, and can be
   served alone with `facemarket services run --service gallery`.
3. Describe it for the published spec in services/openrpc_methods.py: its summary and result
   in METHODS, any parameter name not yet in PARAMS (tests/test_spec_from_methods.py checks).
"""

from __future__ import annotations

from collections.abc import Iterable

from jsonrpcserver.methods import Methods

from facemarket.services import face_methods as face
from facemarket.services.gallery_methods import GALLERY_METHODS

SERVICES: dict[str, Methods] = {
    "detection": {"find_face": face.find_face},
    "landmarks": {"find_landmarks": face.find_landmarks, "landmark_models": face.landmark_models},
    "alignment": {"align_face": face.align_face},
    "identity": {"face_identity": face.face_identity},
    "gallery": GALLERY_METHODS,
}
ALWAYS: Methods = {"ping": face.ping}


def method_table(services: Iterable[str] | None = None) -> Methods:
    """The methods of the named services (all of them when None), plus `ping`, in that order
    (the order of the published spec, services/openrpc_methods.py)."""
    chosen = SERVICES if services is None else {name: SERVICES[name] for name in services}
    table: Methods = {}
    for methods in chosen.values():
        table.update(methods)
    return {**table, **ALWAYS}
