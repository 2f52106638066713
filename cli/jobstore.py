"""Jobs paid for but not used yet, kept in the home folder so the next call (or the next
command) uses them before paying again.

One JSON file per chain id and escrow address (a redeploy gets a new file, so the client never
signs for a job id of another escrow); an exclusive file lock makes `take` safe between
processes: two concurrent calls never pick the same job. The file, its lock and the folder are
the user's only (0600, 0700): they list what the account paid for and to whom.
"""

from __future__ import annotations

from facemarket.cli.home import Home, locked_json, read_json
from facemarket.contracts.escrow_job import Job, JobState


class JobStore:
    def __init__(self, home: Home, chain_id: int, escrow: str) -> None:
        self.path = home.jobs / f"{chain_id}-{escrow.lower()}.json"

    def add(self, jobs: list[Job]) -> None:
        with locked_json(self.path) as stored:
            for job in jobs:
                stored[str(job.id)] = job.to_json()

    def take(self, consumer: str, agent: str, min_price: int, valid_after: int) -> Job | None:
        """Remove and return the cheapest job that pays `agent` enough and lives past
        `valid_after`; expired ones stay listed (for `job refund`)."""
        with locked_json(self.path) as stored:
            usable = [job for job in map(_job, stored.values())
                      if job.consumer == consumer and job.agent == agent
                      and job.price >= min_price and job.expires_at > valid_after]
            if not usable:
                return None
            job = min(usable, key=lambda j: (j.price, j.expires_at, j.id))
            del stored[str(job.id)]
            return job

    def discard(self, job_id: int) -> None:
        with locked_json(self.path) as stored:
            stored.pop(str(job_id), None)

    def all(self, consumer: str | None = None) -> list[Job]:
        jobs = [_job(j) for j in read_json(self.path, {}).values()]
        return sorted((j for j in jobs if consumer is None or j.consumer == consumer),
                      key=lambda j: j.id)


def _job(data: dict) -> Job:
    return Job(int(data["id"]), data["consumer"], data["agent"], int(data["price"]),
               int(data["expires_at"]), JobState[data["state"]])
