"""Shared pytest set-up: each area keeps its fixtures in a plugin module under tests/fixtures/."""

import os
import tempfile

import pytest

# Tests never touch the user's ~/.facemarket.
os.environ.setdefault("FACEMARKET_HOME", tempfile.mkdtemp(prefix="facemarket-test-home-"))

pytest_plugins: list[str] = [
    "tests.fixtures.chain",
    "tests.fixtures.agent",
    "tests.fixtures.services",
    "tests.fixtures.gallery",
    "tests.fixtures.cli",
    "tests.fixtures.market",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `root` are skipped, saying why, when not root (they mount a tmpfs)."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: mounts a tmpfs for the agent's ledger (tests/market_stack.py); "
                                   "run `make test` as root")
    for item in items:
        if item.get_closest_marker("root"):
            item.add_marker(skip)
