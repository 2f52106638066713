"""Files only their owner may read: the agent's ledger (consumers' signatures and answers) and
the gallery (face vectors).

Why create the file before SQLite opens it: SQLite creates a missing database with the
process's umask (often 0644, readable by every local user), and its -wal and -shm files copy
the database file's mode, so a database created 0600 keeps all three private. A file left by
an older version is narrowed to 0600 too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_folder(path: Path) -> None:
    """Create `path` (and missing parents) 0700; an existing folder is left as it is (it may be shared)."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Make sure `path` exists with mode 0600, creating its folder 0700 when missing."""
    private_folder(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(companion.stat().st_mode) & 0o077:
                companion.chmod(PRIVATE_FILE)
        except FileNotFoundError:
            continue
