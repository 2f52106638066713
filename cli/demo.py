"""The one-command demo (`make demo`): a whole paid-call market on this machine, in a minute.

A temporary Ganache, the contracts, a token owner, a consumer (alice) and a provider's agent;
the face services behind the agent; then alice pays for four calls through the CLI —
find_face, find_landmarks, align_face, face_identity on a bundled photo — and the demo shows
each result, each job on the chain, both balances before and after (alice paid exactly the
prices; the agent received them once its claims landed), and writes the annotated pictures to
./demo-output/. Then alice opens a payment channel once and pays three more calls from it at
once with vouchers (no transaction per call, served in parallel); the agent claims them with
its latest voucher (one claim per claim round: one for all three when they fall in one round),
and the books still balance to the token unit (what stays in the channel is alice's).
Everything it started is stopped at the end, also on Ctrl-C or failure.
With --desk (`make desk`) the same market is built and alice opens a channel, but instead of the
calls (`make demo` shows them) her front desk page is served on it until Ctrl-C: a newcomer
reaches the page sooner.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import click

from facemarket.cli.chain_connection import Chain
from facemarket.cli.results import pretty, readable
from facemarket.cli.home import Home
from facemarket.cli.escrow import Escrow
from facemarket.cli.localstack import SERVICE, UPSTREAMS, CommandFailed, LocalStack
from facemarket.cli.session import Session

CALLS = ("find_face", "find_landmarks", "align_face", "face_identity")
OUTPUT = Path("demo-output")
CLAIM_TIMEOUT = 60.0
CHANNEL_DEPOSIT = "1"   # FACE into the demo's channel
CHANNEL_CALLS = 3       # calls paid from it
DESK_CHANNEL_DEPOSIT = "5"  # FACE into the desk's channel: 500 recalls, about 8 minutes of camera


def say(line: str = "") -> None:
    click.echo(line)


def heading(text: str) -> None:
    say()
    say(click.style(f"== {text}", bold=True))


def balances(chain: Chain, stack: LocalStack) -> dict[str, int]:
    """Token units of alice and the agent, read directly (the commands shown print them)."""
    token = chain.contracts.token.functions
    return {who: token.balanceOf(stack.addresses[who]).call() for who in ("alice", "agent")}


def claims(chain: Chain, jobs: list[int]) -> dict[str, list[int]]:
    """The agent's claim transactions of these jobs, from the escrow's JobCompleted events."""
    logs = chain.contracts.escrow.events.JobCompleted().get_logs(from_block=chain.deployment.block)
    by_tx: dict[str, list[int]] = {}
    for log in logs:
        if log["args"]["jobId"] in jobs:
            by_tx.setdefault(log["transactionHash"].to_0x_hex(), []).append(log["args"]["jobId"])
    return by_tx


def open_channel(stack: LocalStack, amount: str) -> dict:
    """alice opens a payment channel to the agent (one transaction); its record."""
    heading("alice opens a payment channel: one deposit (one transaction), then many calls")
    opened = stack.json("channel", "open", "--service", SERVICE, "--amount", amount, "--expires-in", "1d", "-y")
    say(f"$ facemarket channel open --service {SERVICE} --amount {amount} --expires-in 1d -y")
    say(f"channel {opened['id']}: {opened['deposit_text']} to agent {opened['agent']}, signed by a "
        f"session key of its own ({opened['signer']}), expires {opened['expires']}")
    return opened


def channel_calls(stack: LocalStack, chain: Chain, photo: Path) -> tuple[int, int, int]:
    """alice opens a channel once, pays several calls from it (no transaction each), and the
    agent claims what they cost; returns (deposit, served, claimed) in token units."""
    opened = open_channel(stack, CHANNEL_DEPOSIT)
    args = ["call", SERVICE, "find_face", "--image", str(photo), "-y"]
    say(f"$ facemarket {' '.join(args)}   # {CHANNEL_CALLS} at once: calls on one channel are "
        "served in parallel, no lock")
    with ThreadPoolExecutor(CHANNEL_CALLS) as pool:
        records = list(pool.map(lambda _: stack.json(*args), range(CHANNEL_CALLS)))
    served = 0
    for record in sorted(records, key=lambda r: r["channel"]["amount"]):
        paid = record["channel"]
        served += paid["price"]
        say(f"{len(record['result']['faces'])} face(s); paid {chain.token.format(paid['price'])} on "
            f"channel {paid['id']} (voucher for {chain.token.format(paid['amount'])} in all, "
            f"{chain.token.format(paid['room'])} left); no transaction, receipt checked")

    heading("The agent claims from the channel (claimMany with its latest voucher: each claim is "
            "paid the difference to what it claimed before; here a round every few seconds)")
    deadline = time.monotonic() + CLAIM_TIMEOUT
    while (status := stack.json("channel", "status", str(opened["id"])))["claimed"] < served \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    logs = chain.contracts.channels.events.ChannelClaimed().get_logs(from_block=chain.deployment.block)
    for log in logs:
        if log["args"]["channelId"] == opened["id"]:
            say(f"claim transaction {log['transactionHash'].to_0x_hex()}: "
                f"{chain.token.format(log['args']['paid'])} paid to the agent")
    stack.facemarket("channel", "status", str(opened["id"]), show=True)
    return opened["deposit"], served, status["claimed"]


def serve_desk(stack: LocalStack, port: int) -> None:
    """alice's front desk on this market until Ctrl-C (then the market is stopped too)."""
    heading("The front desk (alice pays; Ctrl-C stops the desk and the market)")
    say(f"$ facemarket desk --port {port}")
    try:
        subprocess.run([sys.executable, "-m", "facemarket.cli", "desk", "--port", str(port)],
                       env=stack.env, cwd=stack.workdir, check=False)
    except KeyboardInterrupt:
        pass


