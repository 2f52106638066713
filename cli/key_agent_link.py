"""The commands' side of the key agent (cli/key_agent.py): find the one holding an account,
check that it is safe to talk to, sign through it, start it (`account unlock`) and end it
(`account lock`).

Its socket is FACEMARKET_HOME/keyagent/<the address's first 16 hex digits>.sock. Before a
command sends it anything, the folder and the socket must be this user's and closed to everyone
else (0700 and 0600): one that is not is refused with what to do, never used, since whoever can
plant a socket there would see what the command signs. A socket nobody listens on any more (the
agent was killed) is removed and the command asks for the password as without an agent. This
module imports no chain library: a prepaid call through the agent stays light.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facemarket.cli.errors import ConfigError, FacemarketError
from facemarket.cli.home import Home
from facemarket.contracts.typed_messages import (Domain, InvalidSignature,
                                                 recover_channel_state_request_signer,
                                                 recover_invocation_signer,
                                                 recover_trial_call_signer, recover_voucher_signer)

START_TIMEOUT = 30.0   # seconds for a new agent to load and listen
REQUEST_TIMEOUT = 30.0
LOCK_WAIT = 5.0        # seconds `lock` waits for the ended agent's socket to go
MAX_SOCKET_PATH = 107  # bytes in sockaddr_un.sun_path, with its terminating NUL
MAX_LINE_BYTES = 1 << 20  # a request or a reply


class KeyAgentError(FacemarketError):
    """The key agent refused a request, or could not be reached or started."""


def agents_folder(home: Home) -> Path:
    return home.root / "keyagent"


def socket_path(home: Home, address: str) -> Path:
    return agents_folder(home) / f"{address.lower().removeprefix('0x')[:16]}.sock"


def _check_private(path: Path, what: str, kind: int) -> None:
    """Refuse a folder or socket that is not ours alone (another user could read or plant it)."""
    info = path.lstat()
    fix = f"remove {path} and unlock again (`facemarket account unlock`)"
    if stat.S_IFMT(info.st_mode) != kind:
        raise ConfigError(f"the key agent's {what} {path} is not a {what}: not used", fix)
    if info.st_uid != os.getuid():
        raise ConfigError(f"the key agent's {what} {path} belongs to uid {info.st_uid}, not to "
                          f"you (uid {os.getuid()}): not used", fix)
    if info.st_mode & 0o077:
        raise ConfigError(f"the key agent's {what} {path} is open to other users (mode "
                          f"{stat.S_IMODE(info.st_mode):o}): not used", fix)


def read_line(connection: socket.socket, limit: int) -> bytes:
    """One newline-ended message (the agent's protocol, both ways); ValueError past `limit`."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError(f"request over {limit} bytes")
    return data


def exchange(path: Path, request: dict, timeout: float = REQUEST_TIMEOUT) -> dict:
    """One request to the agent at `path` and its reply; OSError when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(path))
        try:
            connection.sendall(json.dumps(request).encode() + b"\n")
        except BrokenPipeError:  # it answered (a refusal) before reading: the answer is there
            pass
        data = read_line(connection, MAX_LINE_BYTES)
    try:
        reply = json.loads(data)
    except ValueError:
        raise KeyAgentError(f"the key agent at {path} answered no JSON",
                            "lock the account and unlock it again") from None
    if not isinstance(reply, dict):
        raise KeyAgentError(f"the key agent at {path} answered {reply!r}")
    return reply


def running(home: Home, address: str) -> dict | None:
    """The status of the agent holding `address` ({address, expires_at, pid}), or None when
    none runs (a stale socket is removed); ConfigError when its socket is unsafe."""
    path = socket_path(home, address)
    if not path.exists() and not path.is_symlink():
        return None
    _check_private(agents_folder(home), "folder", stat.S_IFDIR)
    _check_private(path, "socket", stat.S_IFSOCK)
    try:
        status = exchange(path, {"op": "status"}, timeout=5.0)
    except (ConnectionRefusedError, FileNotFoundError):  # its agent died: a stale socket
        path.unlink(missing_ok=True)
        return None
    except OSError as error:
        raise KeyAgentError(f"the key agent at {path} does not answer ({error})",
                            "`facemarket account lock` ends it") from None
    if str(status.get("address", "")).lower() != address.lower():
        raise KeyAgentError(f"the key agent at {path} holds {status.get('address')}, not "
                            f"{address}", f"remove {path} and unlock again")
    return status


@dataclass(frozen=True)
class AgentSigner:
    """Signs for `address` through its running key agent (cli/signers.Signer)."""

    address: str
    path: Path

    def _ask(self, op: str, **fields: Any) -> dict:
        try:
            reply = exchange(self.path, {"op": op, "address": self.address, **fields})
        except OSError as error:
            raise KeyAgentError(f"the key agent of {self.address} went away ({error})",
                                "run the command again (it asks for the password), or "
                                "`facemarket account unlock`") from None
        if "error" in reply:
            raise KeyAgentError(f"the key agent refused to sign: {reply['error']}")
        return reply

    def sign_invocation(self, domain: Domain, job_id: int, agent: str,
                        request_hash: bytes) -> bytes:
        reply = self._ask("sign_invocation", domain=_domain_json(domain), job_id=job_id,
                          agent=agent, request_hash="0x" + request_hash.hex())
        return self._checked(reply, lambda signature: recover_invocation_signer(
            domain, job_id, agent, request_hash, signature))

    def sign_voucher(self, domain: Domain, channel_id: int, amount: int,
                     request_hash: bytes) -> bytes:
        reply = self._ask("sign_voucher", domain=_domain_json(domain), channel_id=channel_id,
                          amount=amount, request_hash="0x" + bytes(request_hash).hex())
        return self._checked(reply, lambda signature: recover_voucher_signer(
            domain, channel_id, amount, request_hash, signature))

    def sign_channel_state_request(self, domain: Domain, channel_id: int, issued_at: int) -> bytes:
        reply = self._ask("sign_channel_state_request", domain=_domain_json(domain),
                          channel_id=channel_id, issued_at=issued_at)
        return self._checked(reply, lambda signature: recover_channel_state_request_signer(
            domain, channel_id, issued_at, signature))

    def _checked(self, reply: dict, recover: Callable[[bytes], str]) -> bytes:
        """The reply's signature, refused unless it recovers to this account (a key agent that
        holds another key, or answers garbage, signs nothing in our name)."""
        try:
            signature = bytes.fromhex(str(reply.get("signature", "")).removeprefix("0x"))
            signer = recover(signature)
        except (ValueError, InvalidSignature):
            signer = None
        if signer != self.address:
            raise KeyAgentError(f"the key agent's signature is not {self.address}'s",
                                "lock the account and unlock it again")
        return signature

    def sign_permit(self, token_domain: Domain, spender: str, value: int, nonce: int,
                    deadline: int) -> tuple[int, bytes, bytes]:
        reply = self._ask("sign_permit", domain=_domain_json(token_domain), spender=spender,
                          value=value, nonce=nonce, deadline=deadline)
        return int(reply["v"]), bytes.fromhex(reply["r"][2:]), bytes.fromhex(reply["s"][2:])

    def sign_trial_call(self, domain: Domain, grant_hash: bytes, call_index: int,
                        request_hash: bytes) -> bytes:
        reply = self._ask("sign_trial_call", domain=_domain_json(domain),
                          grant_hash="0x" + bytes(grant_hash).hex(), call_index=call_index,
                          request_hash="0x" + bytes(request_hash).hex())
        return self._checked(reply, lambda signature: recover_trial_call_signer(
            domain, grant_hash, call_index, request_hash, signature))

    def sign_transaction(self, transaction: dict) -> Any:
        fields = {k: "0x" + bytes(v).hex() if isinstance(v, bytes | bytearray) else v
                  for k, v in transaction.items()}
        reply = self._ask("sign_transaction", transaction=fields)
        return SignedByAgent(bytes.fromhex(reply["raw_transaction"][2:]),
                             bytes.fromhex(reply["hash"][2:]))


@dataclass(frozen=True)
class SignedByAgent:
    """A transaction the agent signed, as contracts/transactions.Sender sends it."""

    raw_transaction: bytes
    hash: bytes


def _domain_json(domain: Domain) -> dict:
    return {"name": domain.name, "version": domain.version, "chain_id": domain.chain_id,
            "verifying_contract": domain.verifying_contract}


def signer_for(home: Home, address: str) -> AgentSigner | None:
    """The running agent's signer for `address`, or None (then the keystore is decrypted)."""
    if running(home, address) is None:
        return None
    return AgentSigner(address, socket_path(home, address))


