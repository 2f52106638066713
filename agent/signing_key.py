"""The agent's signing key, read from an encrypted keystore (geth / MetaMask JSON format).

Why here and not in a global: the key object is handed only to what signs (receipts, claim
transactions); its repr never shows the key, so a stray log line cannot leak it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from facemarket.agent.config import ConfigError


@dataclass(frozen=True)
class AgentKey:
    """The agent's address and private key; `repr` shows the address only."""

    address: str
    private_key: bytes = field(repr=False)


def load_key(keystore: Path, password: str) -> AgentKey:
    """Decrypt the keystore; a wrong password or file is a `ConfigError` naming the key."""
    try:
        encrypted = json.loads(Path(keystore).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"keystore: cannot read {keystore} as a keystore JSON ({error})") from None
    try:
        private_key = bytes(Account.decrypt(encrypted, password))
    except ValueError:
        raise ConfigError(f"keystore: cannot decrypt {keystore}: wrong password (password_file or "
                          "FACEMARKET_AGENT_PASSWORD)") from None
    return AgentKey(address=Account.from_key(private_key).address, private_key=private_key)

