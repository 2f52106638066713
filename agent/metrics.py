"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

Why hand-rolled: the agent needs a handful of counters, gauges and two histograms; the text
format is simple and stable, and one dependency less is one less thing to pin and audit.
Everything here runs on the event loop, so no locks are needed.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Awaitable, Callable

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)

    def inc(self, amount: float = 1, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{self.name}_bucket{{le="{le}"}} {cumulative}')
        lines += [f"{self.name}_sum {self.sum:.6f}", f"{self.name}_count {cumulative}"]
        return lines


class Metrics:
    """Every metric the agent exports; `render` adds gauges read at scrape time."""

    def __init__(self) -> None:
        self.requests = Counter("facemarket_agent_requests_total",
                                "Paid calls by outcome (served, replayed, or the refusal reason).")
        self.gate_seconds = Histogram("facemarket_agent_gate_seconds",
                                      "Time the payment gate took to admit or refuse a call.")
        self.upstream_seconds = Histogram("facemarket_agent_upstream_seconds",
                                          "Time the wrapped service took to answer.")
        self.claim_transactions = Counter("facemarket_agent_claim_transactions_total",
                                          "Claim (completeJobs) transactions by result.")
        self.jobs_claimed = Counter("facemarket_agent_jobs_claimed_total", "Jobs claimed on the chain.")
        self.tokens_earned = Counter("facemarket_agent_tokens_earned_total",
                                     "Token units earned by claimed jobs (since start).")
        self.follower_errors = Counter("facemarket_agent_follower_errors_total",
                                       "Chain follower polls that failed (chain unreachable or odd).")
        self.reorgs = Counter("facemarket_agent_chain_rewinds_total",
                              "Times the follower rewound its cursor (reorg or chain restart).")

    async def render(self, gauges: Callable[[], Awaitable[dict[str, tuple[str, dict[str, float]]]]]) -> str:
        """The exposition text; `gauges` returns name -> (help, {label value: value})."""
        lines: list[str] = []
        for metric in (self.requests, self.gate_seconds, self.upstream_seconds, self.claim_transactions,
                       self.jobs_claimed, self.tokens_earned, self.follower_errors, self.reorgs):
            lines += metric.render()
        for name, (help_text, values) in (await gauges()).items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{label} {value:g}" for label, value in values.items()]
        return "\n".join(lines) + "\n"
