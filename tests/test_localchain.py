"""The local chain: LocalChain starts and stops its own Ganache, keeps a state folder across
restarts, and the CLI's `chain up` leaves it running in the background until `chain down`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from web3 import Web3

from facemarket.cli.main import cli
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.localchain import CHAIN_ID, LocalChain, answers, dev_private_keys, is_chain_process
from tests.fixtures.chain import free_port


def test_chain_answers_with_funded_dev_accounts_and_stops(tmp_path):
    chain = LocalChain(free_port())
    try:
        w3 = Web3(Web3.HTTPProvider(chain.url))
        assert w3.eth.chain_id == CHAIN_ID
        assert [a.lower() for a in w3.eth.accounts] == [
            Web3.to_checksum_address(w3.eth.account.from_key(k).address).lower() for k in dev_private_keys()]
        assert w3.eth.get_balance(w3.eth.accounts[9]) == 10_000 * 10**18
    finally:
        chain.stop()
    assert not answers(chain.url)
    assert chain.process.returncode == 0  # it stopped cleanly on SIGTERM
    assert not chain.log_path.exists()


def test_state_folder_survives_a_restart(tmp_path):
    port = free_port()
    with LocalChain(port, tmp_path / "state") as chain:
        deployment = deploy_all(Web3(Web3.HTTPProvider(chain.url)), chain.accounts[0])
    with LocalChain(port, tmp_path / "state") as chain:
        w3 = Web3(Web3.HTTPProvider(chain.url))
        assert w3.eth.block_number >= 3
        assert len(w3.eth.get_code(deployment.escrow)) > 0


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    """The real `facemarket` command in its own process, as a user runs it."""
    env = {**os.environ, "FACEMARKET_HOME": str(home)}
    facemarket = Path(sys.executable).parent / "facemarket"  # the console script beside the venv's python
    return subprocess.run([str(facemarket), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_chain_up_runs_in_the_background_until_down(tmp_path):
    port = free_port()
    up = run_cli("chain", "up", "--port", str(port), "--json", home=tmp_path)
    assert up.returncode == 0, up.stderr
    record = json.loads(up.stdout)
    try:
        assert answers(f"http://127.0.0.1:{port}")  # the command has exited; the chain has not
        assert is_chain_process(record["pid"])
        status = json.loads(run_cli("chain", "status", "--json", home=tmp_path).stdout)
        assert status["running"] and status["block"] == 0
        again = run_cli("chain", "up", "--port", str(free_port()), home=tmp_path)
        assert again.returncode == 1 and "already runs" in again.stderr
    finally:
        down = run_cli("chain", "down", home=tmp_path)
    assert down.returncode == 0 and "Stopped" in down.stdout
    assert not answers(f"http://127.0.0.1:{port}")
    assert not is_chain_process(record["pid"])
    assert "No local chain" in run_cli("chain", "down", home=tmp_path).stdout


def test_contracts_deploy_writes_the_deployment_file(chain, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEMARKET_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["contracts", "deploy", "--rpc", chain.url, "--from", "1"])
    assert result.exit_code == 0, result.output
    deployment = Deployment.load(tmp_path / "deployments" / f"{CHAIN_ID}.json")
    assert deployment.escrow in result.output and deployment.token in result.output
    w3 = Web3(Web3.HTTPProvider(chain.url))
    assert len(w3.eth.get_code(deployment.escrow)) > 0

    out = tmp_path / "elsewhere.json"
    result = CliRunner().invoke(cli, ["contracts", "deploy", "--rpc", chain.url, "--from", dev_private_keys()[2],
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert Deployment.load(out).escrow == json.loads(result.output)["escrow"]

    bad = CliRunner().invoke(cli, ["contracts", "deploy", "--rpc", chain.url, "--from", "42"])
    assert bad.exit_code == 1 and "neither a 0x private key nor a dev account index" in bad.output
