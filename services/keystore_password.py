"""The one rule for a keystore's password, shared by the agent and the CLI.

Order: the password file when one is named, else the environment variable, else the caller's
prompt. A named file wins because naming it (a `--password-file` option, the agent's
`password_file` key) is the more deliberate act; the environment is the fallback for scripts
and containers. Before this rule the agent read the environment first and the CLI the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_password(file: Path | None, env_var: str, prompt: Callable[[], str] | None = None) -> str | None:
    """The password (its file's first line ending stripped); None when there is no file, no
    `env_var` and no `prompt`. An unreadable file raises its OSError: the caller names the key."""
    if file is not None:
        return Path(file).read_text().rstrip("\r\n")
    if os.environ.get(env_var) is not None:
        return os.environ[env_var]
    return prompt() if prompt is not None else None