def run_demo(workdir: Path, photo: Path, desk_port: int | None = None, upstream: str = "http") -> None:
    """The market, then the paid calls and the books; or with `desk_port` the market and
    alice's channel, then her front desk (the calls were `make demo`'s to show). `upstream`:
    the services behind the agent over HTTP, or in the agent's own process."""
    started = time.monotonic()
    stack = LocalStack(workdir, echo=say, upstream=upstream)
    try:
        build_market(stack)
        if desk_port is None:
            paid_calls(stack, photo, started)
        else:
            open_channel(stack, DESK_CHANNEL_DEPOSIT)
            serve_desk(stack, desk_port)
    finally:
        heading("Shutting down")
        stack.stop()
        say("agent, services and chain stopped.")


def build_market(stack: LocalStack) -> None:
    """Chain, contracts, accounts, alice's tokens; services behind the agent, registered."""
    heading("A local chain, the contracts and the accounts (the provider's face services load "
            "their models meanwhile)")
    if stack.upstream == "http":
        stack.launch_services()
    stack.start_chain()
    stack.import_accounts()
    stack.deploy()
    stack.facemarket("token", "mint", "alice", "10", "--account", "owner", show=True)

    heading("The provider: face services behind its agent, registered on the chain under "
            "the provider's own name")
    stack.init_agent()  # keeps the secret the services started with, for the agent
    if stack.upstream == "http":
        stack.start_services()
    stack.start_agent()  # in-process: the agent loads the services' models itself
    stack.register()
    stack.facemarket("service", "show", SERVICE, show=True)


