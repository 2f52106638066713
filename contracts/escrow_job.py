"""A job as `JobEscrow.getJob` returns it: one definition for the agent, the CLI and the tests."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from facemarket.contracts.addresses import to_checksum_address


class JobState(enum.IntEnum):
    """`JobEscrow.JobState`, in the contract's order."""

    NONE = 0
    CREATED = 1
    FUNDED = 2
    COMPLETED = 3
    REFUNDED = 4


@dataclass(frozen=True)
class Job:
    """One escrow job, read from the chain."""

    id: int
    consumer: str
    agent: str
    price: int
    expires_at: int
    state: JobState

    @classmethod
    def from_chain(cls, job_id: int, fields: Any) -> Job:
        """From `getJob(job_id)`'s tuple (consumer, agent, price, expiresAt, state)."""
        consumer, agent, price, expires_at, state = fields
        return cls(job_id, to_checksum_address(consumer), to_checksum_address(agent), int(price),
                   int(expires_at), JobState(state))

    def to_json(self) -> dict:
        return {"id": self.id, "consumer": self.consumer, "agent": self.agent,
                "price": self.price, "expires_at": self.expires_at, "state": self.state.name}
