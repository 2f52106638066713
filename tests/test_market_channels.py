"""The market's load and fault rounds paid from payment channels (issue 12): each consumer opens
one channel with a permit and pays every call from it with the client library's voucher store,
two calls at a time on the same channel. The reconciliation (tests/market_channel_reconcile.py)
adds, per channel: calls answered x price == the amount claimed on chain, nothing paid twice, no
call served without its answer, and after expiry the reclaim returns deposit - claimed to the
token unit. The fault rounds are the job rounds' faults (tests/market_faults.py).
"""

from __future__ import annotations

import pytest

from tests.market_faults import FAULTS
from tests.market_round import run_round

# The market stack mounts a tmpfs for the agent's ledger (tests/market_stack.py): root only.
pytestmark = pytest.mark.root



def test_market_on_channels_keeps_every_promise(market_under_test, market_seconds, market_seed, market_report):
    # half a job round (4 s by default; longer with --market-seconds): the job rounds measure the pace
    result = run_round(market_under_test, market_seconds / 2, market_seed, pay="channel")
    market_report(result)
    assert not result.problems, result.summary()
    assert result.figures["answered"] > 0, result.summary()
    assert set(result.figures["retries"]) <= {"overloaded"}, result.summary()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_market_on_channels_keeps_its_promises_through_a_fault(market_under_test, market_seconds, market_seed,
                                                               market_report, fault):
    result = run_round(market_under_test, market_seconds, market_seed + 100 + list(FAULTS).index(fault),
                       FAULTS[fault](), pay="channel")
    market_report(result)
    assert not result.problems, result.summary()
    assert result.figures["answered"] > 0, result.summary()
