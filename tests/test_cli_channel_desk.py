"""The front desk pays from a payment channel when its account has one open to the agent: its
calls are served on the channel (the agent counts them) and it prepays no jobs; a recall's answer
says how long the desk's client spent on paying it."""

from __future__ import annotations

from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO


def test_the_desk_pays_from_an_open_channel_and_prepays_no_jobs(fm, start_desk, desk_consumer) -> None:
    account = desk_consumer("2")
    opened = fm("channel", "open", "--service", SERVICE, "--amount", "1", "-y", "--account", account, "--json")
    assert opened.code == 0, opened.err
    desk = start_desk(account)
    answer = desk.api("POST", "/api/recall", data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    status = desk.api("GET", "/api/status").json()
    assert status["calls_today"] == 2 and status["prepaid"] == 0 and status["prepay_problem"] is None
    channel = fm("channel", "status", str(opened.json["id"]), "--account", account, "--json").json
    assert channel["served"] > 0 and channel["served"] == channel["signed"]
    assert fm("job", "list", "--all", "--account", account, "--json").json == []

    box = answer.json()["faces"][0]["box"]
    query = "&".join(f"{key}={box[key]}" for key in ("x", "y", "w", "h"))
    enrolled = desk.api("POST", f"/api/enrol?name=Adele&{query}", data=PHOTO.read_bytes(),
                        headers={"Content-Type": "image/jpeg"})
    assert enrolled.status_code == 200, enrolled.text
    named = desk.api("POST", "/api/recall", data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}).json()
    assert named["faces"][0]["name"] == "Adele"
    assert 0 < named["payment_seconds"] < named["desk_seconds"]  # the payment's steps, inside the desk's time
