"""Gas report of JobEscrow on the pinned Ganache: what a paid job costs (and, once per provider
or service, what the ServiceRegistry costs); then ChannelEscrow's operations and the gas of a
call on a channel carrying 1,000 calls between claims, beside the job's from the same run
(benchmarks/channel_gas.py; the goal: at most 1% of a job's).

Starts its own chain on a free port, deploys, then measures each way to open, complete and
refund a job in steady state (the escrow already holds tokens, the consumer's permit nonce and
the agent's balance are already non-zero: one warm-up of each operation runs first). Prints the
table and the cost of one paid job (open with permit + 1/100 of a 100-job completeJobs batch)
against the 100,000 gas goal and the 2018 design's 661,603 gas (a Job contract per call, four
transactions; measured on Ganache 7.9 with its own contracts, solc 0.4.21).

Gas is deterministic: unlike timings, these figures do not depend on the machine's load.

    .venv/bin/python benchmarks/gas_report.py
"""

from __future__ import annotations

import socket

from eth_account import Account
from web3 import Web3

from facemarket.contracts.bind import bind
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import LocalChain
from facemarket.contracts.transactions import call
from facemarket.contracts.typed_messages import domain_from_eip712, request_hash, sign_invocation, sign_permit

from channel_gas import measure_channels, per_call  # beside this file (benchmarks/ is the script's path)

