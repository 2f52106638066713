"""The consumer's journey through the CLI on a real chain, agent and face services:
account create → mint → job open → call → COMPLETED on chain → balances; prepaid jobs used
first; refund of an expired, unused job."""

from __future__ import annotations

import time

import cv2

from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO


def wait_for_state(fm, job_id: int, state: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = fm("job", "status", str(job_id), "--json").json
        if record["state"] == state or time.monotonic() > deadline:
            return record
        time.sleep(0.3)


def token_units(fm, who: str) -> int:
    return fm("token", "balance", who, "--json").json["balance_units"]


def test_consumer_journey_pays_exactly_the_price_and_the_agent_is_paid_once(fm, new_consumer, market_stack):
    bob = new_consumer("bob")
    assert fm("token", "mint", "bob", "1", "--account", "owner").code == 0
    assert token_units(fm, "bob") == 10**8
    market_stack.wait_claims_settled()  # earlier tests' claims must not land in our balance window
    agent_before = token_units(fm, "agent")

    opened = fm("job", "open", "--service", SERVICE, "-y", "--account", "bob", "--json")
    assert opened.code == 0, opened.err
    [job] = opened.json
    assert job["state"] == "FUNDED" and job["consumer"] == bob

    called = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "--job", str(job["id"]),
                "-y", "--account", "bob", "--json")
    assert called.code == 0, called.err
    assert len(called.json["result"]["faces"]) == 1
    assert called.json["job"]["id"] == job["id"] and called.json["receipt"].startswith("0x")

    assert wait_for_state(fm, job["id"], "COMPLETED")["state"] == "COMPLETED"
    assert token_units(fm, "bob") == 10**8 - job["price"]
    assert token_units(fm, "agent") == agent_before + job["price"]
    listed = fm("job", "list", "--all", "--account", "bob", "--json").json
    assert [(j["id"], j["state"]) for j in listed] == [(job["id"], "COMPLETED")]


def test_call_uses_prepaid_jobs_first_then_opens_one(fm, new_consumer):
    new_consumer("carol", tokens="1")
    prepaid = fm("job", "open", "--service", SERVICE, "--count", "2", "-y", "--account", "carol",
                 "--json").json
    ids = sorted(j["id"] for j in prepaid)
    assert ids[1] == ids[0] + 1
    used = []
    for _ in range(3):
        run = fm("call", SERVICE, "ping", "-y", "--account", "carol", "--json")
        assert run.code == 0, run.err
        assert run.json["result"] == "pong"
        used.append((run.json["job"]["id"], run.json["opened_job"]))
    assert sorted(used[:2]) == [(ids[0], False), (ids[1], False)]
    assert used[2][0] > ids[1] and used[2][1] is True


def test_refund_of_an_expired_unused_job(fm, new_consumer, chain_rpc):
    new_consumer("dave", tokens="1")
    # longer than the agent's expiry margin (300 s): `job open` refuses a job it could not use
    [job] = fm("job", "open", "--service", SERVICE, "--expires-in", "400", "-y", "--account", "dave",
               "--json").json
    early = fm("job", "refund", str(job["id"]), "--account", "dave")
    assert early.code == 1
    assert "has not expired yet" in early.err and "Traceback" not in early.err
    assert fm("job", "list", "--account", "dave", "--json").json[0]["prepaid"] is True

    chain_rpc("evm_increaseTime", [460])
    chain_rpc("evm_mine")
    refunded = fm("job", "refund", str(job["id"]), "--account", "dave", "--json")
    assert refunded.code == 0, refunded.err
    assert refunded.json["state"] == "REFUNDED"
    assert token_units(fm, "dave") == 10**8
    assert fm("job", "list", "--account", "dave", "--json").json == []


def test_annotate_writes_a_png_of_the_photos_size(fm, tmp_path):
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    for method in ("find_landmarks", "align_face"):
        out = tmp_path / f"{method}.png"
        run = fm("call", SERVICE, method, "--image", str(PHOTO), "--annotate", str(out), "-y",
                 "--json")
        assert run.code == 0, run.err
        assert out.read_bytes().startswith(b"\x89PNG")
        picture = cv2.imread(str(out))
        assert picture.shape[:2] == (height, width)
        assert run.json["annotated"] == {"path": str(out), "width": width, "height": height}
        # something was drawn: the picture differs from the photo
        assert (cv2.absdiff(picture, cv2.imread(str(PHOTO))) > 40).any()
