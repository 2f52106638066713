"""The whole market under load while one thing goes wrong at a seeded random moment for a seeded
random while: the agent SIGKILLed and restarted, the face services SIGKILLed and restarted, the
chain stopped and started again from its state, the chain refusing the claimer's transactions
(or taking them and losing the answer), the ledger's disk full. After each round the same
reconciliation as under plain load holds (tests/market_reconcile.py), jobs served before the
fault are claimed exactly once, jobs not served are refunded after expiry, and the agent showed
the trouble on /health and in its log (tests/market_faults.py). The seed is printed in pytest's
summary; `--market-seed N` repeats a run's timing.
"""

from __future__ import annotations

import pytest

from tests.market_faults import FAULTS
from tests.market_round import run_round

# The market's agent keeps its ledger on a tmpfs of its own (mount needs root) so the ledger_full fault can fill it.
pytestmark = pytest.mark.root

@pytest.mark.parametrize("fault", list(FAULTS))
def test_market_keeps_its_promises_through_a_fault(market_under_test, market_seconds, market_seed, market_report, fault):
    result = run_round(market_under_test, market_seconds, market_seed + list(FAULTS).index(fault) + 1, FAULTS[fault]())
    market_report(result)
    assert not result.problems, result.summary()
    assert result.figures["answered"] > 0, result.summary()
