"""Reading an agent's HTTP answer with a size limit (its `/spec`, a paid call's answer).

Why: the agent is someone else's server; a whole-body read lets a broken or hostile one fill
the client's memory. The body is read in chunks up to the limit (a declared larger length is
refused unread), and the response is left as if read whole, so callers keep using
`response.content`.
"""

from __future__ import annotations

import requests

from facemarket.cli.errors import FacemarketError

CHUNK = 256 * 1024
MAX_SPEC_BYTES = 1024 * 1024            # an OpenRPC document is a few kB
MAX_ANSWER_BYTES = 64 * 1024 * 1024     # above the agent's own bound (max_answer_bytes, 16 MiB)


class AnswerTooLarge(FacemarketError):
    """An HTTP answer longer than the client reads."""


def read_bounded(response: requests.Response, limit: int, what: str) -> bytes:
    """The body of a `stream=True` response, or `AnswerTooLarge` once it passes `limit` bytes."""
    too_large = AnswerTooLarge(f"{what} is over {limit} bytes; it was not read",
                               "the agent sends far more than it should: report it")
    declared = response.headers.get("Content-Length", "")
    try:
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > limit:
                raise too_large
    finally:
        response.close()
    response._content = bytes(body)  # requests' own cache of a body read whole
    return response._content
