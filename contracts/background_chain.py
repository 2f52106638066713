"""The local chain left running in the background by `facemarket chain up`.

`up` starts a LocalChain whose process outlives the command and records it in
$FACEMARKET_HOME/chain/chain.json (pid, url, state folder, log file, block time); `down` stops exactly that
process (checked to be our chain.js, so a recycled pid is never signalled) and removes the record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from facemarket.contracts.localchain import ChainError, LocalChain, answers, is_chain_process, rpc_call, stop_process


def _record_file(home: Path) -> Path:
    return home / "chain" / "chain.json"


def _read_record(home: Path) -> dict | None:
    try:
        return json.loads(_record_file(home).read_text())
    except FileNotFoundError:
        return None


def start(home: Path, port: int = 8545, state_dir: str | os.PathLike | None = None, block_time: float = 0) -> dict:
    """Starts the chain in the background (a block every `block_time` seconds; 0: one per
    transaction at once); raises ChainError when one is already recorded as running."""
    running = status(home)
    if running is not None and running["running"]:
        raise ChainError(f"the local chain already runs at {running['url']} (pid {running['pid']}): "
                         "`facemarket chain down` first")
    record_file = _record_file(home)
    record_file.parent.mkdir(parents=True, exist_ok=True)
    log_path = record_file.parent / "ganache.log"
    chain = LocalChain(port, Path(state_dir).resolve() if state_dir is not None else None, log_path=log_path,
                       block_time=block_time)
    record = {"pid": chain.pid, "url": chain.url, "port": port,
              "state_dir": str(chain.state_dir) if chain.state_dir else None, "log": str(log_path),
              "block_time": block_time}
    record_file.write_text(json.dumps(record, indent=2) + "\n")
    return record


def stop(home: Path) -> dict | None:
    """Stops the recorded chain; returns its record (with "stopped": whether it was still running), or None."""
    record = _read_record(home)
    if record is None:
        return None
    record["stopped"] = stop_process(record["pid"])
    _record_file(home).unlink(missing_ok=True)
    return record


def status(home: Path) -> dict | None:
    """The recorded chain with "running" (our process is alive) and, when it answers, "block"; or None."""
    record = _read_record(home)
    if record is None:
        return None
    record["running"] = is_chain_process(record["pid"])
    record["block"] = int(rpc_call(record["url"], "eth_blockNumber"), 16) if answers(record["url"]) else None
    return record
