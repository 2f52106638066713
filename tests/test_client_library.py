"""The client is a library: importing it brings no terminal, and it runs where there is none.

The CLI passes the terminal in (a spinner for waits, a prompt for the password); a program that
imports `facemarket.cli.client` gets neither, so it works under cron, in a server or a notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from facemarket.cli.client import Client
from facemarket.cli.errors import ConfigError
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO

TERMINAL_MODULES = ("click", "facemarket.cli.ui", "facemarket.cli.main", "facemarket.cli.commands")


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with no terminal: stdin closed, stdout and stderr piped."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FACEMARKET_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, env={**environment, **(env or {})})


def test_importing_the_client_library_imports_no_terminal_and_no_agent():
    done = run_python("""
        import json, sys
        import facemarket.cli.client
        print(json.dumps(sorted(sys.modules)))
    """)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    terminal = [m for m in loaded if m.startswith(TERMINAL_MODULES)]
    agent = [m for m in loaded if m.startswith("facemarket.agent")]
    assert terminal == [] and agent == [], (terminal, agent)
    assert "facemarket.cli.client" in loaded  # the check looked at the right interpreter


def test_a_paid_call_works_with_no_tty_and_writes_nothing_to_the_terminal(market_stack):
    done = run_python(f"""
        import json, sys
        from facemarket.cli.client import Client
        from pathlib import Path
        from facemarket.cli.home import Home
        assert not sys.stdin.isatty() and not sys.stderr.isatty()
        with Client("demo", "alice", password={market_stack.password!r},
                    home=Home(Path({str(market_stack.home)!r}))) as client:
            print(json.dumps(client.call({SERVICE!r}, "find_face", image={str(PHOTO)!r})))
    """)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["faces"]) == 1
    assert done.stderr == ""   # no spinner, no prompt


def test_without_a_password_the_library_says_how_to_give_one_instead_of_prompting(market_stack):
    done = run_python(f"""
        from facemarket.cli.client import Client
        from facemarket.cli.errors import FacemarketError
        from pathlib import Path
        from facemarket.cli.home import Home
        try:
            Client("demo", "alice", home=Home(Path({str(market_stack.home)!r})))
        except FacemarketError as error:
            print(error)
    """)
    assert done.returncode == 0, done.stderr
    assert "no password for account 'alice'" in done.stdout
    assert "FACEMARKET_PASSWORD" in done.stdout


def asking_client(market_stack, monkeypatch) -> tuple[Client, list[str]]:
    """alice's client with no password stated, and the list of times its password callable was asked."""
    monkeypatch.delenv("FACEMARKET_PASSWORD", raising=False)
    asked: list[str] = []

    def ask() -> str:
        asked.append("asked")
        return market_stack.password

    return Client("demo", "alice", home=Home(market_stack.home), ask_password=ask), asked


def test_the_password_callable_is_asked_only_when_nothing_states_the_password(market_stack,
                                                                             monkeypatch):
    client, asked = asking_client(market_stack, monkeypatch)
    with client:
        assert client.signer.address == market_stack.addresses["alice"]
    assert asked == ["asked"]
    with pytest.raises(ConfigError):
        Client("demo", "alice", home=Home(market_stack.home), ask_password=None)


def test_listing_prepaid_jobs_decrypts_no_key(market_stack, monkeypatch):
    """The desk's status and refill list prepaid jobs on every call: a desk paying from a channel
    must not decrypt the keystore for that (scrypt, and eth-account's import, ~0.7 s of CPU beside
    its first frames)."""
    client, asked = asking_client(market_stack, monkeypatch)
    with client:
        assert isinstance(client.prepaid(), list)
        assert client.address == market_stack.addresses["alice"]
    assert asked == []


def test_waits_are_reported_through_the_progress_callable(market_stack):
    waits: list[str] = []

    @contextlib.contextmanager
    def record(message: str) -> Iterator[None]:
        waits.append(message)
        yield

    with Client("demo", "alice", password=market_stack.password, home=Home(market_stack.home),
                progress=record) as client:
        paid = client.invoke(SERVICE, "find_face", image=PHOTO)
    assert f"calling {SERVICE}.find_face (job {paid.job.id})" in waits
