"""The deployment a ledger belongs to, and what the agent does when started on another's.

Why: job ids count from 1 on every escrow. A ledger reused after a redeploy (or with the agent
pointed at another chain) would let an old FUNDED row admit a call for a job that is unfunded or
refunded on the new escrow, and refuse honest new jobs whose ids collide with old rows. So the
ledger records its deployment in its `meta` table when it is created: the chain id, the escrow's
address, and the hash of the deployment's block (a restarted development chain redeploys at the
same address, never in a block with the same hash). At start the agent refuses a ledger of
another deployment, with one line naming both, unless told `--new-ledger`: then the old file is
set aside (renamed, never deleted: it may hold served jobs not yet claimed) and a new one begins.

A ledger written before this record existed is adopted when nothing in it contradicts the chain:
the follower's newest checkpoint block is still on the chain, and every job not settled yet, and
the newest job, match the escrow's own record (consumer, agent, price, expiry). Otherwise it is
refused with the same advice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from web3 import AsyncWeb3

from facemarket.agent.escrow_reader import block_hash
from facemarket.contracts.agent_protocol import Refused
from facemarket.agent.follower import CHECKPOINTS_KEY
from facemarket.agent.config import is_database_url, ledger_name
from facemarket.agent.ledger import SqliteLedger, open_store
from facemarket.agent.ledger_schema import SchemaError
from facemarket.agent.startup import StartupError
from facemarket.contracts.escrow_job import Job, JobState

log = logging.getLogger("facemarket.agent.ledger")

DEPLOYMENT_KEY = "deployment"


@dataclass(frozen=True)
class DeploymentId:
    chain_id: int
    escrow: str
    block_hash: str  # of the deployment's block

    def __str__(self) -> str:
        return f"chain {self.chain_id} escrow {self.escrow} (deployed in block {self.block_hash[:12]}…)"


async def deployment_id(w3: AsyncWeb3, deployment: Any) -> DeploymentId:
    return DeploymentId(deployment.chain_id, deployment.escrow, await block_hash(w3, deployment.block) or "none")


def _open(location: Path | str) -> SqliteLedger:
    """The ledger's store, or a `StartupError` saying what to fix."""
    try:
        return open_store(location)
    except SchemaError as error:
        raise StartupError(str(error)) from None
    except ImportError:
        raise StartupError("ledger: a PostgreSQL ledger needs psycopg: pip install 'facemarket[pg]'") from None
    except Exception as error:  # OSError, or the engine's own (sqlite3.Error, psycopg.Error)
        detail = ledger_name(" ".join(str(error).split()))  # one line; a URL in it without its password
        raise StartupError(f"ledger: cannot open {ledger_name(location)} ({detail}); fix `ledger`, "
                           "the file's permissions or the database server") from None


async def bind_ledger(path: Path | str, expected: DeploymentId, *, agent: str, new_ledger: bool,
                      read_job: Callable[[int], Awaitable[Job]],
                      block_hash: Callable[[int], Awaitable[str | None]]) -> None:
    """Make the ledger at `path` one of `expected`'s deployment, or raise `StartupError`."""
    store = _open(path)
    try:
        problem = await _problem(store, expected, agent, read_job, block_hash)
    except Refused as refused:  # the chain stopped answering while the ledger was checked against it
        raise StartupError(f"ledger: cannot check {ledger_name(path)} against chain {expected.chain_id}: {refused.detail}; "
                           "start again when the chain answers") from None
    finally:
        store.close()
    if problem is not None:
        if is_database_url(path):
            raise StartupError(f"ledger: {ledger_name(path)} {problem}; a PostgreSQL ledger is never set aside: "
                               "point `ledger` at a new database (createdb) for this deployment")
        if not new_ledger:
            raise StartupError(f"ledger: {path} {problem}; start with `facemarket agent run --new-ledger` to set it "
                               "aside and begin a new ledger, or set `ledger` to this deployment's file")
        path = Path(path)
        aside = path.with_name(f"{path.name}.set-aside-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                Path(f"{path}{suffix}").rename(f"{aside}{suffix}")
        log.warning("ledger %s %s: set aside as %s (--new-ledger); starting a new ledger for %s",
                    path, problem, aside, expected)
    store = _open(path)
    try:
        store.set_meta(DEPLOYMENT_KEY, json.dumps(asdict(expected)))
    finally:
        store.close()


async def _problem(store: SqliteLedger, expected: DeploymentId, agent: str,
                   read_job: Callable[[int], Awaitable[Job]],
                   block_hash: Callable[[int], Awaitable[str | None]]) -> str | None:
    """None when the ledger may serve `expected`'s deployment, else what is wrong (one phrase)."""
    recorded = store.get_meta(DEPLOYMENT_KEY)
    if recorded is not None:
        found = DeploymentId(**json.loads(recorded))
        return None if found == expected else f"belongs to {found}, but the deployment is {expected}"
    checkpoints = json.loads(store.get_meta(CHECKPOINTS_KEY) or "[]")
    jobs = store.unsettled_and_newest()
    if not jobs:  # nothing to contradict: read this escrow's events from its deployment block
        store.set_meta(CHECKPOINTS_KEY, "[]")
        return None
    if checkpoints and await block_hash(checkpoints[-1][0]) != checkpoints[-1][1]:
        return (f"has no deployment record and followed another chain (block {checkpoints[-1][0]} differs), "
                f"but the deployment is {expected}")
    for job in jobs:
        on_chain = await read_job(job.job_id)
        if on_chain.state == JobState.NONE or (on_chain.agent, on_chain.consumer, on_chain.price,
                                               on_chain.expires_at) != (agent, job.consumer, job.price, job.expires_at):
            return (f"has no deployment record and its job {job.job_id} is not that job on the escrow, "
                    f"but the deployment is {expected}")
    log.info("ledger has no deployment record; adopted for %s (%d jobs match the escrow)", expected, len(jobs))
    return None
