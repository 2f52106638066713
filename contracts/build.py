"""Compiles contracts/*.sol with the pinned solc-js and writes contracts/artifacts/<Name>.json.

`make contracts` runs this module; a test compiles again and compares with the committed
artifacts, so sources and artifacts never drift apart. The settings are fixed here (evmVersion
shanghai: Ganache 7.9 does not run Cancun), so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from facemarket.contracts.artifacts import ARTIFACTS_DIR, CONTRACT_NAMES
from facemarket.contracts.node_tools import node_command

SOURCES_DIR = Path(__file__).resolve().parent
SETTINGS: dict = {
    "evmVersion": "shanghai",
    "optimizer": {"enabled": True, "runs": 1_000_000},
    "viaIR": True,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class CompileError(RuntimeError):
    """solc reported errors; the message lists them."""


def compile_solidity(sources: dict[str, str], settings: dict = SETTINGS) -> tuple[str, dict]:
    """Compiles {file name: source} with the pinned solc-js; returns (compiler version, the
    standard JSON "contracts" output). Imports resolve from ganache/node_modules."""
    request = json.dumps({
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.items()},
        "settings": settings,
    })
    done = subprocess.run(node_command("compile.js"), input=request, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompileError(f"compile.js failed: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    output = result["output"]
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise CompileError("\n".join(errors))
    return result["version"], output["contracts"]


def compile_sources() -> dict[str, dict]:
    """Compiles every contract in CONTRACT_NAMES; returns {name: artifact}."""
    version, contracts = compile_solidity(
        {f"{name}.sol": (SOURCES_DIR / f"{name}.sol").read_text() for name in CONTRACT_NAMES})
    compiler = {"solc": version, **{key: SETTINGS[key] for key in ("evmVersion", "optimizer", "viaIR")}}
    artifacts = {}
    for name in CONTRACT_NAMES:
        contract = contracts[f"{name}.sol"][name]
        artifacts[name] = {
            "contractName": name,
            "abi": contract["abi"],
            "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
            "compiler": compiler,
        }
    return artifacts


def render(artifact: dict) -> str:
    """The exact text of an artifact file (what the drift test compares)."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main() -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for name, artifact in compile_sources().items():
        path = ARTIFACTS_DIR / f"{name}.json"
        path.write_text(render(artifact))
        size = (len(artifact["deployedBytecode"]) - 2) // 2
        print(f"{path.relative_to(SOURCES_DIR.parent)}: {size} bytes deployed", file=sys.stderr)


if __name__ == "__main__":
    main()
