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
    "tests.fixtures.desk",
    "tests.fixtures.firefox",
    "tests.fixtures.postgres",
    "tests.fixtures.hardhat",
]


# `make check` (`-m "not slow"`): the modules that need nothing but the session's Ganache, one
# face services process and in-process agents, under two minutes on 2 cores together. Every
# other module is marked `slow` here (its own agent processes, market stacks, long rounds), so a
# new module is slow until it is shown to be fast enough to join this list.
FAST_MODULES = {
    "test_agent_config_ledger", "test_agent_config_schema", "test_agent_in_process", "test_agent_paid_calls",
    "test_channel_ledger", "test_cli_channel_store", "test_kept_http",
    "test_deployment_and_bind", "test_docs", "test_escrow", "test_escrow_reentrancy",
    "test_gallery_index", "test_ledger_lifecycle", "test_ledger_migrations", "test_models", "test_packaging",
    "test_registry",
    "test_services_errors", "test_services_protocol", "test_suite_markers", "test_typed_messages", "test_view_calls",
    "test_trial_calls", "test_trial_ledger", "test_payment_required",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test outside FAST_MODULES `slow`; skips, saying why, tests marked `root` when
    not root (they mount a tmpfs)."""
    for item in items:
        if item.module is not None and item.module.__name__.rpartition(".")[2] not in FAST_MODULES:
            item.add_marker(pytest.mark.slow)
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: mounts a tmpfs for the agent's ledger (tests/market_stack.py); "
                                   "run `make test` as root")
    for item in items:
        if item.get_closest_marker("root"):
            item.add_marker(skip)