def lock(home: Home, address: str) -> bool:
    """End the agent holding `address`; False when none ran. An unsafe socket is only removed
    (nothing is sent to it)."""
    path = socket_path(home, address)
    try:
        status = running(home, address)
    except FacemarketError:
        path.unlink(missing_ok=True)
        return True
    if status is None:
        return False
    exchange(path, {"op": "lock"}, timeout=5.0)
    # The agent answers, then removes its socket as it ends: "ended" is said once it is gone.
    deadline = time.monotonic() + LOCK_WAIT
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def start(home: Home, address: str, key: bytes, seconds: int) -> dict:
    """Start an agent holding `key` (the account `address`) for `seconds`, replacing one that
    holds it already; returns its status once it answers."""
    lock(home, address)
    folder, path = agents_folder(home), socket_path(home, address)
    if len(os.fsencode(path)) >= MAX_SOCKET_PATH:
        raise ConfigError(f"the key agent's socket path {path} is longer than a Unix socket "
                          f"allows ({MAX_SOCKET_PATH - 1} bytes)",
                          "use a FACEMARKET_HOME with a shorter path")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(folder, "folder", stat.S_IFDIR)
    agent = subprocess.Popen([sys.executable, "-m", "facemarket.cli.key_agent", str(path),
                              str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    assert agent.stdin is not None and agent.stdout is not None
    agent.stdin.write(bytes(key).hex().encode() + b"\n")
    agent.stdin.close()
    ready, _, _ = select.select([agent.stdout], [], [], START_TIMEOUT)
    line = agent.stdout.readline().decode().strip() if ready else ""
    agent.stdout.close()
    if line != "ready":
        agent.kill()
        agent.wait()
        raise KeyAgentError(f"the key agent did not start ({line or 'no answer'})")
    status = running(home, address)
    if status is None:
        raise KeyAgentError("the key agent started but does not answer")
    return status