def paid_calls(stack: LocalStack, photo: Path, started: float) -> None:
    """alice's calls by job and by channel, the agent's claims, and the books checked."""
    heading("Balances before")
    chain = Session(Home(stack.home), "demo").chain
    before = balances(chain, stack)
    stack.facemarket("account", "balance", "alice", show=True)
    stack.facemarket("token", "balance", "agent", show=True)

    output = OUTPUT.resolve()  # the commands run in the work folder
    output.mkdir(exist_ok=True)
    paid = 0
    jobs = []
    for method in CALLS:
        heading(f"alice calls {method} (a new job, paid with a permit in one transaction)")
        out = output / f"{method}.png"
        args = ["call", SERVICE, method, "--image", str(photo), "--annotate", str(out), "-y"]
        say(f"$ facemarket {' '.join(args)}")
        record = stack.json(*args)
        say(pretty(readable(record["result"])))
        jobs.append(record["job"]["id"])
        paid += record["job"]["price"]
        say(f"paid {record['job']['price_text']} to agent {record['agent']} (provider "
            f"{record['provider']}, the one alice chose and pinned) with job "
            f"{record['job']['id']}; receipt signed by the agent and checked; picture: "
            f"{OUTPUT / out.name}")
        stack.facemarket("job", "status", str(record["job"]["id"]), show=True)

    heading("The agent claims its pay (completeJobs: each round claims all it served since)")
    deadline = time.monotonic() + CLAIM_TIMEOUT
    while True:
        states = {j: Escrow(chain).get(j).state.name for j in jobs}
        if all(s == "COMPLETED" for s in states.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    say("jobs: " + ", ".join(f"{j} {s}" for j, s in states.items()))
    for tx_hash, claimed in claims(chain, jobs).items():
        say(f"claim transaction {tx_hash}: completeJobs for job(s) "
            f"{', '.join(map(str, claimed))}")

    deposit, served, claimed = channel_calls(stack, chain, photo)

    heading("Balances after")
    after = balances(chain, stack)
    stack.facemarket("account", "balance", "alice", show=True)
    stack.facemarket("token", "balance", "agent", show=True)
    spent, earned = before["alice"] - after["alice"], after["agent"] - before["agent"]
    token = chain.token
    say(f"alice paid {token.format(spent)}: {token.format(paid)} for {len(jobs)} calls with "
        f"jobs (their prices) and {token.format(deposit)} into the channel, of which the agent "
        f"claimed {token.format(claimed)} for {CHANNEL_CALLS} calls ({token.format(deposit - claimed)} "
        f"stays hers, reclaimable after expiry); the agent received {token.format(earned)}.")
    ok = spent == paid + deposit and earned == paid + claimed and claimed == served
    say(click.style("The books balance." if ok else "The books do NOT balance!",
                    fg="green" if ok else "red", bold=True))
    say(f"Annotated pictures: {', '.join(str(OUTPUT / f'{m}.png') for m in CALLS)}")
    say(f"Done in {time.monotonic() - started:.0f} s.")
    if not ok:
        raise SystemExit(1)
    say("Next, the front desk: `make desk` builds this market again, opens alice's channel and "
        "serves a web page that names people at the camera (docs/desk.md).")


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--photo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Photo to send (default: the bundled city_portrait.jpg).")
@click.option("--keep", is_flag=True, help="Keep the work folder (logs, home) afterwards.")
@click.option("--desk", "desk_port", type=int, is_flag=False, flag_value=8080, default=None,
              help="Afterwards serve alice's front desk on this port (8080 when no value) until Ctrl-C.")
@click.option("--upstream", type=click.Choice(UPSTREAMS), default="http", show_default=True,
              help="Where the agent's calls are served: a services process over HTTP, or the agent's "
                   "own process (one hop fewer a call; the models load after the chain is set up).")
def main(photo: Path | None, keep: bool, desk_port: int | None, upstream: str) -> None:
    """Run the whole paid-call demo on a temporary local chain."""
    signal.signal(signal.SIGTERM, _interrupted)  # `kill`, CI timeouts: clean up as on Ctrl-C
    workdir = Path(tempfile.mkdtemp(prefix="facemarket-demo-"))
    with resources.as_file(resources.files("facemarket.cli") / "demo_data" /
                           "city_portrait.jpg") as bundled:
        try:
            run_demo(workdir, (photo or bundled).resolve(), desk_port, upstream)
        except (CommandFailed, RuntimeError) as error:
            say(click.style(f"Demo failed: {error}", fg="red"))
            sys.exit(1)
        except KeyboardInterrupt:
            say("Interrupted; everything started was stopped.")
            sys.exit(130)
        finally:
            if keep:
                say(f"Work folder kept: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

if __name__ == "__main__":
    main()
