"""Shared pytest set-up: each area keeps its fixtures in a plugin module under tests/fixtures/."""

import os
import tempfile

# Tests never touch the user's ~/.facemarket.
os.environ.setdefault("FACEMARKET_HOME", tempfile.mkdtemp(prefix="facemarket-test-home-"))

pytest_plugins: list[str] = [
    "tests.fixtures.chain",
    "tests.fixtures.agent",
    "tests.fixtures.services",
    "tests.fixtures.gallery",
    "tests.fixtures.cli",
    "tests.fixtures.market",
    "tests.fixtures.desk",
]
