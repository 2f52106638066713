"""What a consumer should do when the agent refuses a paid call (its codes 4000-4099).

The agent's codes and reasons live in facemarket.contracts.agent_protocol (one source of truth); this
module adds the consumer's view: what to type next, and what became of the job — still good
(kept for the next call), good for cheaper methods, or spent/unusable (dropped).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from facemarket.contracts.agent_protocol import Reason


class JobFate(enum.Enum):
    KEEP = "keep"        # nothing was charged: the job is kept for the next call
    DROP = "drop"        # the job cannot pay this agent any more (used, refunded, expiring)


# reason -> (what to do, with {job} {service} {method} filled in; what became of the job)
ADVICE: dict[Reason, tuple[str, JobFate]] = {
    Reason.PAYMENT_REQUIRED: ("the request lacked payment headers: call through `facemarket call`",
                              JobFate.KEEP),
    Reason.UNKNOWN_JOB: ("the agent cannot find job {job} on its chain: check you and the agent "
                         "use the same network (`facemarket network list`)", JobFate.DROP),
    Reason.NOT_FUNDED: ("job {job} is not funded (`facemarket job fund {job}`) or was refunded",
                        JobFate.DROP),
    Reason.WRONG_AGENT: ("job {job} pays another agent: open one for {service} "
                         "(`facemarket job open --service {service}`)", JobFate.DROP),
    Reason.UNDERPAID: ("job {job} pays less than {method} costs: open one with its price "
                       "(`facemarket service show {service}` lists prices)", JobFate.KEEP),
    Reason.EXPIRING: ("job {job} expires too soon for the agent to claim it: open one with a "
                      "later --expires-in", JobFate.DROP),
    Reason.BAD_SIGNATURE: ("the signature is not from job {job}'s consumer: call with the "
                           "account that opened it (--account)", JobFate.KEEP),
    Reason.ALREADY_USED: ("job {job} was used for another request: open a new one "
                          "(`facemarket job open --service {service}`)", JobFate.DROP),
    Reason.BUSY: ("wait until then, or use another job", JobFate.KEEP),
    Reason.NOT_ONE_CALL: ("send one JSON-RPC request per job, params by name", JobFate.KEEP),
    Reason.CHAIN_UNAVAILABLE: ("the agent cannot reach its chain: nothing was charged, job {job} "
                               "is kept; try again later", JobFate.KEEP),
    Reason.SERVICE_UNAVAILABLE: ("the service behind the agent failed: nothing was charged, "
                                 "job {job} is kept; try again later", JobFate.KEEP),
    Reason.SERVICE_TIMEOUT: ("the service took too long: nothing was charged, job {job} is "
                             "kept; try again later", JobFate.KEEP),
    Reason.BODY_TOO_LARGE: ("the request is larger than the agent accepts: send a smaller "
                            "image", JobFate.KEEP),
    Reason.OVERLOADED: ("the agent is busy: nothing was charged, job {job} is kept; try again "
                        "shortly", JobFate.KEEP),
    Reason.NOT_RECORDED: ("the agent could not record the call: nothing was charged, job {job} "
                          "is kept; try again", JobFate.KEEP),
    Reason.BODY_INCOMPLETE: ("the request did not reach the agent whole in time: nothing was "
                             "charged, job {job} is kept; try again", JobFate.KEEP),
}

# A stored job refused for these reasons says nothing about the next stored job: try it, but
# only once the chain shows the refused job can no longer pay the agent (Client._refused): a
# lying agent must not collect a signature for every stored job.
TRY_ANOTHER_JOB = {Reason.UNKNOWN_JOB, Reason.NOT_FUNDED, Reason.WRONG_AGENT, Reason.UNDERPAID,
                   Reason.EXPIRING, Reason.ALREADY_USED}

BY_CODE: dict[int, Reason] = {reason.code: reason for reason in Reason}


@dataclass(frozen=True)
class Advice:
    reason: str | None      # the agent's reason, lower case (None: a code we do not know)
    hint: str | None        # what to do
    fate: JobFate
    try_another_job: bool


def advise(code: int, **names: object) -> Advice:
    """The consumer's advice for an agent error code; unknown codes keep the job."""
    reason = BY_CODE.get(code)
    if reason is None:
        return Advice(None, None, JobFate.KEEP, False)
    hint, fate = ADVICE[reason]
    return Advice(reason.name.lower(), hint.format(**names), fate, reason in TRY_ANOTHER_JOB)
