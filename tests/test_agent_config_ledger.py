"""The agent's config (TOML + environment, one-line errors, `agent init`) and its SQLite ledger
(atomic reservation across connections, in one statement only for a call meeting its terms,
leases, the claim states), without a chain."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from facemarket.agent.config import ConfigError, load_config
from facemarket.agent.ledger import CallTerms, SeenJob, SqliteLedger, State

FACEMARKET = Path(sys.executable).with_name("facemarket")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "deployment.json").write_text("{}")
    (tmp_path / "keystore.json").write_text("{}")
    return tmp_path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def base(files: Path) -> str:
    return f'deployment = "{files / "deployment.json"}"\nkeystore = "{files / "keystore.json"}"\n'


def test_config_reads_toml_and_environment_overrides_it(files):
    path = write(files, base(files) + 'price = 5\nchain_url = "http://a:1"\n[prices]\nfind_face = 9\n')
    config = load_config(path, env={"FACEMARKET_AGENT_CHAIN_URL": "http://b:2", "FACEMARKET_AGENT_PRICES": "ping=1"})
    assert config.chain_url == "http://b:2"
    assert config.price_of("ping") == 1 and config.price_of("find_face") == 5  # env replaced the table
    assert load_config(path, env={}).price_of("find_face") == 9
    variant = load_config(path, env={"FACEMARKET_AGENT_PRICES": "find_face=9,find_face:algorithm=dlib_cnn=900"})
    assert variant.price_of("find_face", {"algorithm": "dlib_cnn"}) == 900
    assert variant.price_of("find_face", {"algorithm": "dlib_hog"}) == variant.price_of("find_face") == 9


@pytest.mark.parametrize("text, env, key", [
    ("", {}, "deployment"),                                     # required key missing
    ('price = -1\n', {}, "price"),
    ('listen_port = "eighty"\n', {}, "listen_port"),
    ('colour = "blue"\n', {}, "colour"),                          # unknown key
    ('', {"FACEMARKET_AGENT_CONFIRMATIONS": "many"}, "confirmations"),
    ('chain_url = "localhost:8545"\n', {}, "chain_url"),
    ('[prices]\n"find_face:dlib_cnn" = 5\n', {}, "prices"),
    ('upstream_timeout = 100\nlease_seconds = 50\n', {}, "lease_seconds"),
])
def test_a_bad_value_is_one_line_naming_the_key(files, text, env, key):
    prefix = "" if key == "deployment" else base(files)
    with pytest.raises(ConfigError) as error:
        load_config(write(files, prefix + text), env=env)
    message = str(error.value)
    assert message.startswith(f"{key}:") and "\n" not in message


def test_a_missing_file_is_named(files):
    with pytest.raises(ConfigError, match=r"^keystore: file not found"):
        load_config(write(files, f'deployment = "{files / "deployment.json"}"\nkeystore = "/nonexistent"\n'), env={})


def test_agent_init_writes_a_complete_config_that_loads(tmp_path, files):
    path = tmp_path / "written.toml"
    result = subprocess.run([str(FACEMARKET), "agent", "init", "--config", str(path),
                             "--deployment", str(files / "deployment.json"), "--keystore", str(files / "keystore.json")],
                            capture_output=True, text=True,
                            env={**os.environ, "FACEMARKET_HOME": str(tmp_path), "FACEMARKET_AGENT_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    config = load_config(path, env={})
    for field in ("chain_url", "upstream_url", "price", "expiry_margin", "confirmations", "claim_batch_size",
                  "claim_interval", "ledger", "listen_host", "listen_port", "max_concurrency"):
        assert f"\n{field} = " in text, field
    assert config.price_of("face_identity") == 2_000_000
    again = subprocess.run([str(FACEMARKET), "agent", "init", "--config", str(path)], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr


def test_agent_run_with_a_bad_config_exits_with_one_line(files):
    path = write(files, base(files) + "max_concurrency = 0\n")
    result = subprocess.run([str(FACEMARKET), "agent", "run", "--config", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: max_concurrency: must be greater than 0, got 0"]


# ---------------------------------------------------------------------------------- ledger
@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "ledger.sqlite"
    store = SqliteLedger(path)
    store.add_seen([SeenJob(n, "0xC0", 10**27, int(time.time()) + 3600, 7) for n in range(1, 201)])
    store.close()
    return path


def test_reservation_is_won_once_by_racing_connections(ledger_path):
    """Eight threads, each with its own connection, race for 200 jobs: each job is won exactly once."""
    wins: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def race(n: int) -> None:
        store = SqliteLedger(ledger_path)
        start.wait()
        wins[n] = [job for job in range(1, 201) if store.reserve(job, bytes([n]) * 32, 60)]
        store.close()

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = sorted(job for batch in wins for job in batch)
    assert won == list(range(1, 201))


def test_an_expired_lease_frees_the_job_and_the_late_holder_cannot_record(ledger_path):
    store = SqliteLedger(ledger_path)
    assert store.reserve(1, b"a" * 32, 0.05)
    assert not store.reserve(1, b"b" * 32, 60)
    time.sleep(0.1)  # the first holder "crashed": its lease runs out
    assert store.reserve(1, b"b" * 32, 60)
    assert not store.mark_served(1, b"a" * 32, b"sig", b"late answer")
    assert store.mark_served(1, b"b" * 32, b"sig", b"answer")
    assert store.get(1).state == State.SERVED and store.get(1).response == b"answer"


def test_a_job_first_seen_on_the_chain_is_recorded_and_reserved_in_one_trip(ledger_path):
    store = SqliteLedger(ledger_path)
    fresh = SeenJob(900, "0xC1", 5, int(time.time()) + 3600, 8)
    assert store.reserve_checked(900, b"h" * 32, 60, lambda job: None) == (None, None)
    job, answer = store.reserve_checked(900, b"h" * 32, 60, lambda job: None, fresh)
    assert answer is None and (job.consumer, job.price, job.block) == ("0xC1", 5, 8)
    assert store.get(900).state == State.RESERVED
    # seen again (the follower's event came meanwhile): the job keeps its state and reservation
    job, answer = store.reserve_checked(900, b"i" * 32, 60, lambda job: job.state, fresh)
    assert answer == State.RESERVED and store.get(900).request_hash == b"h" * 32


def test_a_call_meeting_its_terms_is_reserved_in_one_statement_and_no_other_is(ledger_path):
    reserves_only_calls_meeting_their_terms(SqliteLedger(ledger_path))


def reserves_only_calls_meeting_their_terms(store: SqliteLedger) -> None:
    """The gate's one-statement reservation (`CallTerms`), on either engine (test_pg_ledger.py):
    a call that misses one term (another signer, a price one unit or one digit over the job's,
    an expiry at the margin) never reserves the job, it takes the long way (the read and the
    caller's check, which here answers, so nothing is reserved); a call meeting them, with the
    job's own price or one with fewer digits, reserves it without the check; the next one meets
    the reservation on the long way."""
    expiry = int(time.time()) + 3600
    store.add_seen([SeenJob(job_id, "0xC1", 10**24 + 7, expiry, 8) for job_id in (901, 902)])
    fits = CallTerms("0xC1", 10**24 + 7, expiry - 1)
    for missing in (replace(fits, consumer="0xC2"), replace(fits, price=10**24 + 8),
                    replace(fits, price=10**25), replace(fits, min_expiry=expiry)):
        job, answer = store.reserve_checked(901, b"h" * 32, 60, lambda job: job.state, terms=missing)
        assert answer == job.state == store.get(901).state == State.SEEN

    def never(job):
        raise AssertionError("a call meeting its terms is reserved without the read and the check")

    for job_id, terms in ((901, fits), (902, replace(fits, price=10**23))):
        job, answer = store.reserve_checked(job_id, b"h" * 32, 60, never, terms=terms)
        assert answer is None and job == store.get(job_id) and job.state == State.RESERVED
    job, answer = store.reserve_checked(901, b"i" * 32, 60, lambda job: bytes(job.request_hash), terms=fits)
    assert answer == b"h" * 32 and job.state == State.RESERVED


def test_claim_states_and_reorg_forgetting(ledger_path):
    store = SqliteLedger(ledger_path)
    for job in (1, 2):
        store.reserve(job, b"h" * 32, 60)
        store.mark_served(job, b"h" * 32, b"s", b"r")
    assert [j.job_id for j in store.claimable(10, 3)] == [1, 2]
    store.mark_claiming([1, 2], "0xabc")
    assert store.claimable(10, 3) == []
    store.back_to_served([2], count_attempt=True)
    store.mark_claimed([(1, 40)])
    assert (store.get(1).state, store.get(2).state, store.get(2).attempts) == (State.CLAIMED, State.SERVED, 1)
    store.add_seen([SeenJob(500, "0xC0", 1, 1, 50)])
    assert store.rewind(49) == (0, 1)  # only the unused job seen after block 49; the claim at 40 stays
    assert store.get(500) is None and store.get(3).state == State.SEEN
