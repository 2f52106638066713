"""The front desk in a real browser (headless Chromium from Debian, driven by Selenium) against a
real market: the fake camera plays a video made from the bundled photos; a person is enrolled
through the page's own controls and named on later frames while a stranger stays "unknown"; an
upload works the same; each refusal shows what to do. Screenshots of each state are saved
(test-artifacts/desk/), and the time from a frame captured to its names drawn is printed."""

from __future__ import annotations

import base64
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import requests
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By

from facemarket.cli.localstack import SERVICE, free_port
from facemarket.services.auth import credentials, default_secret_file, read_secret
from tests.desk_browser_support import (BIDEN, HEIGHT, OBAMA, OBAMA_AGAIN, STRANGER, WIDTH, camera_video,
                                        click_leftmost_face, enrol_leftmost, faces, fitted, message_of_kind, upload,
                                        wait_for)
from tests.fixtures.desk import screenshot

TIMED_FRAMES = 12
PAIRED_CALLS = 20  # desk API and services in turn, for the paid overhead


def two_people(path: Path) -> Path:
    """Obama on the left half, Biden on the right."""
    return camera_video(np.hstack([fitted(OBAMA, WIDTH // 2, HEIGHT), fitted(BIDEN, WIDTH // 2, HEIGHT)]), path)


def test_enrol_through_the_page_then_named_and_a_stranger_unknown(start_desk, desk_consumer, chrome, tmp_path) -> None:
    desk = start_desk(desk_consumer("5"))
    driver = chrome(camera=two_people(tmp_path / "two.y4m"))
    driver.get(desk.url)
    assert wait_for(driver, lambda d: faces(d) if len(faces(d)) == 2 else None) == sorted(faces(driver))
    assert [name for _, name in faces(driver)] == ["", ""]
    screenshot(driver, "1-unknown-faces")

    enrol_leftmost(driver, "Barack Obama")
    # later frames name him, and the other person stays unknown
    wait_for(driver, lambda d: [n for _, n in faces(d)] == ["Barack Obama", ""])
    assert [label.text for label in driver.find_elements(By.CSS_SELECTOR, "#boxes .face span")] in (
        ["Barack Obama", "unknown"], ["unknown", "Barack Obama"])
    arrivals = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#arrivals li"))
    assert "Barack Obama" in arrivals[0].text
    assert arrivals[0].find_element(By.TAG_NAME, "img").get_attribute("src").startswith("data:image/jpeg")
    assert "Barack Obama (1 photo)" in wait_for(driver, lambda d: d.find_element(By.ID, "people").text)
    wait_for(driver, lambda d: int(d.find_element(By.ID, "calls").text) >= 3)
    assert driver.find_element(By.ID, "spent").text not in ("", "…")
    screenshot(driver, "3-named")

    # an upload works the same: another photo of him is named, a stranger is not
    assert upload(driver, OBAMA_AGAIN) == ["Barack Obama"]
    screenshot(driver, "4-upload-named")
    assert upload(driver, STRANGER) == [""]

    # a second photo of a person adds a face to them
    assert upload(driver, OBAMA_AGAIN) == ["Barack Obama"]
    click_leftmost_face(driver)
    assert driver.find_element(By.ID, "enrol-name").get_attribute("value") == "Barack Obama"
    driver.find_element(By.ID, "enrol-save").click()
    wait_for(driver, lambda d: "Barack Obama (2 photos)" in d.find_element(By.ID, "people").text)

    # forgetting asks first, then the gallery no longer names him
    forget = driver.find_element(By.CSS_SELECTOR, "#people li[data-name='Barack Obama'] .forget")
    forget.click()
    assert "Really forget Barack Obama?" in forget.text
    screenshot(driver, "5-forget-confirm")
    forget.click()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#people li") == [])
    driver.find_element(By.ID, "now").click()
    time.sleep(0.5)
    wait_for(driver, lambda d: [n for _, n in faces(d)] == [""] and not d.execute_script("return window.desk.busy"))
    screenshot(driver, "6-forgotten")


def test_frame_to_names_drawn_is_timed(start_desk, chrome, tmp_path, in_process_market, desk_figures) -> None:
    """Goal: median <= 0.3 s for a 640x480 frame with one face, the desk paying from a channel; the
    paid overhead inside it <= 2%. On a market whose agent serves the face services in its own
    process (what a one-machine market can run: `make desk DESK_UPSTREAM=in-process`), so that the
    paid call and the unpaid one each reach the face services over one HTTP hop from their caller
    (the desk; this test): the payment adds no hop of its own. Printed: the page's time; taking
    turns, the frame through the desk's API (paid) and the same recall straight to a services
    process on the same gallery (unpaid), their paired difference; and the payment's own steps,
    timed where they run (the desk's client; the agent's /metrics)."""
    stack = in_process_market
    frame = fitted(OBAMA, WIDTH, HEIGHT)
    opened = stack.facemarket("channel", "open", "--service", SERVICE, "--amount", "5", "-y")
    assert opened.returncode == 0, opened.stderr
    desk = start_desk("alice", stack=stack)
    driver = chrome(camera=camera_video(frame, tmp_path / "one.y4m"))
    driver.get(desk.url)
    enrol_leftmost(driver, "Barack Obama")
    wait_for(driver, lambda d: [n for _, n in faces(d)] == ["Barack Obama"])
    driver.execute_script("window.desk.timings = []")
    timings = wait_for(driver, lambda d: (t := d.execute_script("return window.desk.timings")) and len(t) >= TIMED_FRAMES and t,
                       seconds=TIMED_FRAMES * 10)
    assert all(t["width"] == WIDTH and t["height"] == HEIGHT and t["faces"] == 1 for t in timings)
    page = statistics.median(t["seconds"] for t in timings)
    paid = statistics.median(t["desk"] for t in timings)

    driver.execute_script("clearInterval(window.desk.cameraTimer)")  # the page stops sending
    wait_for(driver, lambda d: not d.execute_script("return window.desk.busy"))
    assert requests.get(stack.agent_url + "health", timeout=10).json()["service"]["in_process"] is True
    # the services as their own process, started now: it opens the gallery file the agent's services
    # wrote the enrolment to, so the same person is found both ways; called as an agent calls them
    stack.start_services()
    jpeg = base64.b64encode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()).decode()
    as_agent = {**credentials(read_secret(default_secret_file(stack.home))),
                "X-Facemarket-Consumer": desk.api("GET", "/api/status").json()["account"]}
    # taking turns so both see the same machine (the browser still playing the camera)
    photo = base64.b64decode(jpeg)
    direct, through_desk, steps = [], [], []
    for number in range(PAIRED_CALLS):
        started = time.perf_counter()
        answer = requests.post(stack.services_url, timeout=60, headers=as_agent, json={
            "jsonrpc": "2.0", "id": number, "method": "recall", "params": {"image": jpeg}})
        direct.append(time.perf_counter() - started)
        assert answer.json()["result"]["faces"][0]["name"] == "Barack Obama", answer.text
        before = agent_seconds(stack)
        started = time.perf_counter()
        answer = desk.api("POST", "/api/recall", data=photo, headers={"Content-Type": "image/jpeg"})
        through_desk.append(time.perf_counter() - started)
        assert answer.json()["faces"][0]["name"] == "Barack Obama", answer.text
        agent = {name: spent - before[name] for name, spent in agent_seconds(stack).items()}
        steps.append({"desk": answer.json()["payment_seconds"], "handler": answer.json()["desk_seconds"], **agent})
    baseline, desk_paid = statistics.median(direct), statistics.median(through_desk)
    added = statistics.median(paid - unpaid for paid, unpaid in zip(through_desk, direct))
    step = {name: statistics.median(s[name] for s in steps) for name in steps[0]}
    payment = step["desk"] + step["gate"] + step["record"]
    desk_figures.append(
        f"frame captured -> names drawn (640x480, one face, {len(timings)} frames; the agent serving the face services "
        f"in its process): median {page:.3f} s (goal <= 0.3 s), of which the desk's recall paid from a channel "
        f"{paid:.3f} s. Taking turns, {PAIRED_CALLS} each: the frame through the desk's API, paid, {desk_paid:.3f} s; "
        f"straight to a services process on the same gallery, unpaid, {baseline:.3f} s -> desk + payment add "
        f"{1000 * added:+.1f} ms a call (median of the pairs: the desk's own web handling included; "
        f"{100 * added / desk_paid:.1f}% of the paid call). The payment's own steps (medians per call): the desk's "
        f"client {1000 * step['desk']:.2f} ms (amount made durable, keccak, voucher signed, receipt checked), the "
        f"agent's gate {1000 * step['gate']:.2f} ms and record {1000 * step['record']:.2f} ms (answer recorded "
        f"durably, receipt signed) = {1000 * payment:.2f} ms, {100 * payment / desk_paid:.1f}% of the paid call "
        f"(goal <= 2%). The rest of the paid call: the services' work in the agent {1000 * step['upstream']:.1f} ms; "
        f"in the desk's handler beside payment and services {1000 * (step['handler'] - payment - step['upstream']):.1f} ms "
        f"(the client's lookups, base64 and JSON, the hop into the payer's thread, the POST to the agent and its "
        f"HTTP serving); outside the handler {1000 * (desk_paid - step['handler']):.1f} ms (the HTTP exchange with "
        f"the desk, the photo read, the answer's JSON; medians, so the parts need not add up); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def agent_seconds(stack) -> dict[str, float]:
    """The agent's time so far in its gate, its upstream (the services) and its record, from /metrics."""
    text = requests.get(stack.agent_url + "metrics", timeout=10).text
    sums = {f"facemarket_agent_{name}_seconds_sum": name for name in ("gate", "upstream", "record")}
    return {sums[sample.name]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name in sums}


def test_each_refusal_says_what_to_do(start_desk, desk_consumer, chrome, tmp_path, market_stack) -> None:
    camera = camera_video(fitted(OBAMA, WIDTH, HEIGHT), tmp_path / "one.y4m")

    desk = start_desk(desk_consumer("1"))
    driver = chrome(camera=camera, camera_allowed=False)
    driver.get(desk.url)
    text = message_of_kind(driver, "camera_refused")
    assert "camera" in text and "Use a photo" in text
    screenshot(driver, "7-camera-refused")

    broke = start_desk(desk_consumer(None))
    driver = chrome(camera=camera)
    driver.get(broke.url)
    text = message_of_kind(driver, "no_money")
    assert "run out" in text and "token" in text
    screenshot(driver, "8-no-money")

    # a service whose agent does not answer (its endpoint is a port nobody listens on)
    market_stack.facemarket("service", "register", "demo/face-down", "--endpoint",
                            f"http://127.0.0.1:{free_port()}/", "--price", "0.01", "--spec-hash", "00" * 32,
                            "--account", "agent")
    down = start_desk(desk_consumer("1"), service="demo/face-down")
    driver = chrome(camera=camera)
    driver.get(down.url)
    text = message_of_kind(driver, "agent_down")
    assert "agent" in text and "What to do" in text
    screenshot(driver, "9-agent-down")
