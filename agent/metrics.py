"""The agent's Prometheus metrics, kept and rendered by `prometheus_client`.

Why the library: it has no dependencies, escapes label values, and adds the process metrics
(CPU, memory, open files) an operator expects next to the agent's own. Each agent has its own
registry, so several agents in one process (tests) never share a counter.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    """Every metric the agent exports; the gauges are set from the ledger just before a scrape."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.requests = Counter("facemarket_agent_requests_total",
                                "Paid calls by outcome (served, replayed, or the refusal reason).",
                                ["outcome"], registry=registry)
        self._outcomes: dict[str, Counter] = {}  # `requests` by outcome, looked up once (`count`)
        self.gate_seconds = Histogram("facemarket_agent_gate_seconds",
                                      "Time the payment gate took to admit or refuse a call.",
                                      buckets=LATENCY_BUCKETS, registry=registry)
        self.upstream_seconds = Histogram("facemarket_agent_upstream_seconds",
                                          "Time the wrapped service took to answer.",
                                          buckets=LATENCY_BUCKETS, registry=registry)
        self.record_seconds = Histogram("facemarket_agent_record_seconds",
                                        "Time from the service's answer to the paid answer: the answer "
                                        "recorded durably with its payment, the receipt signed.",
                                        buckets=LATENCY_BUCKETS, registry=registry)
        self.claim_transactions = Counter("facemarket_agent_claim_transactions_total",
                                          "Claim (completeJobs) transactions by result.", ["result"],
                                          registry=registry)
        self.jobs_claimed = Counter("facemarket_agent_jobs_claimed_total", "Jobs claimed on the chain.",
                                    registry=registry)
        self.tokens_earned = Counter("facemarket_agent_tokens_earned_total",
                                     "Token units earned by claimed jobs (since start).", registry=registry)
        self.follower_errors = Counter("facemarket_agent_follower_errors_total",
                                       "Chain follower polls that failed (chain unreachable or odd).",
                                       registry=registry)
        self.reorgs = Counter("facemarket_agent_chain_rewinds_total",
                              "Times the follower rewound its cursor (reorg or chain restart).", registry=registry)
        self.ledger_jobs = Gauge("facemarket_agent_ledger_jobs", "Jobs in the ledger by state.", ["state"],
                                 registry=registry)
        self.claims_pending = Gauge("facemarket_agent_claims_pending",
                                    "Served jobs not yet claimed (SERVED + CLAIMING).", registry=registry)
        self.in_flight = Gauge("facemarket_agent_in_flight", "Paid calls being served now.", registry=registry)
        self.follower_block = Gauge("facemarket_agent_follower_block", "Last block whose events are in the ledger.",
                                    registry=registry)
        self.head_timestamp = Gauge("facemarket_agent_head_timestamp_seconds",
                                    "Timestamp of the newest block the follower saw: the chain's clock that "
                                    "expiry is judged by.", registry=registry)
        self.trial_calls = Gauge("facemarket_agent_trial_calls", "Free trial calls in the ledger (served, "
                                 "in_progress) and the grants seen (grants).", ["state"], registry=registry)
        self.channels = Gauge("facemarket_agent_channels", "Payment channels in the ledger (open, closed).",
                              ["state"], registry=registry)
        self.channel_units = Gauge("facemarket_agent_channel_units",
                                   "Token units on channels: served (completed calls), claimed, unclaimed.",
                                   ["kind"], registry=registry)
        self.channel_calls = Gauge("facemarket_agent_channel_calls", "Channel calls in the ledger by state.",
                                   ["state"], registry=registry)

    def count(self, outcome: str) -> None:
        """One more paid call of `outcome` in `requests`. Why not `requests.labels(...)` per call:
        it checks and joins the label values each time, several µs of every paid call's CPU; the
        outcomes are a few fixed words (the refusal reasons' names), so each child is kept."""
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = self.requests.labels(outcome=outcome)
        counter.inc()

    def set_trials(self, counts: dict[str, int]) -> None:
        """The trial gauge from the ledger's trial counts (agent/trial_ledger.py `counts`)."""
        for state, count in counts.items():
            self.trial_calls.labels(state=state).set(count)

    def render(self, ledger_counts: dict[str, int], in_flight: int, follower_block: int,
               channel_counts: dict[str, int] | None = None) -> bytes:
        """The exposition text (format 0.0.4), with the gauges set from what the caller read."""
        self.ledger_jobs.clear()  # a state no job is in any more is not reported
        for state, count in sorted(ledger_counts.items()):
            self.ledger_jobs.labels(state=state).set(count)
        self.claims_pending.set(ledger_counts.get("SERVED", 0) + ledger_counts.get("CLAIMING", 0))
        self.in_flight.set(in_flight)
        self.follower_block.set(follower_block)
        if channel_counts is not None:
            self.channels.labels(state="open").set(channel_counts["channels"] - channel_counts["closed"])
            self.channels.labels(state="closed").set(channel_counts["closed"])
            for kind in ("served", "claimed", "unclaimed"):
                self.channel_units.labels(kind=kind).set(channel_counts[kind])
            self.channel_calls.labels(state="RESERVED").set(channel_counts["calls_in_progress"])
            self.channel_calls.labels(state="SERVED").set(channel_counts["calls_served"])
        return generate_latest(self.registry)
