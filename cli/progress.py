"""How the client library reports a wait without knowing about terminals.

The library (client, chain, session) takes a `Progress`: called with what it waits for, it
returns a context manager held for the wait. The CLI passes its spinner (cli/ui.py); a program
importing the library gets `silent`, so the library never writes to a terminal or needs one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

Progress = Callable[[str], AbstractContextManager[None]]


def silent(_message: str) -> AbstractContextManager[None]:
    """No report: the default for a program that imports the client library."""
    return contextlib.nullcontext()
