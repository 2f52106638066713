"""Hostile inputs to every `facemarket channel` command and to `call --pay channel`: each is
refused with one line that says what to do, and nothing moves on chain."""

from __future__ import annotations

import itertools

import pytest

from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO

UNIT = 10**8


_names = itertools.count(1)


@pytest.fixture
def owner_and_stranger(fm, new_consumer) -> tuple[str, int, str]:
    """A fresh consumer with an open channel (1 FACE, 2h), its id, and a stranger's name."""
    name = f"chan-h{next(_names)}"
    new_consumer(name, tokens="3")
    stranger = name + "-x"
    new_consumer(stranger, tokens="1")
    run = fm("channel", "open", "--service", SERVICE, "--amount", "1", "--expires-in", "2h", "-y",
             "--account", name, "--json")
    assert run.code == 0, run.err
    return name, run.json["id"], stranger


def refused(run, *words: str) -> str:
    assert run.code != 0, run.out
    text = run.err.lower()
    assert all(w.lower() in text for w in words), run.err
    return text


@pytest.mark.parametrize("amount, words", [
    ("0", ["more than 0"]), ("-1", ["not an amount"]), ("abc", ["not an amount"]),
    ("0.000000001", ["not an amount", "decimals"]), ("1e30", ["holds", "needs"]),
])
def test_open_refuses_bad_amounts_and_nothing_moves(fm, new_consumer, amount, words):
    name = f"chan-o{next(_names)}"
    new_consumer(name, tokens="1")
    before = fm("token", "balance", name, "--json").json["balance_units"]
    refused(fm("channel", "open", "--service", SERVICE, "--amount", amount, "-y", "--account", name), *words)
    assert fm("token", "balance", name, "--json").json["balance_units"] == before
    assert fm("channel", "list", "--all", "--account", name, "--json").json == []


@pytest.mark.parametrize("expires_in, words", [
    ("0", ["must be positive"]), ("-5m", ["must be positive"]), ("soon", ["not a duration"]),
    ("30s", ["too short"]), ("999999999999999d", ["beyond what the contract can store"]),
])
def test_open_refuses_bad_lifetimes(fm, owner_and_stranger, expires_in, words):
    name, _, _ = owner_and_stranger
    refused(fm("channel", "open", "--service", SERVICE, "--amount", "1", "--expires-in", expires_in,
               "-y", "--account", name), *words)


def test_open_refuses_an_unknown_service(fm, owner_and_stranger):
    name, _, _ = owner_and_stranger
    refused(fm("channel", "open", "--service", "nobody/nothing", "--amount", "1", "-y",
               "--account", name), "not registered")


def test_unknown_channels_are_refused_by_every_command(fm, owner_and_stranger):
    name, _, _ = owner_and_stranger
    for channel_id in ("999999", "0"):
        for args in (["status", channel_id], ["topup", channel_id, "--amount", "1", "-y"],
                     ["extend", channel_id, "--expires-in", "9h"], ["reclaim", channel_id]):
            refused(fm("channel", *args, "--account", name), "does not exist", "channel list")


def test_someone_elses_channel_is_refused_by_every_command(fm, owner_and_stranger):
    name, channel_id, stranger = owner_and_stranger
    for args in (["status"], ["topup", "--amount", "1", "-y"], ["extend", "--expires-in", "9h"],
                 ["reclaim"]):
        command, *rest = args
        refused(fm("channel", command, str(channel_id), *rest, "--account", stranger),
                "belongs to", "--account")


@pytest.mark.parametrize("amount, words", [("0", ["more than 0"]), ("-2", ["not an amount"]),
                                           ("1e30", ["holds", "needs"])])
def test_topup_refuses_bad_amounts(fm, owner_and_stranger, amount, words):
    name, channel_id, _ = owner_and_stranger
    refused(fm("channel", "topup", str(channel_id), "--amount", amount, "-y", "--account", name), *words)
    assert fm("channel", "status", str(channel_id), "--account", name, "--json").json["deposit"] == UNIT


def test_extend_refuses_an_earlier_expiry(fm, owner_and_stranger):
    name, channel_id, _ = owner_and_stranger
    refused(fm("channel", "extend", str(channel_id), "--expires-in", "1h", "--account", name),
            "already expires", "later --expires-in")


def test_reclaim_too_early_says_when(fm, owner_and_stranger):
    name, channel_id, _ = owner_and_stranger
    refused(fm("channel", "reclaim", str(channel_id), "--account", name),
            "has not expired yet", "expires in", "utc")


def test_expired_channel_refuses_topup_extend_calls_and_reclaims_once(fm, owner_and_stranger, chain_rpc):
    name, channel_id, _ = owner_and_stranger
    status = fm("channel", "status", str(channel_id), "--account", name, "--json").json
    now = int(chain_rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    chain_rpc("evm_increaseTime", [status["expires_at"] - now + 1])
    chain_rpc("evm_mine")
    refused(fm("channel", "topup", str(channel_id), "--amount", "1", "-y", "--account", name),
            "expired", "reclaim")
    refused(fm("channel", "extend", str(channel_id), "--expires-in", "9h", "--account", name),
            "expired", "reclaim")
    refused(fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel", "-y",
               "--account", name), "no open channel", "channel open")
    assert fm("channel", "reclaim", str(channel_id), "--account", name).code == 0
    refused(fm("channel", "reclaim", str(channel_id), "--account", name), "already reclaimed")


def test_call_pay_channel_without_a_channel_and_contradicting_options(fm, new_consumer):
    new_consumer("chan-none", tokens="1")
    refused(fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel", "-y",
               "--account", "chan-none"), "no open channel", "channel open")
    refused(fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel", "--job", "1",
               "-y", "--account", "chan-none"), "contradict")
    refused(fm("call", SERVICE, "find_face", "--pay", "cash", "--account", "chan-none"), "cash")


def test_a_used_up_channel_is_refused_before_signing(fm, owner_and_stranger, market_stack):
    """A channel whose room is below the price: `--pay channel` names the top-up."""
    from facemarket.cli.channel_store import ChannelStore
    from facemarket.cli.home import Home
    name, channel_id, _ = owner_and_stranger
    [store_folder] = (market_stack.home / "channels").iterdir()
    chain_id, address = store_folder.name.split("-")
    store = ChannelStore(Home(market_stack.home), int(chain_id), address)
    store.allocate(channel_id, UNIT)  # as if the whole deposit was signed away
    refused(fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel", "-y",
               "--account", name), "no open channel", "top one up")
