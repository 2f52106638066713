"""The face services' error codes (1000–1099): stable, so clients can act on them.

A `ServiceError` raised anywhere (on the event loop or inside a worker process, whence it
is pickled back) becomes a JSON-RPC error object with its code and message.
"""

from __future__ import annotations

from enum import IntEnum

from jsonrpcserver import JsonRpcError


class Code(IntEnum):
    # standard JSON-RPC 2.0 codes, as the spec defines them
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # face services
    IMAGE_NOT_BASE64 = 1000
    IMAGE_EMPTY = 1001
    IMAGE_UNREADABLE = 1002
    IMAGE_TOO_MANY_BYTES = 1003
    IMAGE_TOO_MANY_PIXELS = 1004
    BOX_OUTSIDE_IMAGE = 1005
    UNKNOWN_ALGORITHM = 1006
    UNKNOWN_LANDMARK_MODEL = 1007
    REQUEST_TOO_LARGE = 1008
    AGENT_SECRET_REQUIRED = 1009  # HTTP 401: the caller is not the agent (services/auth.py)
    CONSUMER_HEADER_REFUSED = 1010  # HTTP 403: services without a secret name no consumer
    DEADLINE_PASSED = 1097
    WORKER_CRASHED = 1098


class ServiceError(JsonRpcError):
    """An error a client caused or can retry; jsonrpcserver turns it into an error object."""

    def __init__(self, code: int, message: str) -> None:  # Code, or an area's own (GalleryCode)
        super().__init__(int(code), message)

    def __reduce__(self):
        """Cross the process boundary from a worker intact: rebuilt from the plain int code, so a
        subclass with its own code enum (GalleryError) pickles too."""
        return (type(self), (self.code, self.message))


def invalid_params(message: str) -> ServiceError:
    return ServiceError(Code.INVALID_PARAMS, message)