GOAL = 100_000
DESIGN_2018 = 661_603
PRICE = 10**7  # 0.1 FACE
HOUR = 3600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Bench:
    """One chain, one deployment, an approving consumer, a permit consumer and an agent."""

    def __init__(self, chain: LocalChain) -> None:
        self.w3 = Web3(Web3.HTTPProvider(chain.url))
        owner, self.consumer, self.permitter, self.agent = (Account.from_key(k) for k in chain.accounts[:4])
        self.contracts = bind(self.w3, deploy_all(self.w3, owner))
        token, self.escrow = self.contracts.token, self.contracts.escrow
        for holder in (self.consumer, self.permitter):
            call(self.w3, owner, token.functions.mint(holder.address, 10**6 * 10**8))
        call(self.w3, self.consumer, token.functions.approve(self.escrow.address, 2**256 - 1))
        self.domain = domain_from_eip712(self.escrow.functions.eip712Domain().call())
        self.token_domain = domain_from_eip712(token.functions.eip712Domain().call())

    def expiry(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"] + HOUR

    def gas(self, account, function) -> int:
        return call(self.w3, account, function)["gasUsed"]

    def create_then_fund(self) -> int:
        next_id = self.escrow.functions.nextJobId().call()
        created = self.gas(self.consumer, self.escrow.functions.createJob(self.agent.address, PRICE, self.expiry()))
        return created + self.gas(self.consumer, self.escrow.functions.fundJob(next_id))

    def create_and_fund(self) -> int:
        return self.gas(self.consumer, self.escrow.functions.createAndFundJob(self.agent.address, PRICE, self.expiry()))

    def create_and_fund_with_permit(self, count: int = 1) -> int:
        deadline = self.expiry()
        nonce = self.contracts.token.functions.nonces(self.permitter.address).call()
        v, r, s = sign_permit(self.permitter.key, self.token_domain, self.permitter.address,
                              self.escrow.address, PRICE * count, nonce, deadline)
        fns = self.escrow.functions
        if count == 1:
            function = fns.createAndFundJobWithPermit(self.agent.address, PRICE, self.expiry(), deadline, v, r, s)
        else:
            function = fns.createAndFundJobsWithPermit(self.agent.address, PRICE, self.expiry(), count, deadline, v, r, s)
        return self.gas(self.permitter, function)

    def fund_many(self, count: int) -> list[int]:
        first = self.escrow.functions.nextJobId().call()
        call(self.w3, self.consumer, self.escrow.functions.createAndFundJobs(self.agent.address, PRICE, self.expiry(), count))
        return list(range(first, first + count))

    def claim(self, job_ids: list[int]) -> int:
        hashes = [request_hash(b'{"jsonrpc":"2.0","id":%d,"method":"detect"}' % i) for i in job_ids]
        signatures = [sign_invocation(self.consumer.key, self.domain, i, self.agent.address, h)
                      for i, h in zip(job_ids, hashes)]
        fns = self.escrow.functions
        if len(job_ids) == 1:
            return self.gas(self.agent, fns.completeJob(job_ids[0], hashes[0], signatures[0]))
        return self.gas(self.agent, fns.completeJobs(job_ids, hashes, signatures))

    def refund_expired(self) -> int:
        job_id = self.fund_many(1)[0]
        self.w3.provider.make_request("evm_increaseTime", [HOUR + 1])
        self.w3.provider.make_request("evm_mine", [])
        return self.gas(self.consumer, self.escrow.functions.refund(job_id))


def measure(bench: Bench) -> list[tuple[str, int, int]]:
    """[(operation, gas of the transaction(s), jobs it covers)], each measured after a warm-up run."""
    rows = []

    def steady(label: str, jobs: int, run, repeats: int = 1) -> None:
        run()
        rows.append((label, sum(run() for _ in range(repeats)) // repeats, jobs))

    steady("open: createJob + fundJob (2 tx, after a standing approve)", 1, bench.create_then_fund)
    steady("open: createAndFundJob (1 tx, after a standing approve)", 1, bench.create_and_fund)
    steady("open: createAndFundJobWithPermit (1 tx, no approve)", 1, bench.create_and_fund_with_permit)
    steady("open: createAndFundJobsWithPermit, 10 jobs", 10, lambda: bench.create_and_fund_with_permit(10))
    steady("complete: completeJob (one)", 1, lambda: bench.claim(bench.fund_many(1)))
    steady("complete: completeJobs, batch of 10", 10, lambda: bench.claim(bench.fund_many(10)))
    # completion sets a bit in a 256-job bitmap word: three batches span a word that goes from
    # zero to non-zero, so the mean includes that cost at its steady-state share
    steady("complete: completeJobs, batch of 100 (mean of 3)", 100, lambda: bench.claim(bench.fund_many(100)), 3)
    steady("refund (funded, expired)", 1, bench.refund_expired)
    return rows


def measure_registry(bench: Bench) -> list[tuple[str, int]]:
    """What a provider pays once: its namespace, a service under it, a change, a new owner."""
    fns, owner, agent = bench.contracts.registry.functions, bench.agent, bench.agent.address
    endpoint, spec = "https://agent.example.com/", b"\xab" * 32
    return [
        ("createProvider", bench.gas(owner, fns.createProvider("acme-faces"))),
        ("register (provider/service, agent = owner)",
         bench.gas(owner, fns.register("acme-faces", "face-services", agent, endpoint, PRICE, spec))),
        ("update (new price)",
         bench.gas(owner, fns.update("acme-faces", "face-services", agent, endpoint, PRICE * 2, spec))),
        ("transferProvider", bench.gas(owner, fns.transferProvider("acme-faces", bench.consumer.address))),
    ]


def main() -> None:
    with LocalChain(free_port()) as chain:
        bench = Bench(chain)
        rows = measure(bench)
        registry_rows = measure_registry(bench)
        channel_rows = measure_channels(bench)
    per_job = {label: gas // jobs for label, gas, jobs in rows}
    print(f"{'operation':<62} {'gas':>10} {'per job':>9}")
    for label, gas, jobs in rows:
        print(f"{label:<62} {gas:>10,} {gas // jobs:>9,}")
    paid = per_job["open: createAndFundJobWithPermit (1 tx, no approve)"] + per_job["complete: completeJobs, batch of 100 (mean of 3)"]
    print()
    print(f"paid job = open with permit + 1/100 of a 100-job claim: {paid:,} gas")
    print(f"  goal {GOAL:,}: {'met' if paid < GOAL else 'MISSED'} ({paid / GOAL:.0%} of it)")
    print(f"  2018 design {DESIGN_2018:,}: {DESIGN_2018 / paid:.1f}x less gas")
    print()
    print(f"{'ServiceRegistry (once per provider or service)':<62} {'gas':>10}")
    for label, gas in registry_rows:
        print(f"{label:<62} {gas:>10,}")
    print()
    print(f"{'ChannelEscrow':<62} {'gas':>10} {'per channel':>12}")
    for label, gas, count in channel_rows:
        print(f"{label:<62} {gas:>10,} {gas // count:>12,}")
    print()
    print(f"gas per call on a channel, beside a paid job's {paid:,} (goal: at most 1% of it, {paid / 100:,.0f})")
    for label, gas in per_call(channel_rows).items():
        print(f"  {label:<82} {gas:>7,.0f}  ({gas / paid:.2%} of a job's)")


if __name__ == "__main__":
    main()
