"""Issue 11 finding 5: a squatter cannot redirect a consumer's payment, through the real CLI on
the local market (chain, agent, face services).

Before, the client paid the first agent that registered a service name: a squatter who
registered it first (or front-ran the provider with the real endpoint under its own address)
received every default consumer's payment. Now names live in provider namespaces held by their
owner, a bare name is refused, and the agent a consumer chose is pinned: a later change of the
registry's agent is refused until the consumer confirms it (--agent)."""

from __future__ import annotations

from facemarket.cli.localstack import PROVIDER
from tests.fixtures.cli import PHOTO

SPEC = "0x" + "00" * 32


def units(fm, who: str) -> int:
    return fm("account", "balance", who, "--json").json["token_units"]


def jobs_of(fm, who: str) -> list[dict]:
    return fm("job", "list", "--all", "--account", who, "--json").json


def registry_entry(fm, ref: str) -> dict:
    return fm("service", "show", ref, "--json").json


def test_a_squatter_who_registers_the_name_first_is_never_paid(fm, new_consumer, market_stack):
    """The squatter registers `faces` first, once pointing at its own endpoint and once at the
    real agent's endpoint (front-running it); the consumer who names the provider pays the
    provider's agent, the bare name is refused, and the squatter's namespace stays its own."""
    real = registry_entry(fm, f"{PROVIDER}/face-services")
    new_consumer("squatter")
    assert fm("provider", "create", "squat", "--account", "squatter").code == 0
    for name, endpoint in (("faces", "http://127.0.0.1:9/"), ("faces-front", real["endpoint"])):
        assert fm("service", "register", f"squat/{name}", "--endpoint", endpoint, "--price",
                  "0.00000001", "--spec-hash", SPEC, "--account", "squatter").code == 0
    # the provider registers the same names after the squatter, for its own agent
    for name in ("faces", "faces-front"):
        assert fm("service", "register", f"{PROVIDER}/{name}", "--endpoint", real["endpoint"],
                  "--price", "0.01", "--account", "agent").code == 0
    # nobody but the provider's owner adds or changes a service under its name
    taken = fm("service", "update", f"{PROVIDER}/faces", "--agent", "squatter", "--account",
               "squatter")
    assert taken.code == 1 and "belongs to" in taken.err and "act as the provider's owner" in taken.err
    assert fm("provider", "create", PROVIDER, "--account", "squatter").code == 1

    squatter_before = units(fm, "squatter")
    new_consumer("victim", tokens="1")
    bare = fm("call", "faces", "ping", "-y", "--account", "victim")
    assert bare.code == 1 and "write PROVIDER/SERVICE" in bare.err
    assert jobs_of(fm, "victim") == []  # refused before any tokens moved

    for name in ("faces", "faces-front"):
        paid = fm("call", f"{PROVIDER}/{name}", "ping", "-y", "--account", "victim", "--json")
        assert paid.code == 0, paid.err
        assert paid.json["agent"] == real["agent"] and paid.json["provider"] == PROVIDER
    asked = fm("call", f"{PROVIDER}/faces", "ping", "--account", "victim")  # no -y: asks first
    assert f"to agent {real['agent']} (provider {PROVIDER})?" in asked.err
    shown = fm("call", f"{PROVIDER}/faces", "ping", "-y", "--account", "victim")
    assert f"by agent {real['agent']} (provider {PROVIDER}) on" in shown.err  # "Served for … by agent … on job N"
    assert {j["agent"] for j in jobs_of(fm, "victim")} == {real["agent"]}
    assert units(fm, "squatter") == squatter_before


def test_a_changed_agent_is_refused_until_the_consumer_confirms_it(fm, new_consumer):
    """The provider's owner (or whoever stole its key) names another agent: the consumer who
    paid the first one is refused, with the way to confirm, and nothing moves until it does."""
    real_agent = registry_entry(fm, f"{PROVIDER}/face-services")
    olga = new_consumer("olga")
    assert fm("provider", "create", "olga", "--account", "olga").code == 0
    assert fm("service", "register", "olga/echo", "--agent", real_agent["agent"], "--endpoint",
              real_agent["endpoint"], "--price", "0.01", "--account", "olga").code == 0
    new_consumer("pete", tokens="1")
    first = fm("call", "olga/echo", "ping", "-y", "--account", "pete", "--json")
    assert first.code == 0, first.err
    assert first.json["agent"] == real_agent["agent"]

    assert fm("service", "update", "olga/echo", "--agent", olga, "--account", "olga").code == 0
    before = (units(fm, "pete"), len(jobs_of(fm, "pete")))
    for command in (["call", "olga/echo", "ping"], ["job", "open", "--service", "olga/echo"]):
        refused = fm(*command, "-y", "--account", "pete")
        assert refused.code == 1
        assert f"now names agent {olga} for olga/echo" in refused.err
        assert f"--agent {olga}" in refused.err
    assert (units(fm, "pete"), len(jobs_of(fm, "pete"))) == before

    wrong = fm("job", "open", "--service", "olga/echo", "--agent", real_agent["agent"], "-y",
               "--account", "pete")
    assert wrong.code == 1 and f"names agent {olga} for olga/echo, not" in wrong.err
    confirmed = fm("job", "open", "--service", "olga/echo", "--agent", "olga", "-y",
                   "--account", "pete")
    assert confirmed.code == 0, confirmed.err
    assert f"paid to agent {olga} (provider olga)" in confirmed.out
    assert jobs_of(fm, "pete")[-1]["agent"] == olga
    # confirmed once, pinned: the next command needs no --agent
    assert fm("job", "open", "--service", "olga/echo", "-y", "--account", "pete").code == 0


def test_max_price_refuses_a_dearer_call_without_moving_tokens(fm, new_consumer):
    """find_face costs 0.01: with --max-price 0.001 neither `call` nor `job open` pays."""
    new_consumer("max", tokens="1")
    ref = f"{PROVIDER}/face-services"
    for command in (["call", ref, "find_face", "--image", str(PHOTO)],
                    ["job", "open", "--service", ref, "--method", "find_face"]):
        refused = fm(*command, "--max-price", "0.001", "-y", "--account", "max")
        assert refused.code == 1 and "more than the 0.001 FACE you accept" in refused.err
    assert jobs_of(fm, "max") == [] and units(fm, "max") == 10**8
    # a prepaid find_face job (0.01) is not spent on a ping whose limit is 0.001
    [dear] = fm("job", "open", "--service", ref, "--method", "find_face", "-y", "--account",
                "max", "--json").json
    ping = fm("call", ref, "ping", "--max-price", "0.001", "-y", "--account", "max", "--json")
    assert ping.code == 0 and ping.json["job"]["id"] != dear["id"]
    assert ping.json["job"]["price"] <= 10**5
    assert [j["id"] for j in jobs_of(fm, "max") if j["prepaid"]] == [dear["id"]]
