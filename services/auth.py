"""Who may name a consumer to the services: the agent, proven by a secret it shares with them.

Why a shared secret and not a Unix socket: it works unchanged when the services run on another
host or in another container than the agent, and tests and benchmarks can still call the
services over TCP. `facemarket agent init` writes 32 random bytes (hex) to a 0600 file; the
agent sends them as `Authorization: Bearer <hex>` on every call and the services compare them in
constant time. Services started without a secret serve only callers that name no consumer.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from pathlib import Path

AUTH_HEADER = "Authorization"
CONSUMER_HEADER = "X-Facemarket-Consumer"
# How long the agent waits for an answer (seconds): the services do not start work queued past it.
TIMEOUT_HEADER = "X-Facemarket-Timeout"
SECRET_FILE_ENV = "FACEMARKET_SERVICES_SECRET_FILE"
_SCHEME = "Bearer "
_SECRET_BYTES = 32


class SecretError(Exception):
    """The secret file cannot be used, or the services would listen open to the network."""


def secrets_folder(home: Path) -> Path:
    """Where `facemarket agent init` keeps what opens things (0700), apart from the keystores."""
    return home / "secrets"


def default_secret_file(home: Path) -> Path:
    """<FACEMARKET_HOME>/secrets/services.secret, where `facemarket agent init` writes it."""
    return secrets_folder(home) / "services.secret"


def write_private(path: Path, text: str) -> bool:
    """Create `path` (0600, its folder 0700) holding `text`; False, untouched, when it exists:
    a secret or password already shared with a running process must not change under it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return True


def new_secret() -> str:
    return secrets.token_hex(_SECRET_BYTES)


def read_secret(path: Path) -> bytes:
    """The secret in `path`; SecretError (one line) when it is unreadable, short or readable by others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as error:
        raise SecretError(f"cannot read the services' secret {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"the services' secret {path} is readable by other users: `chmod 600 {path}`")
    if len(text) < 2 * _SECRET_BYTES:
        raise SecretError(f"the services' secret {path} holds {len(text)} characters, expected at least "
                          f"{2 * _SECRET_BYTES} (as `facemarket agent init` writes)")
    return text.encode()


def credentials(secret: bytes) -> dict[str, str]:
    """The header the agent adds to each call."""
    return {AUTH_HEADER: _SCHEME + secret.decode()}


def authorized(header: str | None, secret: bytes) -> bool:
    """True when `header` carries `secret`; constant time, so timing reveals nothing of it.
    aiohttp hands over invalid UTF-8 as surrogates: they are compared, not raised on."""
    return hmac.compare_digest((header or "").encode("utf-8", "surrogateescape"), (_SCHEME + secret.decode()).encode())


def check_bind(host: str, secret: bytes | None) -> None:
    """Refuse to listen beyond loopback without a secret: anyone who reaches the port would
    use the services for free."""
    if secret is None and not _loopback(host):
        raise SecretError(f"refusing to listen on {host} without a secret: anyone reaching it would use the "
                          f"services for free; listen on 127.0.0.1, or give --secret-file (written by "
                          f"`facemarket agent init`)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
