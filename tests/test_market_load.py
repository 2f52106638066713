"""The whole market under load: consumers with their own accounts and prepaid jobs call
`find_face`, `face_identity`, `enrol` and `gallery` through the agent concurrently for a fixed
time (more consumers than the agent's concurrency limit), then everything is reconciled against
the chain and the ledger (tests/market_reconcile.py). Figures are printed in pytest's summary.
Longer: `--market-seconds 120`, or `python -m benchmarks.market_soak`.
"""

from __future__ import annotations

import pytest

from tests.market_round import run_round

# The market stack mounts a tmpfs for the agent's ledger (tests/market_stack.py): root only.
pytestmark = pytest.mark.root


def test_market_under_load_keeps_every_promise(market_under_test, market_seconds, market_seed, market_report):
    result = run_round(market_under_test, market_seconds, market_seed)
    market_report(result)
    assert not result.problems, result.summary()
    assert result.figures["answered"] > 0, result.summary()
    # no error but the deliberate 503 of a full agent: every call answered, or refused as overloaded
    assert set(result.figures["retries"]) <= {"overloaded"}, result.summary()
    assert {call.detail for c in market_under_test.consumers for call in c.calls if call.outcome == "refused"} <= {"overloaded"}
