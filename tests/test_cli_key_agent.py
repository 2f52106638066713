"""`facemarket account unlock|lock`: a key agent holds an account's decrypted key for a while
(cli/key_agent.py) and commands sign through it instead of decrypting the keystore; refused
when its socket is not the user's alone, gone when stale, and it signs only for its account."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from facemarket.cli import key_agent_link
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE
from facemarket.contracts.typed_messages import (channels_domain,
                                                 recover_channel_state_request_signer,
                                                 recover_trial_call_signer, recover_voucher_signer)
from tests.fixtures.cli import PHOTO

WRONG = {"FACEMARKET_PASSWORD": "not the password"}
NOBODY = 65534


@pytest.fixture
def unlocked(fm, new_consumer, market_stack):
    """unlocked("name") -> (address, socket path): a consumer with tokens, unlocked for 10m;
    every account unlocked here is locked at the end."""
    names = []

    def make(name: str, tokens: str = "1") -> tuple[str, Path]:
        address = new_consumer(name, tokens=tokens)
        run = fm("account", "unlock", name, "--for", "10m", "--json")
        assert run.code == 0, run.err
        names.append(name)
        return address, Path(run.json["socket"])

    yield make
    for name in names:
        fm("account", "lock", name)


def call(fm, name: str, env: dict | None = None):
    return fm("call", SERVICE, "find_face", "--image", str(PHOTO), "-y", "--account", name,
              "--json", env=env)


def test_an_unlocked_account_calls_without_its_password_until_it_is_locked(fm, unlocked):
    address, path = unlocked("ka-user")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    opened = fm("job", "open", "--service", SERVICE, "--method", "find_face", "-y",
                "--account", "ka-user", env=WRONG)
    assert opened.code == 0, opened.err  # permit and transaction signed by the agent
    prepaid = call(fm, "ka-user", env=WRONG)
    assert prepaid.code == 0, prepaid.err
    assert prepaid.json["job"]["consumer"] == address and prepaid.json["opened_job"] is False
    fresh = call(fm, "ka-user", env=WRONG)  # no job left: opens one through the agent
    assert fresh.code == 0 and fresh.json["opened_job"] is True, fresh.err

    locked = fm("account", "lock", "ka-user")
    assert locked.code == 0 and "its key agent ended" in locked.out
    assert not path.exists()
    refused = call(fm, "ka-user", env=WRONG)
    assert refused.code == 1 and "wrong password for account 'ka-user'" in refused.err
    assert "was not unlocked" in fm("account", "lock", "ka-user").out


def call_in_new_process(market_stack, *args: str) -> tuple[dict, list[str]]:
    """`facemarket call SERVICE find_face --image PHOTO --json *args` in a new Python process
    with a wrong password: (its JSON answer, the heavy modules it loaded)."""
    done = subprocess.run([sys.executable, "-c", f"""
import json, sys
from facemarket.cli.main import cli
try:
    cli(["call", "{SERVICE}", "find_face", "--image", {str(PHOTO)!r}, "--json", *{list(args)!r}])
except SystemExit as end:
    print(json.dumps([end.code, sorted(sys.modules)]), file=sys.stderr)
