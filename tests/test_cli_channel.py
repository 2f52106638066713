"""Payment channels through the CLI on a real market (Ganache, ChannelEscrow, agent process, face
services): open once, calls pay from the channel with rising vouchers, status shows what the
agent served, top-up, extend, reclaim after expiry returns deposit minus claimed to the token
unit; and the client resumes from the agent's state when its own is deleted."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from facemarket.cli.client import Client
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO

UNIT = 10**8  # token units per FACE


def token_units(fm, who: str) -> int:
    return fm("token", "balance", who, "--json").json["balance_units"]


def opened_channel(fm, who: str, amount: str = "5", expires_in: str = "7d") -> dict:
    run = fm("channel", "open", "--service", SERVICE, "--amount", amount, "--expires-in",
             expires_in, "-y", "--account", who, "--json")
    assert run.code == 0, run.err
    return run.json


def call(fm, who: str, *extra: str):
    return fm("call", SERVICE, "find_face", "--image", str(PHOTO), "-y", "--account", who,
              "--json", *extra)


def chain_now(chain_rpc) -> int:
    return int(chain_rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def wait_claimed(fm, who: str, channel_id: int, amount: int, timeout: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = fm("channel", "status", str(channel_id), "--account", who, "--json").json
        if record["claimed"] >= amount or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def test_open_calls_status_topup_extend_and_reclaim_to_the_token_unit(fm, new_consumer, chain_rpc):
    dana = new_consumer("chan-dana", tokens="10")
    before = token_units(fm, "chan-dana")
    channel = opened_channel(fm, "chan-dana", "5", "2h")
    assert (channel["consumer"], channel["deposit"], channel["state"]) == (dana, 5 * UNIT, "OPEN")
    assert token_units(fm, "chan-dana") == before - 5 * UNIT  # one transaction, the permit's

    amounts = []
    for _ in range(3):
        run = call(fm, "chan-dana")
        assert run.code == 0, run.err
        assert len(run.json["result"]["faces"]) == 1 and run.json["job"] is None
        paid = run.json["channel"]
        assert paid["id"] == channel["id"]
        amounts.append(paid["amount"])
    price = amounts[0]
    assert amounts == [price, 2 * price, 3 * price]
    human = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel", "-y",
               "--account", "chan-dana")
    assert human.code == 0, human.err
    assert f"on channel {channel['id']} (voucher for 0.04 FACE in all, 4.96 FACE left)" in human.err

    served = 4 * price
    status = wait_claimed(fm, "chan-dana", channel["id"], served)
    assert (status["served"], status["signed"], status["claimed"]) == (served, served, served)
    assert status["room"] == 5 * UNIT - served

    topped = fm("channel", "topup", str(channel["id"]), "--amount", "1.5", "-y", "--account",
                "chan-dana", "--json")
    assert topped.code == 0, topped.err
    assert topped.json["deposit"] == 6.5 * UNIT and topped.json["room"] == 6.5 * UNIT - served

    extended = fm("channel", "extend", str(channel["id"]), "--expires-in", "3h", "--account",
                  "chan-dana", "--json")
    assert extended.code == 0, extended.err
    assert extended.json["expires_at"] > channel["expires_at"]

    early = fm("channel", "reclaim", str(channel["id"]), "--account", "chan-dana")
    assert early.code == 1 and "has not expired yet" in early.err and "UTC" in early.err

    chain_rpc("evm_increaseTime", [extended.json["expires_at"] - chain_now(chain_rpc) + 1])
    chain_rpc("evm_mine")
    reclaimed = fm("channel", "reclaim", str(channel["id"]), "--account", "chan-dana", "--json")
    assert reclaimed.code == 0, reclaimed.err
    claimed = reclaimed.json["claimed"]
    assert claimed == served
    assert reclaimed.json["refunded"] == int(6.5 * UNIT) - claimed
    assert token_units(fm, "chan-dana") == before - claimed  # to the token unit
    listed = fm("channel", "list", "--all", "--account", "chan-dana", "--json").json
    assert [(c["id"], c["state"]) for c in listed] == [(channel["id"], "CLOSED")]


def test_the_client_resumes_from_the_agents_state_with_its_own_deleted(fm, new_consumer, market_stack):
    new_consumer("chan-emil", tokens="2")
    channel = opened_channel(fm, "chan-emil", "1")
    first = call(fm, "chan-emil")
    assert first.code == 0, first.err
    price = first.json["channel"]["amount"]

    shutil.rmtree(market_stack.home / "channels")  # records and session keys: a new machine
    auto = call(fm, "chan-emil")  # auto mode knows no channel here: pays with a job
    assert auto.code == 0 and auto.json["channel"] is None and auto.json["job"]["id"]

    resumed = call(fm, "chan-emil", "--pay", "channel")
    assert resumed.code == 0, resumed.err
    assert resumed.json["channel"] == {"id": channel["id"], "amount": 2 * price, "price": price,
                                       "room": 1 * UNIT - 2 * price}
    status = fm("channel", "status", str(channel["id"]), "--account", "chan-emil", "--json").json
    assert (status["served"], status["signed"]) == (2 * price, 2 * price)


def test_concurrent_calls_from_one_process_never_decrypt_and_get_distinct_amounts(new_consumer, market_stack, fm):
    """Eight threads, each with its own Client of the same account and home, call at once on one
    channel: every call is served, the vouchers' amounts are exactly price x 1..8, the agent
    counts 8 calls served, and no thread ever asked for the keystore's password."""
    new_consumer("chan-threads", tokens="2")
    home = Home(market_stack.home)
    opener = Client("demo", "chan-threads", home=home, password=market_stack.password)
    opened = opener.open_channel(SERVICE, UNIT, 3600)

    def never_asked() -> str:
        raise AssertionError("a call on a channel asked for the keystore's password")

    clients = [Client("demo", "chan-threads", home=home, ask_password=never_asked) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        paid = list(pool.map(lambda c: c.invoke(SERVICE, "ping", pay="channel"), clients))
    price = paid[0].price
    assert all(p.channel.channel_id == opened.id and p.job is None for p in paid)
    assert sorted(p.channel.amount for p in paid) == [price * n for n in range(1, 9)]
    status = fm("channel", "status", str(opened.id), "--account", "chan-threads", "--json").json
    assert (status["served"], status["signed"]) == (8 * price, 8 * price)


def test_a_stale_record_is_caught_up_from_the_agents_state(fm, new_consumer, market_stack):
    """This machine's record says less than the agent holds (restored from an old backup, or
    another machine paid on the channel): the agent refuses the low voucher as underpaid, the
    client resumes from the agent's state and the call is paid with the next amount, once."""
    new_consumer("chan-stale", tokens="2")
    channel = opened_channel(fm, "chan-stale", "1")
    price = call(fm, "chan-stale").json["channel"]["amount"]
    assert call(fm, "chan-stale").json["channel"]["amount"] == 2 * price
    [record_file] = (market_stack.home / "channels").glob(f"*/{channel['id']}.json")
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "signed": 0}))  # the backup's view

    # another body (the same body and amount again would be a retry: the stored answer, free)
    caught_up = fm("call", SERVICE, "ping", "--pay", "channel", "-y", "--account", "chan-stale", "--json")
    assert caught_up.code == 0, caught_up.err
    ping = caught_up.json["channel"]["price"]
    assert caught_up.json["channel"]["amount"] == 2 * price + ping
    status = fm("channel", "status", str(channel["id"]), "--account", "chan-stale", "--json").json
    assert (status["served"], status["signed"]) == (2 * price + ping, 2 * price + ping)
