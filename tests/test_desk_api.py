"""The desk's HTTP API against hostile callers: it pays for every call, so it must not be a free
paying proxy for another web page, a rebinding DNS name, or anybody on the network without its
token; and what it refuses costs nothing."""

from __future__ import annotations

import socket

import pytest
import requests

from facemarket.cli.localstack import free_port
from tests.fixtures.cli import PHOTO


@pytest.fixture
def desk(start_desk, desk_consumer):
    return start_desk(desk_consumer("1"))


def calls_today(desk) -> int:
    return desk.api("GET", "/api/status").json()["calls_today"]


def test_the_desk_pays_for_its_own_page_and_prepays_jobs(desk) -> None:
    status = desk.api("GET", "/api/status").json()
    assert status["prepaid"] >= 5 and status["calls_today"] == 0
    answer = desk.api("POST", "/api/recall", data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    assert [f["name"] for f in answer.json()["faces"]] == [None]
    assert calls_today(desk) == 2  # a recall the empty gallery refused (paid), then find_face
    again = desk.api("POST", "/api/recall", data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert again.json()["faces"] == answer.json()["faces"]
    assert calls_today(desk) == 3  # known empty now: find_face alone


def test_another_origin_cannot_pay_or_read(desk) -> None:
    for method, path in (("POST", "/api/recall"), ("GET", "/api/status"), ("GET", "/api/gallery")):
        answer = desk.api(method, path, data=PHOTO.read_bytes(), headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403, (path, answer.text)
        assert "Access-Control-Allow-Origin" not in answer.headers
    # a form post or fetch with no Origin at all (a non-browser or a stripped header) pays nothing,
    # nor does a GET another site makes with an <img> (no Origin, Sec-Fetch-Site: cross-site)
    assert requests.post(desk.origin + "/api/recall", data=PHOTO.read_bytes(), timeout=30).status_code == 403
    for fetch_site in ({}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        assert requests.get(desk.origin + "/api/gallery", headers=fetch_site, timeout=30).status_code == 403
    # the desk's own page fetching a GET: the browser sends no Origin, but says same-origin
    assert requests.get(desk.origin + "/api/status", headers={"Sec-Fetch-Site": "same-origin"},
                        timeout=30).status_code == 200
    # a CORS preflight gets no permission
    preflight = requests.options(desk.origin + "/api/recall", timeout=30, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (403, 405) and "Access-Control-Allow-Origin" not in preflight.headers
    assert calls_today(desk) == 0


def test_a_rebinding_dns_name_is_not_answered(desk) -> None:
    host = {"Host": "evil.example:" + desk.origin.rsplit(":", 1)[1]}
    for path in ("/", "/api/status"):
        answer = requests.get(desk.origin + path, headers={**host, "Origin": "http://" + host["Host"]}, timeout=30)
        assert answer.status_code == 421, answer.text
    assert requests.post(desk.origin + "/api/recall", data=PHOTO.read_bytes(), timeout=30,
                         headers={**host, "Origin": "http://" + host["Host"]}).status_code == 421


def test_what_is_not_a_photo_is_refused_before_paying(desk) -> None:
    for body in (b"", b"hello", b"\xff\xd8\xff" + b"\x00" * 50, b"<svg xmlns='http://www.w3.org/2000/svg'/>"):
        answer = desk.api("POST", "/api/recall", data=body)
        assert answer.status_code == 400 and answer.json()["error"]["kind"] == "bad_request", body
    huge = desk.api("POST", "/api/recall", data=b"\xff\xd8\xff" + b"\x00" * (9 * 1024 * 1024))
    assert huge.status_code == 413
    assert calls_today(desk) == 0


def test_bad_enrol_and_forget_requests_are_refused_before_paying(desk) -> None:
    photo = PHOTO.read_bytes()
    box = "x=1&y=1&w=50&h=50"
    for query in ("", f"name=&{box}", f"name=%20%20&{box}", "name=ada&x=1&y=1&w=50",
                  f"name={'a' * 101}&{box}", f"name=ada%0Alovelace&{box}", "name=ada&x=-1&y=1&w=5&h=5",
                  "name=ada&x=1e9&y=1&w=5&h=5"):
        answer = desk.api("POST", f"/api/enrol?{query}", data=photo)
        assert answer.status_code == 400, query
    for body, kind in ((b'{"name": ""}', "application/json"), (b"[1]", "application/json"),
                       (b"{", "application/json"), (b'{"name": "ada"}', "text/plain")):
        assert desk.api("POST", "/api/forget", data=body, headers={"Content-Type": kind}).status_code == 400
    assert calls_today(desk) == 0


def test_methods_and_paths_it_does_not_serve(desk) -> None:
    assert desk.api("GET", "/api/recall").status_code == 405
    assert desk.api("PUT", "/api/enrol").status_code == 405
    assert desk.api("DELETE", "/").status_code == 405
    for path in ("/static/../api.py", "/static/%2e%2e%2fapi.py", "/static/.hidden.js", "/static/desk.html",
                 "/api.py", "/static/index.html"):
        assert desk.api("GET", path).status_code == 404, path
    page = desk.api("GET", "/")
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_off_loopback_every_api_call_needs_the_printed_token(start_desk, desk_consumer) -> None:
    desk = start_desk(desk_consumer("1"), host="127.0.0.2")
    assert desk.token and len(desk.token) >= 24 and "token=" in desk.url
    assert requests.get(desk.url, timeout=30).status_code == 200
    assert requests.get(desk.origin + "/", timeout=30).status_code == 401
    assert requests.get(desk.origin + "/?token=wrong", timeout=30).status_code == 401
    for token in (None, "", "wrong", desk.token[:-1], desk.token + "x"):
        headers = {} if token is None else {"X-Desk-Token": token}
        answer = requests.post(desk.origin + "/api/recall", data=PHOTO.read_bytes(), timeout=30,
                               headers={"Origin": desk.origin, **headers})
        assert answer.status_code == 401, token
    assert desk.api("GET", "/api/status").json()["calls_today"] == 0


def test_the_desk_command_stops_in_one_line_on_what_it_cannot_serve(fm, desk_consumer) -> None:
    account = desk_consumer("1")
    unknown = fm("desk", "--account", account, "--service", "nobody/nothing", "--port", str(free_port()))
    assert unknown.code == 1 and len(unknown.err.strip().splitlines()) == 1 and "nobody/nothing" in unknown.err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = fm("desk", "--account", account, "--port", str(taken.getsockname()[1]))
    assert busy.code == 1 and "cannot listen on 127.0.0.1" in busy.err and "--port" in busy.err
    assert fm("desk", "--account", account, "--port", "0").code == 2  # click: out of range
