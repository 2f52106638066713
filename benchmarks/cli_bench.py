"""How fast the `facemarket` command answers, beside what it wraps, in one run on a local market.

Prints the median and range (over --runs interleaved rounds) of:
  python     `python -c pass`: the interpreter's own start, the floor of any command
  --help     `facemarket --help` (goal: <= 0.3 s)
  direct     find_face straight to the face service, from a warm Python process (the baseline)
  call       `facemarket call demo/face-services find_face --image … --pay job` with a job
             prepaid, as a new process each time, the account's keystore encrypted with standard
             scrypt (geth's n=262144: what `account create` makes), two ways: the account unlocked
             in its key agent (`facemarket account unlock`; goal: <= direct + 0.5 s), and an
             account never unlocked, whose keystore each call decrypts
  channel    the same call with `--pay channel` on an open payment channel, by the account never
             unlocked: a voucher signed with the channel's session key, the keystore not decrypted
and the CPU time (user + system) of each `facemarket` process, which load from elsewhere inflates
far less than the wall time; and, to say where the call's time goes, the import of what `call`
loads, the import of web3 it no longer needs, and one decryption of the keystore.

    .venv/bin/python benchmarks/cli_bench.py [--runs 10]

Everything runs on this machine (Ganache, agent, services, the CLI): other load shows up as
noise, so compare the figures of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import requests
from eth_account import Account
from web3 import Web3

from facemarket.cli.client import encode_image
from facemarket.cli.localstack import SERVICE, LocalStack
from facemarket.contracts.localchain import dev_private_keys
from facemarket.services.auth import credentials, default_secret_file, read_secret

METHOD = "find_face"
FACEMARKET = str(Path(sys.executable).with_name("facemarket"))


def timed(once: Callable[[], object]) -> float:
    start = time.perf_counter()
    once()
    return time.perf_counter() - start


def children_cpu() -> float:
    """User + system seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_timed(once: Callable[[], object]) -> float:
    start = children_cpu()
    once()
    return children_cpu() - start


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def fund_with_eth(url: str, address: str) -> None:
    """Gas for the consumer, from Ganache's dev account 5."""
    w3 = Web3(Web3.HTTPProvider(url))
    funder = Account.from_key(dev_private_keys()[5])
    tx = {"to": address, "value": 10**18, "gas": 21000, "gasPrice": w3.eth.gas_price,
          "nonce": w3.eth.get_transaction_count(funder.address, "pending"), "chainId": w3.eth.chain_id}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))


def summary(name: str, values: list[float], note: str = "") -> str:
    return (f"  {name:<54} {statistics.median(values) * 1000:7.0f} ms  "
            f"(range {min(values) * 1000:.0f}-{max(values) * 1000:.0f}){note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    photo = resources.files("facemarket.cli") / "demo_data" / "city_portrait.jpg"
    with tempfile.TemporaryDirectory(prefix="facemarket-cli-bench-") as workdir, \
            LocalStack(Path(workdir)) as stack:
        env = {**os.environ, **stack.env}
        accounts = {"unlocked": "bench", "locked": "bench-locked"}
        for name in accounts.values():
            address = json.loads(run([FACEMARKET, "account", "create", name, "--json"], env))["address"]
            fund_with_eth(stack.chain.url, address)
            run([FACEMARKET, "token", "mint", name, "1000", "--account", "owner"], env)
            run([FACEMARKET, "job", "open", "--service", SERVICE, "--method", METHOD,
                 "--count", str(2 * args.runs + 2), "-y", "--account", name], env)
        run([FACEMARKET, "channel", "open", "--service", SERVICE, "--amount", "5",
             "--expires-in", "1d", "-y", "--account", accounts["locked"]], env)
        run([FACEMARKET, "account", "unlock", accounts["unlocked"], "--for", "1h"], env)
        http = requests.Session()
        headers = {"Content-Type": "application/json",
                   **credentials(read_secret(default_secret_file(stack.home)))}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": METHOD,
                           "params": {"image": encode_image(photo.read_bytes())}}).encode()
        keystore = json.loads(next((stack.home / "keystores").glob("bench*")).read_text())

        def direct() -> None:
            reply = http.post(stack.services_url, data=body, headers=headers).json()
            assert len(reply["result"]["faces"]) == 1, reply

        def call(account: str, pay: str = "job") -> None:
            out = run([FACEMARKET, "call", SERVICE, METHOD, "--image", str(photo), "--pay", pay,
                       "--json", "--account", account], env)
            assert len(json.loads(out)["result"]["faces"]) == 1

        kinds: dict[str, Callable[[], object]] = {
            "python": lambda: run([sys.executable, "-c", "pass"], env),
            "help": lambda: run([FACEMARKET, "--help"], env),
            "imports": lambda: run([sys.executable, "-c", "import facemarket.cli.commands.call"], env),
            "web3": lambda: run([sys.executable, "-c", "import web3"], env),
            "decrypt": lambda: Account.decrypt(keystore, stack.password),
            "direct": direct,
            "call": lambda: call(accounts["unlocked"]),
            "locked": lambda: call(accounts["locked"]),
            "channel": lambda: call(accounts["locked"], "channel"),
        }
        try:
            direct()
            call(accounts["unlocked"])
            call(accounts["locked"])
            call(accounts["locked"], "channel")
            # interleaved, so that load from elsewhere hits each kind alike
            rows = [{name: timed(once) for name, once in kinds.items()} for _ in range(args.runs)]
            cpu = {name: [cpu_timed(kinds[name]) for _ in range(args.runs)]
                   for name in ("python", "help", "call", "locked", "channel")}
        finally:
            run([FACEMARKET, "account", "lock", accounts["unlocked"]], env)

    t = {name: [row[name] for row in rows] for name in kinds}
    m = {name: statistics.median(values) for name, values in t.items()}
    over = statistics.median(row["call"] - row["direct"] for row in rows)
    over_locked = statistics.median(row["locked"] - row["direct"] for row in rows)
    print(f"`facemarket` against a direct call: medians of {args.runs} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(summary("python -c pass (interpreter start)", t["python"]))
    print(summary("facemarket --help", t["help"],
                  f"  goal <= 300 ms: {'met' if m['help'] <= 0.3 else 'NOT met'}"))
    print(summary(f"{METHOD} direct to the service", t["direct"]))
    print(summary(f"facemarket call … {METHOD} (prepaid job, unlocked)", t["call"],
                  f"  +{over * 1000:.0f} ms over direct, goal <= +500 ms: "
                  f"{'met' if over <= 0.5 else 'NOT met'}"))
    print(summary(f"facemarket call … {METHOD} (prepaid job, decrypting)", t["locked"],
                  f"  +{over_locked * 1000:.0f} ms over direct"))
    channel_over = statistics.median(row["channel"] - row["direct"] for row in rows)
    print(summary(f"facemarket call … {METHOD} (open channel, never unlocked)", t["channel"],
                  f"  +{channel_over * 1000:.0f} ms over direct"))
    print("  CPU time (user + system) of the process, less sensitive to the load:")
    for name, what in (("python", "python -c pass"), ("help", "facemarket --help"),
                       ("call", "facemarket call (unlocked)"), ("locked", "facemarket call (decrypting)"),
                       ("channel", "facemarket call (channel)")):
        print(summary(f"  {what}", cpu[name]))
    print("  where the call's time goes:")
    print(summary("  import what `call` loads (new process)", t["imports"]))
    print(summary("  import web3 (new process; `call` no longer loads it)", t["web3"]))
    print(summary("  decrypt the keystore (standard scrypt)", t["decrypt"]))


if __name__ == "__main__":
    main()
