"""Trial grants through the CLI on a real chain, agent process and face services: the provider's
`facemarket agent grant`, the consumer's `facemarket call --trial`, and what the CLI shows when
the agent answers 402 (how to pay, from the agent's Payment-Required)."""

from __future__ import annotations

import shutil

from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO


def grant(fm, market_stack, who: str, *args: str):
    return fm("agent", "grant", who, *args, "--config", str(market_stack.agent_config))


def test_a_granted_consumer_calls_free_until_the_grant_is_used_up_then_is_told_how_to_pay(fm, new_consumer,
                                                                                          market_stack):
    dave = new_consumer("trial-dave")  # no tokens at all: trial calls cost nothing
    issued = grant(fm, market_stack, "trial-dave", "--calls", "3", "--expires-in", "7d")
    assert issued.code == 0, issued.err
    line = issued.out.strip()
    assert line.startswith(f"facemarket-trial:1:{dave}:3:") and "\n" not in line
    assert "3 free call(s)" in issued.err and "the chain's clock" in issued.err

    for index in (0, 1):
        called = fm("call", SERVICE, "ping", "--trial", line, "--account", "trial-dave", "--json")
        assert called.code == 0, called.err
        assert called.json["result"] == "pong" and called.json["trial"]["call_index"] == index
    human = fm("call", SERVICE, "ping", "--trial", line, "--account", "trial-dave")
    assert human.code == 0 and "Served free" in human.err and "trial call 2 of the grant's 3" in human.err

    refused = fm("call", SERVICE, "ping", "--trial", line, "--account", "trial-dave")
    assert refused.code == 1
    assert "trial_used_up" not in refused.err and "every call of the trial grant was used" in refused.err
    # ping costs 1 token unit at the stack's agent (its config template's prices)
    assert "how to pay: a payment channel (0.00000001 FACE via 0x" in refused.err
    assert "an escrow job (0.00000001 FACE via 0x" in refused.err and len(refused.err.strip().splitlines()) == 1
    as_json = fm("call", SERVICE, "ping", "--trial", line, "--account", "trial-dave", "--json")
    payment = as_json.json["error"]["payment"]
    assert as_json.json["error"]["reason"] == "trial_used_up"
    assert {mode["scheme"] for mode in payment["accepts"]} == {"facemarket-channel", "facemarket-job",
                                                               "facemarket-trial"}
    assert fm("token", "balance", "trial-dave", "--json").json["balance_units"] == 0


def test_a_client_that_lost_its_indexes_skips_the_used_ones(fm, new_consumer, market_stack):
    new_consumer("trial-erin")
    line = grant(fm, market_stack, "trial-erin", "--calls", "2").out.strip()
    assert fm("call", SERVICE, "ping", "--trial", line, "--account", "trial-erin").code == 0
    shutil.rmtree(market_stack.home / "trials")
    # another body: index 0 served the ping, so the agent refuses it for this call and the client moves on
    called = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--trial", line, "--account", "trial-erin", "--json")
    assert called.code == 0, called.err
    assert called.json["trial"]["call_index"] == 1 and len(called.json["result"]["faces"]) == 1


def test_hostile_grant_and_trial_input_gets_one_clear_line(fm, new_consumer, market_stack):
    new_consumer("trial-frank")
    for args, says in ((("nobody-by-that-name", "--calls", "2"), "is not an address nor an account name"),
                       (("trial-frank", "--calls", "0"), "Invalid value for '--calls'"),
                       (("trial-frank", "--calls", "2000000"), "a trial grant gives 1 to 1000000 calls"),
                       (("trial-frank", "--calls", "2", "--expires-in", "soon"), "is not a duration"),
                       (("trial-frank", "--calls", "2", "--expires-in", "-5m"), "must be positive"),
                       (("trial-frank", "--calls", "2", "--expires-in", "99999999999d"), "a trial grant expires by")):
        run = grant(fm, market_stack, *args)
        assert run.code == 2 and says in run.err, (args, run.err)
    line = grant(fm, market_stack, "trial-frank", "--calls", "1").out.strip()
    new_consumer("trial-gina")
    for trial, account, says in (("facemarket-trial:1:nonsense", "trial-frank", "--trial: not a trial grant"),
                                 (line, "trial-gina", "the trial grant is for ")):
        run = fm("call", SERVICE, "ping", "--trial", trial, "--account", account)
        assert run.code == 1 and says in run.err and len(run.err.strip().splitlines()) == 1, run.err
    both = fm("call", SERVICE, "ping", "--trial", line, "--job", "1", "--account", "trial-frank")
    assert both.code == 1 and "--trial and --job" in both.err
