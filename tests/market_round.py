"""One round: prepay jobs, load the market for a fixed time, maybe inject one fault at a seeded
random moment for a seeded random while, then reconcile. Used by tests/test_market_*.py and by
`python -m benchmarks.market_soak`, so the short and the long run check the same promises."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from tests.market_channel_reconcile import channel_round_start, ledger_channels, reconcile_channels
from tests.market_channels import ChannelLoadRun, channel_store, deposit_needed, open_channel
from tests.market_faults import Fault, HealthWatcher
from tests.market_load import LoadRun, figures, jobs_needed, open_jobs
from tests.market_reconcile import Reconciliation, completed_events, ledger_states, reconcile, round_start
from tests.market_stack import MarketStack

EXPIRES_IN = 3600


@dataclass
class RoundResult:
    seed: int
    fault: str
    figures: dict
    reconciliation: Reconciliation
    peak_rss: dict[str, float]
    fault_log: list[str] = field(default_factory=list)
    pay: str = "job"

    @property
    def problems(self) -> list[str]:
        return self.reconciliation.problems

    def summary(self) -> str:
        f, r = self.figures, self.reconciliation
        rss = ", ".join(f"{part} {mib:.0f} MiB" for part, mib in sorted(self.peak_rss.items()))
        settled = (f"{r.answered} answered = {r.answered} COMPLETED once, agent earned {r.earned}, "
                   f"{r.refunded} unserved jobs refunded after expiry" if self.pay == "job" else
                   f"{r.answered} answered = claimed on their channels, agent earned {r.earned}, "
                   f"{r.refunded} channels reclaimed (deposit - claimed) after expiry")
        lines = [f"round pay={self.pay} seed={self.seed} fault={self.fault or 'none'}: {f['answered']} calls answered in {f['seconds']:.1f} s "
                 f"= {f['calls_per_second']:.1f} calls/s, p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms; "
                 f"peak RSS {rss}",
                 f"  outcomes {f['outcomes']}, retried {f['retries']}",
                 f"  reconciled: {settled}, {len(r.problems)} problems"]
        lines += [f"  {line}" for line in self.fault_log]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def run_round(stack: MarketStack, seconds: float, seed: int, fault: Fault | None = None,
              calls_per_second: float = 12, pay: str = "job") -> RoundResult:
    """A round paid with jobs (`pay="job"`) or from one channel per consumer (`pay="channel"`)."""
    rng = random.Random(seed)
    market, agent = stack.market, stack.agent
    if pay == "channel":
        start = channel_round_start(market, agent.address, stack.consumers)
        deposit = deposit_needed(seconds, len(stack.consumers), calls_per_second)
        stores = {c.address: channel_store(market, stack.folder / "homes" / c.name) for c in stack.consumers}
        channels = {c.address: open_channel(market, c, agent.address, deposit, EXPIRES_IN, stores[c.address]).id
                    for c in stack.consumers}
        run = ChannelLoadRun(market, agent.url, agent.address, stack.consumers, seconds, seed, stores, channels)
    else:
        start = round_start(market, agent.address, stack.consumers)
        per_method = jobs_needed(seconds, len(stack.consumers), calls_per_second)
        for consumer in stack.consumers:
            open_jobs(market, consumer, agent.address, per_method, EXPIRES_IN)
        run = LoadRun(market, agent.url, agent.address, stack.consumers, seconds, seed)
    log_from = agent.log_path.stat().st_size
    watcher = HealthWatcher(stack).start()
    run.start()
    fault_log: list[str] = []
    served_at_fault: list[int] = []
    try:
        if fault is not None:
            at, hold = rng.uniform(0.2, 0.45) * seconds, rng.uniform(2.0, 4.0)
            time.sleep(max(0.0, run.started + at - time.monotonic()))
            if pay == "channel":
                unclaimed = {c: served - claimed for c, (served, claimed, _) in
                             ledger_channels(stack.ledger, list(channels.values())).items()}
                at_fault = f"{sum(unclaimed.values())} token units served and not yet claimed at that moment"
            else:
                all_jobs = [j for c in stack.consumers for j in c.opened]
                served_at_fault = [j for j, (state, _) in ledger_states(stack.ledger, all_jobs).items()
                                   if state in ("SERVED", "CLAIMING")]
                at_fault = f"{len(served_at_fault)} jobs served and not yet claimed at that moment"
            done = fault.inject(stack, hold)
            fault_log.append(f"fault {fault.name} at {at:.1f} s for {hold:.1f} s: {done}; {at_fault}")
            time.sleep(hold)
            fault.heal(stack)
    finally:
        run.join()
        watcher.stop()
    if pay == "channel":
        # per channel, answered x price == claimed covers "served before the fault claimed exactly once"
        reconciliation = reconcile_channels(market, agent.address, stack.ledger, stack.consumers, channels, start)
    else:
        reconciliation = reconcile(market, agent.address, stack.ledger, stack.consumers, start)
    result = RoundResult(seed, fault.name if fault else "", figures(run), reconciliation, watcher.peak_rss,
                         fault_log, pay)
    not_jsonrpc = {key: n for key, n in result.figures["retries"].items() if key.startswith("http:")}
    result.reconciliation.check(not not_jsonrpc, f"answers that were not JSON-RPC errors: {not_jsonrpc}")
    if fault is not None:
        log = agent.log_path.read_text(errors="replace")[log_from:]
        trouble = fault.trouble_shown(watcher, log)
        result.reconciliation.check(trouble is None, f"{fault.name}: {trouble}")
    if fault is not None and pay == "job":
        events = completed_events(market, agent.address, start.block)
        result.reconciliation.check(all(len(events.get(j, [])) == 1 for j in served_at_fault),
                                    f"jobs served before the fault not claimed exactly once: "
                                    f"{[j for j in served_at_fault if len(events.get(j, [])) != 1]}")
    return result
