"""Where the gallery lives: a SQLite file (the default, one host) or a PostgreSQL URL (shared).

Only the standard library here: the CLI and the server tell the two apart without importing
the PostgreSQL driver, which the `pg` extra installs.
"""

from __future__ import annotations

from pathlib import Path

DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: Path | str | None) -> bool:
    return isinstance(location, str) and location.startswith(DATABASE_SCHEMES)


def gallery_location(value: str) -> Path | str:
    """--gallery's value: a database URL as given, anything else a file path."""
    return value if is_database_url(value) else Path(value)
