"""What the desk's browser tests do on the page, shared by Chromium (Selenium,
tests/test_desk_browser.py) and Firefox (Marionette, tests/test_desk_firefox.py): both drivers
answer the same calls (get, execute_script, find_element(s), elements' click/send_keys/text/rect),
so each step is written once and run in both browsers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.desk import screenshot

WIDTH, HEIGHT = 640, 480  # the fake camera's picture
DATA = Path(__file__).resolve().parent / "data"
OBAMA = DATA / "face_recognition" / "train" / "obama" / "obama.jpg"
OBAMA_AGAIN = DATA / "face_recognition" / "test" / "obama1.jpg"
BIDEN = DATA / "face_recognition" / "train" / "biden" / "biden2.jpg"
STRANGER = DATA / "face-services" / "adele_2016.jpg"


def faces(driver) -> list[tuple[float, str]]:
    """The boxes drawn: (left edge on screen, name or "" for unknown), left to right (read in one
    script: the page redraws them every second)."""
    return sorted(tuple(f) for f in driver.execute_script(
        "return [...document.querySelectorAll('#boxes .face')].map(b => [b.offsetLeft, b.dataset.name])"))


def wait_for(driver, what: Callable[[Any], Any], seconds: float = 120) -> Any:
    """what(driver) once it is truthy (an element replaced under a check by the page's redraw,
    in either browser, is checked again)."""
    from marionette_driver.errors import StaleElementException  # not at collection: 0.2 s, warnings

    return WebDriverWait(driver, seconds, poll_frequency=0.2,
                         ignored_exceptions=[StaleElementReferenceException, StaleElementException]).until(what)


def click_leftmost_face(driver) -> None:
    """A real click on the left face (retried when a new frame replaced it under the pointer)."""
    def click(d) -> bool:
        boxes = d.find_elements(By.CSS_SELECTOR, "#boxes .face")
        if not boxes:
            return False
        min(boxes, key=lambda b: b.rect["x"]).click()
        return d.find_element(By.ID, "enrol").is_displayed()
    wait_for(driver, click)


def message(driver) -> tuple[str, str]:
    """The message box's kind and text, or ("", "") when it is hidden."""
    box = driver.find_element(By.ID, "message")
    return (box.get_attribute("data-kind") or "", box.text) if box.is_displayed() else ("", "")


def message_of_kind(driver, kind: str) -> str:
    """The message's text once the page shows one of that kind."""
    return wait_for(driver, lambda d: text if (shown := message(d))[0] == kind and (text := shown[1]) else None)


def upload(driver, photo: Path) -> list[str]:
    """Choose the photo with "Use a photo…" and wait for that photo's boxes (known by its size):
    their names ("" for unknown), left to right."""
    height, width = cv2.imread(str(photo)).shape[:2]
    driver.find_element(By.ID, "upload").send_keys(str(photo))
    recognised = "const f = window.desk.lastFrame; return f && [f.canvas.width, f.canvas.height]"
    wait_for(driver, lambda d: d.find_element(By.ID, "photo").is_displayed()
             and d.execute_script(recognised) == [width, height] and faces(d))
    return [name for _, name in faces(driver)]


def enrol_leftmost(driver, name: str, shot: str = "2-enrolling") -> None:
    """Click the left face and type its name, as the receptionist does (the filled-in form is
    saved as screenshot `shot`)."""
    click_leftmost_face(driver)
    driver.find_element(By.ID, "enrol-name").send_keys(name)
    screenshot(driver, shot)
    driver.find_element(By.ID, "enrol-save").click()


def fitted(path: Path, width: int, height: int) -> np.ndarray:
    """The photo scaled to fit width x height, centred on grey."""
    image = cv2.imread(str(path))
    scale = min(width / image.shape[1], height / image.shape[0])
    small = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def camera_video(frame: np.ndarray, path: Path, frames: int = 10) -> Path:
    """A y4m Chromium's fake camera loops: the same 640x480 picture (notes/browser-tests.md)."""
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + i420)
    return path
