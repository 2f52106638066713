"""The key agent: a background process holding one decrypted key for a while, as ssh-agent
and gpg-agent do, so that commands sign without decrypting the keystore (scrypt: half a second
on a quiet machine, seconds on a busy one) each time.

Started by `facemarket account unlock` (cli/key_agent_link.py), which decrypts the keystore and
hands the key over a pipe (never an argument or the environment):

    python -m facemarket.cli.key_agent SOCKET SECONDS   < key

It serves one JSON request per connection, one line each way, on a Unix socket that only its
user can open (mode 0600 in a 0700 folder, and the peer's uid checked on every connection), and
signs only what the commands sign: an EIP-712 Invocation or TrialCall, an EIP-2612 Permit, a
transaction, each for its own address. It ends after SECONDS, on `lock`, or on SIGTERM, removing its socket.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from facemarket.cli.key_agent_link import MAX_LINE_BYTES, read_line
from facemarket.contracts.typed_messages import (Domain, sign_channel_state_request, sign_invocation,
                                                 sign_permit, sign_trial_call, sign_voucher)

CONNECTION_TIMEOUT = 5.0  # seconds a client may take to send its request
CHECK_INTERVAL = 10.0     # seconds between checks that the socket file is still ours
_PR_SET_DUMPABLE = 4


class Refused(ValueError):
    """A request the agent does not serve; the message goes back to the client."""


def _domain(fields: Any) -> Domain:
    try:
        return Domain(str(fields["name"]), str(fields["version"]), int(fields["chain_id"]),
                      str(fields["verifying_contract"]))
    except (KeyError, TypeError, ValueError):
        raise Refused("bad domain: give name, version, chain_id, verifying_contract") from None


def _int(request: dict, name: str) -> int:
    value = request.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refused(f"{name} must be a non-negative integer")
    return value


def _hex(request: dict, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str):
        raise Refused(f"{name} must be a hex string")
    return value


# op -> the EIP-712 signing function and the fields it takes after the key and the domain
EIP712_OPS = {
    "sign_invocation": (sign_invocation, (("job_id", _int), ("agent", _hex), ("request_hash", _hex))),
    "sign_trial_call": (sign_trial_call, (("grant_hash", _hex), ("call_index", _int),
                                          ("request_hash", _hex))),
    "sign_voucher": (sign_voucher, (("channel_id", _int), ("amount", _int), ("request_hash", _hex))),
    "sign_channel_state_request": (sign_channel_state_request, (("channel_id", _int),
                                                                ("issued_at", _int))),
}
SIGNING_OPS = (*EIP712_OPS, "sign_permit", "sign_transaction")


def answer(request: Any, account: LocalAccount, expires_at: float) -> dict:
    """The reply to one request (an `error` member when it is refused)."""
    if not isinstance(request, dict):
        raise Refused("a request is a JSON object")
    op = request.get("op")
    if op == "status":
        return {"address": account.address, "expires_at": int(expires_at), "pid": os.getpid()}
    if op == "lock":
        return {"locked": account.address}
    if op not in SIGNING_OPS:
        raise Refused(f"unknown op {op!r}: status, lock, {', '.join(SIGNING_OPS)}")
    if str(request.get("address", "")).lower() != account.address.lower():
        raise Refused(f"this key agent holds {account.address}, not {request.get('address')!r}")
    try:
        if op in EIP712_OPS:
            sign, fields = EIP712_OPS[op]
            domain = _domain(request.get("domain"))
            signature = sign(account.key, domain, *(parse(request, name) for name, parse in fields))
            return {"signature": "0x" + signature.hex()}
        if op == "sign_permit":
            v, r, s = sign_permit(account.key, _domain(request.get("domain")), account.address,
                                  _hex(request, "spender"), _int(request, "value"),
                                  _int(request, "nonce"), _int(request, "deadline"))
            return {"v": v, "r": "0x" + r.hex(), "s": "0x" + s.hex()}
        transaction = request.get("transaction")
        if not isinstance(transaction, dict):
            raise Refused("transaction must be an object")
        signed = account.sign_transaction(transaction)
        return {"raw_transaction": "0x" + bytes(signed.raw_transaction).hex(),
                "hash": "0x" + bytes(signed.hash).hex()}
    except Refused:
        raise
    except (TypeError, ValueError, KeyError) as error:  # malformed fields, from the signers
        raise Refused(f"cannot sign: {error}") from None


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED: pid, uid, gid)."""
    creds = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def serve_one(connection: socket.socket, account: LocalAccount, expires_at: float) -> bool:
    """Answer one connection; True when it asked the agent to lock (end)."""
    connection.settimeout(CONNECTION_TIMEOUT)
    lock = False
    try:
        if peer_uid(connection) != os.getuid():
            reply: dict = {"error": "refused: another user's process"}
        else:
            try:
                line = read_line(connection, MAX_LINE_BYTES)
                try:
                    request = json.loads(line or b"null")
                except ValueError:
                    raise Refused("not JSON") from None
                reply = answer(request, account, expires_at)
                lock = "locked" in reply
            except ValueError as error:  # Refused, or a request too long
                reply = {"error": str(error)}
        connection.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:  # the client went away or stalled: nothing to answer
        pass
    finally:
        connection.close()
    return lock


def listen(path: Path) -> socket.socket:
    """The agent's socket at `path`, mode 0600 from its creation (umask), replacing a stale one."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    server.listen(16)
    return server


def _still_ours(path: Path, inode: int) -> bool:
    """Our socket file is still there (a removed home or a newer agent's socket ends us)."""
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def run(path: Path, seconds: float, key: str) -> None:
    """Serve until the time is up, a `lock` request, or SIGTERM; then remove the socket."""
    expires_at = time.time() + seconds
    account = Account.from_key(key)
    server = listen(path)
    inode = path.stat().st_ino
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # unlock's pipe closes: it stops waiting
    try:
        while (left := expires_at - time.time()) > 0 and _still_ours(path, inode):
            server.settimeout(min(left, CHECK_INTERVAL))
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            if serve_one(connection, account, expires_at):
                break
    finally:
        server.close()
        if _still_ours(path, inode):  # not a newer agent's
            path.unlink()


def main() -> None:
    path, seconds = Path(sys.argv[1]), float(sys.argv[2])
    key = sys.stdin.readline().strip()
    try:  # like ssh-agent: no core dump, no ptrace by other processes of the user
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        run(path, seconds, key)
    except (OSError, ValueError) as error:
        print(f"error: {error}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
