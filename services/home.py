"""FACEMARKET_HOME, the folder where every part keeps what outlives one process.

One resolver for the CLI, the agent, the services' gallery and the deployment files, so they
all agree: an unset or empty FACEMARKET_HOME means ~/.facemarket, and `~` is expanded.
Only the standard library is imported, so any part can use it without pulling others in.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "FACEMARKET_HOME"
DEFAULT_HOME = "~/.facemarket"


def facemarket_home() -> Path:
    """$FACEMARKET_HOME, else ~/.facemarket (an empty value counts as unset)."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()
