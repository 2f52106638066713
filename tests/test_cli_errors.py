"""Failures a person meets: one clear line on stderr, no traceback (unless --debug), exit 1."""

from __future__ import annotations

import socket

from tests.fixtures.cli import PHOTO


def assert_one_clear_line(run, *needles: str) -> None:
    assert run.code == 1
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.err
    for needle in needles:
        assert needle in lines[0]


def test_wrong_password(fm):
    run = fm("call", "demo/face-services", "ping", "-y", env={"FACEMARKET_PASSWORD": "not it"})
    assert_one_clear_line(run, "wrong password for account 'alice'", "--password-file")
    debug = fm("token", "balance", "--debug", "--account", "alice",
               env={"FACEMARKET_PASSWORD": "not it"})
    assert debug.code == 0  # reading a balance needs no key


def test_wrong_password_from_a_password_file(fm, tmp_path):
    wrong = tmp_path / "password"
    wrong.write_text("not it\n")
    run = fm("job", "open", "--service", "demo/face-services", "-y", "--password-file", str(wrong))
    assert_one_clear_line(run, "wrong password")


def test_wrong_password_shows_traceback_with_debug(fm):
    try:
        fm("job", "open", "--service", "demo/face-services", "-y", "--debug",
           env={"FACEMARKET_PASSWORD": "not it"})
    except Exception as error:  # noqa: BLE001 — --debug lets the exception through
        assert type(error).__name__ == "WrongPassword"
    else:
        raise AssertionError("--debug should re-raise the failure")


def test_unknown_service(fm):
    assert_one_clear_line(fm("call", "demo/no-such-service", "find_face", "--image", str(PHOTO),
                             "-y"),
                          "service 'demo/no-such-service' is not registered", "facemarket service list")
    assert_one_clear_line(fm("call", "face-services", "ping", "-y"),
                          "'face-services' does not name its provider", "service list")


def test_insufficient_tokens(fm, new_consumer):
    new_consumer("ivan")  # ETH for gas, no tokens
    assert_one_clear_line(fm("call", "demo/face-services", "ping", "-y", "--account", "ivan"),
                          "holds 0 FACE", "token mint")
    assert_one_clear_line(fm("token", "transfer", "alice", "1", "-y", "--account", "ivan"),
                          "holds 0 FACE, needs 1 FACE")


def test_agent_down_keeps_the_job(fm, new_consumer):
    new_consumer("judy", tokens="1")
    with socket.socket() as s:  # a port nothing listens on: an agent that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert fm("provider", "create", "judy", "--account", "judy").code == 0
    assert fm("service", "register", "judy/down", "--endpoint", f"http://127.0.0.1:{port}/",
              "--price", "0.01", "--spec-hash", "0x" + "00" * 32, "--account", "judy").code == 0
    run = fm("call", "judy/down", "ping", "-y", "--account", "judy")  # checked before paying
    assert_one_clear_line(run, "the agent of judy/down does not answer at http", "no job was opened")
    assert fm("job", "list", "--account", "judy", "--json").json == []
    assert fm("job", "open", "--service", "judy/down", "-y", "--account", "judy").code == 0
    kept = fm("job", "list", "--account", "judy", "--json").json
    assert len(kept) == 1 and kept[0]["prepaid"] and kept[0]["state"] == "FUNDED"
    again = fm("call", "judy/down", "ping", "-y", "--account", "judy")  # uses the kept job
    assert_one_clear_line(again, "cannot reach the agent of 'judy/down'",
                          f"0.01 FACE stays held in job {kept[0]['id']} on the escrow",
                          f"`facemarket job refund {kept[0]['id']}` returns it")
    assert " UTC (in " in again.err
    assert len(fm("job", "list", "--account", "judy", "--json").json) == 1


def test_unconfirmed_payment_and_bad_input(fm):
    assert_one_clear_line(fm("call", "demo/face-services", "ping"), "not confirmed", "-y")
    assert_one_clear_line(fm("token", "mint", "alice", "1.000000001", "--account", "owner"),
                          "not an amount")
    assert_one_clear_line(fm("call", "demo/face-services", "ping", "--param", "novalue", "-y"),
                          "bad --param")
    assert_one_clear_line(fm("account", "show", "nobody"), "unknown account 'nobody'")
    assert_one_clear_line(fm("job", "status", "1", "--network", "nowhere"), "unknown network")


def test_chain_down(fm, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = {"FACEMARKET_HOME": str(tmp_path)}
    deployment = tmp_path / "d.json"
    deployment.write_text('{"chain_id": 1337, "token": "0x' + "1" * 40 + '", "registry": "0x'
                          + "2" * 40 + '", "escrow": "0x' + "3" * 40 + '", "block": 0}')
    fm("network", "add", "gone", "--rpc", f"http://127.0.0.1:{port}", "--deployment",
       str(deployment), "--use", env=home)
    assert_one_clear_line(fm("token", "balance", "0x" + "4" * 40, "--network", "gone", env=home),
                          "cannot reach the chain", "facemarket chain up")
