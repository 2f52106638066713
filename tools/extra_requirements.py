"""Print the requirements of pyproject.toml's optional extras named on the command line, one
per line (for `pip install -r`).

Why: `pip install -e '.[test]'` on a venv that already holds the project builds and installs the
project again (its C extension included) only to add the extras; `make test-install` installs
just the extras' own requirements.

    .venv/bin/python tools/extra_requirements.py test
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(extras: list[str]) -> list[str]:
    """Each named extra's requirements, in order; an unknown extra is an error, not nothing."""
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    unknown = [extra for extra in extras if extra not in declared]
    if unknown:
        raise SystemExit(f"extra_requirements: no extra {', '.join(unknown)} in {PYPROJECT.name}")
    return [requirement for extra in extras for requirement in declared[extra]]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
