"""The services process itself: start-up checks, serving one service alone, a worker crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.fixtures.services import FACEMARKET, ServicesServer, photo, start_services


@pytest.fixture
def own_server(request) -> ServicesServer:
    """A services process of the test's own, stopped afterwards."""
    server = start_services(*request.param)
    yield server
    server.stop()


def test_a_bad_models_folder_stops_the_start_up_with_the_file_named(tmp_path) -> None:
    (tmp_path / "mmod_human_face_detector.dat").write_bytes(b"not a model")
    run = subprocess.run(
        [str(FACEMARKET), "services", "run", "--port", "0", "--models-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode != 0
    assert "mmod_human_face_detector.dat" in run.stderr and "pip install" in run.stderr
    assert run.stderr.count("\n") == 1  # one clear line, no traceback


def test_an_unknown_service_is_refused(tmp_path) -> None:
    run = subprocess.run(
        [str(FACEMARKET), "services", "run", "--service", "palmistry"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 2 and "palmistry" in run.stderr and "detection" in run.stderr


@pytest.mark.parametrize("own_server", [("--workers", "1", "--service", "detection")], indirect=True)
def test_one_service_can_be_served_alone(own_server) -> None:
    assert own_server.health()[1]["methods"] == ["find_face", "ping"]
    assert own_server.result("find_face", {"image": photo("face-services/sophia.jpg")})["faces"]
    assert own_server.error("find_landmarks", {"image": photo("face-services/sophia.jpg")})["code"] == -32601


@pytest.mark.parametrize("own_server", [("--workers", "1", "--service", "detection")], indirect=True)
def test_a_killed_worker_is_replaced_and_the_server_keeps_serving(own_server) -> None:
    (worker,) = own_server.health()[1]["workers"]
    os.kill(worker, signal.SIGKILL)
    body = {"jsonrpc": "2.0", "id": 1, "method": "find_face", "params": {"image": photo("face-services/sophia.jpg")}}
    status, answer = own_server.post(json.dumps(body).encode())
    # 503: nothing was computed, so an agent in front releases the job uncharged
    assert status == 503 and answer["error"]["code"] == 1098 and "retry" in answer["error"]["message"], answer
    deadline = time.monotonic() + 60
    while own_server.health()[0] != 200:
        assert time.monotonic() < deadline, "the worker pool did not come back"
        time.sleep(0.2)
    (replacement,) = own_server.health()[1]["workers"]
    assert replacement != worker
    assert len(own_server.result("find_face", {"image": photo("face-services/sophia.jpg")})["faces"]) == 1


def test_the_server_stops_cleanly_on_sigterm() -> None:
    server = start_services("--workers", "1", "--service", "detection")
    workers = server.health()[1]["workers"]
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    for pid in workers:
        deadline = time.monotonic() + 10
        while _running(pid):
            assert time.monotonic() < deadline, f"worker {pid} outlived the server"
            time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_leave_when_the_server_is_killed() -> None:
    """SIGKILL gives the server no chance to stop its workers: they must notice and exit."""
    server = start_services("--workers", "1", "--service", "detection")
    workers = server.health()[1]["workers"]
    server.process.kill()
    server.process.wait(timeout=30)
    for pid in workers:
        deadline = time.monotonic() + 20
        while _running(pid):
            assert time.monotonic() < deadline, f"worker {pid} outlived its killed server"
            time.sleep(0.1)
