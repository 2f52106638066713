"""What the agent does with an admitted call's payment around the service (app.py `_serve`).

Why callables: a job, a channel voucher and a trial grant are reserved, released and recorded
by different ledger statements and answered with different receipts, but the order around the
service is the same for all: forward; on a failure release (uncharged); on an answer record it
durably first, then send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web


@dataclass(frozen=True)
class Service:
    release: Callable[[], Awaitable[None]]        # the service failed: give the payment back
    record: Callable[[bytes], Awaitable[bool]]    # the answer, durably; False: the reservation was lost
    answer: Callable[[bytes], web.Response]       # the response with its receipt header
    served: Callable[[], None]                    # tell the claimer
    outcome: str = "served"                       # the requests_total label of a served call
