"""Every bad input gets its JSON-RPC error, with a stable code, and the server keeps serving."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import pytest

from tests.fixtures.services import FACES, b64, photo

ADELE = (FACES / "adele_2016.jpg").read_bytes()
ADELE_PNG = cv2.imencode(".png", cv2.imread(str(FACES / "adele_2016.jpg")))[1].tobytes()
BOX = {"x": 10, "y": 10, "w": 100, "h": 100}


@pytest.fixture(autouse=True)
def server_survives(face_services):
    """After each bad request: the same server, the same workers, still answering."""
    before = face_services.health()[1]["workers"]
    yield
    assert face_services.alive()
    assert face_services.result("ping") == "pong"
    status, health = face_services.health()
    assert status == 200 and health["workers"] == before


def png_bomb(width: int, height: int) -> bytes:
    """A small, valid grayscale PNG that decodes to width x height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + a black row
    body = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header claims another size."""
    at = next(i for i in range(2, len(ADELE)) if ADELE[i] == 0xFF and ADELE[i + 1] in (0xC0, 0xC2))
    return ADELE[: at + 5] + struct.pack(">HH", height, width) + ADELE[at + 9 :]


@pytest.mark.parametrize(
    ("image", "code"),
    [
        ("", 1001),
        (" \n", 1001),
        ("not base64!", 1000),
        ("abc", 1000),  # bad padding
        (b64(b"just some text, no image"), 1002),
        (b64(b"GIF89a"), 1002),  # a header cut short
        (b64(ADELE[: len(ADELE) // 2]), 1002),  # truncated JPEG
        (b64(ADELE[:-2]), 1002),  # JPEG without its end marker
        (b64(ADELE_PNG[: len(ADELE_PNG) * 3 // 4]), 1002),  # truncated PNG
        (b64(b"II*\x00" + bytes(100)), 1002),  # TIFF: not a supported format
        (b64(os.urandom(3_100_000)), 1003),  # over --max-image-bytes 3000000
        (b64(png_bomb(12_000, 12_000)), 1004),  # 144 MB decoded from a ~140 kB file
        (b64(jpeg_claiming(60_000, 60_000)), 1004),
    ],
    ids=[
        "empty", "whitespace", "not-base64", "bad-padding", "text", "short-header", "truncated-jpeg",
        "no-eoi", "truncated-png", "tiff", "too-many-bytes", "png-bomb", "jpeg-bomb",
    ],
)  # fmt: skip
def test_bad_images_get_their_error(face_services, image, code) -> None:
    for method in ("find_face", "face_identity"):
        error = face_services.error(method, {"image": image})
        assert error["code"] == code, error
        assert error["message"]


def test_a_bomb_is_refused_before_it_is_decoded(face_services) -> None:
    bomb = png_bomb(12_000, 12_000)
    assert len(bomb) < 500_000
    error = face_services.error("find_face", {"image": b64(bomb)})
    assert error["code"] == 1004 and "12000x12000" in error["message"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, -32602),  # image missing
        ({"image": photo("face-services/adele_2016.jpg"), "colour": "red"}, -32602),  # unknown parameter
        ({"image": 42}, -32602),
        ({"image": None}, -32602),
        ({"image": photo("face-services/adele_2016.jpg"), "algorithm": "deep_magic"}, 1006),
        ({"image": photo("face-services/adele_2016.jpg"), "algorithm": 1}, 1006),
    ],
    ids=["missing", "unknown", "number", "null", "unknown-algorithm", "numeric-algorithm"],
)
def test_bad_find_face_params(face_services, params, code) -> None:
    error = face_services.error("find_face", params)
    assert error["code"] == code
    assert error["message"] != "Invalid params"  # the message says which one and why


ADELE_B64 = b64(ADELE)  # 452x600


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("find_landmarks", {"model": "17"}, 1007),
        ("find_landmarks", {"model": None}, 1007),
        ("find_landmarks", {"faces": [{**BOX, "x": -1}]}, 1005),
        ("find_landmarks", {"faces": [{**BOX, "x": 400}]}, 1005),  # reaches past the right edge
        ("face_identity", {"faces": [{**BOX, "y": 550}]}, 1005),  # past the bottom
        ("align_face", {"faces": [{**BOX, "w": 0}]}, 1005),
        ("align_face", {"faces": [BOX, {**BOX, "x": 5000}]}, 1005),
        ("face_identity", {"faces": [{"x": "10", "y": 10, "w": 100, "h": 100}]}, -32602),
        ("face_identity", {"faces": [{"x": 10, "y": 10}]}, -32602),
        ("face_identity", {"faces": BOX}, -32602),  # a box, not a list of boxes
        ("face_identity", {"faces": [BOX] * 101}, -32602),  # over 100 boxes
        ("align_face", {"size": 0}, -32602),
        ("align_face", {"size": 100_000}, -32602),
        ("align_face", {"size": "150"}, -32602),
        ("align_face", {"padding": -1}, -32602),
        ("align_face", {"padding": True}, -32602),
    ],
)
def test_bad_params_of_the_other_methods(face_services, method, params, code) -> None:
    error = face_services.error(method, {"image": ADELE_B64, **params})
    assert error["code"] == code, error


def test_a_box_error_says_which_box_and_the_image_size(face_services) -> None:
    error = face_services.error("face_identity", {"image": ADELE_B64, "faces": [BOX, {**BOX, "x": 400}]})
    assert "faces[1]" in error["message"] and "452x600" in error["message"]


def test_unknown_method(face_services) -> None:
    assert face_services.error("find_unicorn", {"image": ADELE_B64})["code"] == -32601


def test_a_request_over_the_body_limit_is_refused(face_services) -> None:
    status, answer = face_services.post(b'{"jsonrpc": "2.0", "method": "ping", "id": 1, "pad": "' + b"x" * 8_100_000 + b'"}')
    assert status == 413
    assert answer["error"]["code"] == 1008 and answer["id"] is None