"""], capture_output=True, text=True, timeout=120, env={**market_stack.env, **WRONG})
    code, modules = json.loads(done.stderr.strip().splitlines()[-1])
    assert code == 0, done.stderr
    heavy = [m for m in modules if m.split(".")[0] in (
        "web3", "eth_account", "eth_keyfile", "py_ecc", "eth_utils", "eth_abi", "pydantic", "cv2",
        "numpy", "aiohttp")]
    return json.loads(done.stdout), heavy


def test_a_prepaid_call_through_the_key_agent_loads_no_chain_or_key_library(fm, unlocked,
                                                                            market_stack):
    unlocked("ka-light")
    assert fm("job", "open", "--service", SERVICE, "--method", "find_face", "-y",
              "--account", "ka-light").code == 0
    answer, heavy = call_in_new_process(market_stack, "--account", "ka-light")
    assert answer["opened_job"] is False
    assert heavy == []


def test_a_call_on_a_channel_loads_no_chain_or_key_library_nor_decrypts(fm, new_consumer,
                                                                        market_stack):
    new_consumer("ka-channel", tokens="1")
    opened = fm("channel", "open", "--service", SERVICE, "--amount", "0.5", "--expires-in", "1d",
                "-y", "--account", "ka-channel", "--json")
    assert opened.code == 0, opened.err
    # a wrong password: the call would fail if it decrypted the keystore
    answer, heavy = call_in_new_process(market_stack, "--account", "ka-channel", "--pay", "channel")
    assert answer["channel"]["id"] == opened.json["id"] and answer["job"] is None
    assert heavy == []


def test_without_its_session_key_a_channel_pays_through_the_key_agent(fm, unlocked,
                                                                      market_stack):
    address, _ = unlocked("ka-voucher")
    opened = fm("channel", "open", "--service", SERVICE, "--amount", "0.5", "--expires-in", "1d",
                "-y", "--account", "ka-voucher", "--json")
    assert opened.code == 0, opened.err
    folder = next((Path(market_stack.env["FACEMARKET_HOME"]) / "channels").iterdir())
    (folder / "keys" / f"{opened.json['signer']}.key").unlink()  # as on another machine
    (folder / f"{opened.json['id']}.json").unlink()
    paid = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", "channel",
              "--account", "ka-voucher", "--json", env=WRONG)
    assert paid.code == 0, paid.err  # state request and voucher signed by the key agent
    assert paid.json["channel"]["id"] == opened.json["id"]
    assert paid.json["channel"]["amount"] == paid.json["channel"]["price"]


def test_a_socket_open_to_others_or_not_the_users_is_refused_and_never_used(fm, unlocked):
    _address, path = unlocked("ka-perm")
    for spoil, undo, says in (
            (lambda: os.chmod(path, 0o666), lambda: os.chmod(path, 0o600), "open to other users"),
            (lambda: os.chown(path, NOBODY, -1), lambda: os.chown(path, os.getuid(), -1),
             f"belongs to uid {NOBODY}"),
            (lambda: os.chmod(path.parent, 0o755), lambda: os.chmod(path.parent, 0o700),
             "open to other users")):
        spoil()
        try:
            run = call(fm, "ka-perm")
            assert run.code == 1 and says in run.err and "not used" in run.err, run.err
            assert f"remove {path}" in run.err or f"remove {path.parent}" in run.err
        finally:
            undo()
    assert call(fm, "ka-perm", env=WRONG).code == 0  # all set right again: served by the agent


@pytest.mark.root
def test_another_users_process_is_refused_by_the_agent_itself(unlocked):
    """Even when the file modes let it in, the agent answers no other uid (SO_PEERCRED)."""
    _address, path = unlocked("ka-peer")
    reachable = Path(tempfile.mkdtemp()) / "agent.sock"  # a way in that the other user can walk
    reachable.parent.chmod(0o711)
    os.link(path, reachable)
    os.chmod(path, 0o666)
    read_end, write_end = os.pipe()
    try:
        child = os.fork()
        if child == 0:  # the other user
            try:
                os.setuid(NOBODY)
                reply = json.dumps(key_agent_link.exchange(reachable, {"op": "status"}, timeout=5))
            except BaseException as error:  # noqa: BLE001 — reported to the parent
                reply = json.dumps({"child_failed": repr(error)})
            os.write(write_end, reply.encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        reply = json.loads(os.read(read_end, 65536))
    finally:
        os.close(read_end)
        os.chmod(path, 0o600)
        reachable.unlink()
        reachable.parent.rmdir()
    assert reply == {"error": "refused: another user's process"}


def test_a_stale_socket_is_removed_and_the_password_asked_again(fm, unlocked):
    _address, path = unlocked("ka-stale")
    pid = key_agent_link.exchange(path, {"op": "status"})["pid"]
    os.kill(pid, signal.SIGKILL)  # dies without removing its socket
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert path.exists()
    run = call(fm, "ka-stale", env=WRONG)
    assert run.code == 1 and "wrong password for account 'ka-stale'" in run.err
    assert not path.exists()
    assert call(fm, "ka-stale").code == 0  # the right password still works


def test_the_agent_signs_only_for_its_account_and_is_not_taken_for_another(fm, unlocked,
                                                                         market_stack):
    address, path = unlocked("ka-one")
    other = fm("account", "show", "alice", "--json").json["address"]
    reply = key_agent_link.exchange(path, {
        "op": "sign_invocation", "address": other, "job_id": 1, "agent": address,
        "request_hash": "0x" + "00" * 32,
        "domain": {"name": "x", "version": "1", "chain_id": 1337, "verifying_contract": address}})
    assert reply == {"error": f"this key agent holds {address}, not {other!r}"}
    # its socket planted where alice's agent would be: alice's commands refuse it
    home = Home(Path(market_stack.env["FACEMARKET_HOME"]))
    planted = key_agent_link.socket_path(home, other)
    os.link(path, planted)
    try:
        run = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "-y", "--account", "alice")
        assert run.code == 1 and f"holds {address}, not {other}" in run.err, run.err
    finally:
        planted.unlink()


def test_the_agent_answers_hostile_requests_with_an_error_and_keeps_serving(unlocked):
    address, path = unlocked("ka-hostile")
    good = {"address": address, "job_id": 1, "agent": address, "request_hash": "0x" + "11" * 32,
            "domain": {"name": "x", "version": "1", "chain_id": 1337,
                       "verifying_contract": address}}
    for request, says in (
            ([1, 2], "a request is a JSON object"),
            ({"op": "sign_anything", "address": address}, "unknown op 'sign_anything'"),
            ({**good, "op": "sign_invocation", "job_id": -1}, "job_id must be a non-negative"),
            ({**good, "op": "sign_invocation", "job_id": True}, "job_id must be a non-negative"),
            ({**good, "op": "sign_invocation", "domain": "nope"}, "bad domain"),
            ({**good, "op": "sign_invocation", "request_hash": "0xzz"}, "cannot sign"),
            ({**good, "op": "sign_permit"}, "spender must be a hex string"),
            ({**good, "op": "sign_voucher"}, "channel_id must be a non-negative"),
            ({**good, "op": "sign_voucher", "channel_id": 1, "amount": -5},
             "amount must be a non-negative"),
            ({**good, "op": "sign_channel_state_request", "channel_id": 1},
             "issued_at must be a non-negative"),
            ({**good, "op": "sign_voucher", "address": "0x" + "44" * 20, "channel_id": 1,
              "amount": 1}, "this key agent holds"),
            ({"op": "sign_transaction", "address": address, "transaction": [1]},
             "transaction must be an object"),
            ({"op": "sign_transaction", "address": address, "transaction": {"gas": "x"}},
             "cannot sign")):
        reply = key_agent_link.exchange(path, request)
        assert says in reply.get("error", ""), (request, reply)
    for raw, says in ((b"not json\n", "not JSON"), (b"{" * (2 << 20), "request over")):
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(path))
            try:
                connection.sendall(raw)
            except BrokenPipeError:
                pass
            assert says in connection.recv(65536).decode()
    signed = key_agent_link.exchange(path, {**good, "op": "sign_invocation"})
    assert len(bytes.fromhex(signed["signature"][2:])) == 65  # still serving


def test_the_agent_ends_on_its_own_after_the_time_given(fm, new_consumer):
    new_consumer("ka-short")
    run = fm("account", "unlock", "ka-short", "--for", "2s", "--json")
    assert run.code == 0, run.err
    path = Path(run.json["socket"])
    assert "for 2s" in fm("account", "unlock", "ka-short", "--for", "2s").out  # replaces it
    deadline = time.monotonic() + 15
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not path.exists()
    assert "was not unlocked" in fm("account", "lock", "ka-short").out


def test_unlock_refuses_a_wrong_password_a_bad_duration_and_an_unknown_account(fm,
                                                                               new_consumer):
    new_consumer("ka-bad")
    wrong = fm("account", "unlock", "ka-bad", env=WRONG)
    assert wrong.code == 1 and "wrong password for account 'ka-bad'" in wrong.err
    assert "was not unlocked" in fm("account", "lock", "ka-bad").out
    for duration, says in (("0", "must be positive"), ("soon", "is not a duration")):
        run = fm("account", "unlock", "ka-bad", "--for", duration)
        assert run.code == 2 and says in run.err, run.err
    unknown = fm("account", "unlock", "nobody-like-this")
    assert unknown.code == 1 and "unknown account 'nobody-like-this'" in unknown.err


def test_the_agent_signs_a_trial_call_for_its_account(unlocked):
    address, path = unlocked("ka-trial")
    domain = channels_domain(1337, address)
    signature = key_agent_link.AgentSigner(address, path).sign_trial_call(
        domain, b"\x22" * 32, 3, b"\x33" * 32)
    assert recover_trial_call_signer(domain, b"\x22" * 32, 3, b"\x33" * 32, signature) == address


def test_the_agent_signs_a_voucher_and_a_channel_state_request_for_its_account(unlocked):
    address, path = unlocked("ka-channel-sign")
    domain = channels_domain(1337, address)
    signer = key_agent_link.AgentSigner(address, path)
    voucher = signer.sign_voucher(domain, 7, 1234, b"\x33" * 32)
    assert recover_voucher_signer(domain, 7, 1234, b"\x33" * 32, voucher) == address
    state = signer.sign_channel_state_request(domain, 7, 1_700_000_000)
    assert recover_channel_state_request_signer(domain, 7, 1_700_000_000, state) == address
    other = key_agent_link.AgentSigner("0x" + "44" * 20, path)
    with pytest.raises(key_agent_link.KeyAgentError, match="this key agent holds"):
        other.sign_voucher(domain, 7, 1234, b"\x33" * 32)
