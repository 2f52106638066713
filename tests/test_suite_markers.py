"""The suite's split: tests that mount a tmpfs are skipped with the reason when not root (not an
error), the Firefox tests likewise without firefox-esr, and `make check` (`-m "not slow"`) leaves
out the market rounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKET_ROUNDS = ["tests/test_market_load.py", "tests/test_market_faults.py"]


def _pytest_after(setup: str, *args: str) -> subprocess.CompletedProcess:
    """pytest in a child that first runs the Python statement `setup`."""
    code = (f"import os, sys, pytest; {setup}; "
            f"sys.exit(pytest.main({['-q', '-rs', '-p', 'no:cacheprovider', *args]!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _pytest_as(uid: int, *args: str) -> subprocess.CompletedProcess:
    """pytest on the market rounds in a child whose os.geteuid() answers `uid` (the mount is never tried)."""
    return _pytest_after(f"os.geteuid = lambda: {uid}", *args)


def _skipped_not_passed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    # no collection or set-up error (a warning's text may contain the word, as jsonrpcserver's does)
    assert not any(line.startswith("ERROR") for line in lines) and "error" not in lines[-1].lower(), result.stdout
    assert " passed" not in result.stdout  # skipped, not counted as passing


def test_the_tmpfs_rounds_are_skipped_with_the_reason_when_not_root():
    result = _pytest_as(1000, *MARKET_ROUNDS)
    _skipped_not_passed(result)
    assert "needs root: mounts a tmpfs" in result.stdout


def test_the_firefox_tests_are_skipped_with_the_reason_without_firefox():
    result = _pytest_after("import tests.fixtures.firefox as f; f.FIREFOX = '/nonexistent/firefox-esr'",
                           "tests/test_desk_firefox.py")
    _skipped_not_passed(result)
    reason = "desk Firefox tests: /nonexistent/firefox-esr missing: `make test` installs Debian's firefox-esr"
    assert result.stdout.count(reason) == 2 and "2 skipped" in result.stdout, result.stdout


def test_make_check_leaves_the_market_rounds_out():
    result = _pytest_as(0, "--collect-only", "-m", "not slow", *MARKET_ROUNDS)
    assert "no tests collected" in result.stdout and "deselected" in result.stdout, result.stdout
