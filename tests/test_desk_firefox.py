"""The front desk in Firefox (Debian's headless firefox-esr over Marionette) against a real
market, as tests/test_desk_browser.py does in Chromium with the same steps: the page loads and
runs with no script error, the camera starts on Firefox's fake device, an uploaded photo is boxed
"unknown", the face is enrolled through the page's own controls and another photo of him is
named; a refused camera says what to do and photos still work. Screenshots go to
test-artifacts/desk/firefox-*.png."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.desk_browser_support import (OBAMA, OBAMA_AGAIN, STRANGER, enrol_leftmost, message, message_of_kind, upload,
                                        wait_for)
from tests.fixtures.desk import screenshot
from tests.fixtures.firefox import firefox_missing

MISSING = firefox_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"desk Firefox tests: {MISSING}")


def camera_frames(driver) -> list[dict]:
    """The frames the page has sent from the camera and drawn the answer for."""
    return driver.execute_script("return window.desk.source === 'camera' ? window.desk.timings : []")


def test_camera_then_an_upload_enrolled_through_the_page_and_named(start_desk, desk_consumer, firefox) -> None:
    desk = start_desk(desk_consumer("5"))
    driver = firefox()
    driver.get(desk.url)
    # the fake camera plays, and its frames are taken, sent and answered (no face in its picture)
    frames = wait_for(driver, camera_frames)
    assert (frames[0]["width"], frames[0]["height"]) == (640, 480)
    assert message(driver)[0] != "camera_refused"
    screenshot(driver, "firefox-1-camera")

    assert upload(driver, OBAMA) == [""]
    assert driver.find_element(By.CSS_SELECTOR, "#boxes .face span").text == "unknown"
    enrol_leftmost(driver, "Barack Obama", shot="firefox-2-enrolling")
    assert "Barack Obama (1 photo)" in wait_for(driver, lambda d: d.find_element(By.ID, "people").text)

    assert upload(driver, OBAMA_AGAIN) == ["Barack Obama"]
    assert driver.find_element(By.CSS_SELECTOR, "#boxes .face span").text == "Barack Obama"
    screenshot(driver, "firefox-3-upload-named")
    assert driver.page_errors() == []


def test_a_refused_camera_says_what_to_do_and_photos_still_work(start_desk, desk_consumer, firefox) -> None:
    desk = start_desk(desk_consumer("1"))
    driver = firefox(camera_allowed=False)
    driver.get(desk.url)
    text = message_of_kind(driver, "camera_refused")
    assert "NotAllowedError" in text and "Use a photo" in text
    screenshot(driver, "firefox-4-camera-refused")
    assert upload(driver, STRANGER) == [""]
    assert driver.page_errors() == []

    # the check above sees a script's error when there is one
    driver.execute_script("setTimeout(() => { throw new Error('seen by the test') })")
    assert any("seen by the test" in error for error in wait_for(driver, lambda d: d.page_errors()))
