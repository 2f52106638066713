"""find_face on real photographs, through the real server, with each algorithm."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.fixtures.services import DATA, FACES, b64, in_parallel, photo

SINGLE_FACE = [
    "adele_2016.jpg", "benedict_cumberbatch_2014.png", "city_portrait.jpg", "elon_musk_2015.jpg",
    "model_face.jpg", "sophia.jpg", "waaah.jpg", "woman_portrait.jpg",
]  # fmt: skip


def size_of(name: str) -> tuple[int, int]:
    height, width = cv2.imread(str(FACES / name)).shape[:2]
    return width, height


def assert_inside(box: dict, width: int, height: int) -> None:
    assert box["w"] > 0 and box["h"] > 0
    assert 0 <= box["x"] and box["x"] + box["w"] <= width
    assert 0 <= box["y"] and box["y"] + box["h"] <= height


def shrunk(name: str, longest: int) -> tuple[str, tuple[int, int]]:
    """The photo resized so its longer side is `longest` pixels, as base64 JPEG, and its size."""
    image = cv2.imread(str(FACES / name))
    scale = longest / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return b64(cv2.imencode(".jpg", small)[1].tobytes()), (small.shape[1], small.shape[0])


@pytest.mark.parametrize("algorithm", ["dlib_hog", "dlib_cnn"])
def test_every_single_face_photo_gives_one_face(face_services, algorithm) -> None:
    """dlib_hog on the photos as they are; dlib_cnn (~6 s per megapixel) on copies 480 px
    long, to keep the suite fast: the large-photo path has its own test below."""
    photos = {
        name: shrunk(name, 480) if algorithm == "dlib_cnn" else (photo(f"face-services/{name}"), size_of(name))
        for name in SINGLE_FACE
    }

    def faces(name: str) -> list[dict]:
        return face_services.result("find_face", {"image": photos[name][0], "algorithm": algorithm})["faces"]

    found = dict(zip(SINGLE_FACE, in_parallel(faces, SINGLE_FACE)))
    assert {name: len(f) for name, f in found.items()} == {name: 1 for name in SINGLE_FACE}
    for name, (face,) in found.items():
        assert_inside(face, *photos[name][1])
        assert face["confidence"] > 0  # dlib's detectors score what they find


def test_cnn_boxes_on_a_large_photo_are_mapped_back_to_its_pixels(face_services) -> None:
    """woman_portrait is 1200x1800: the CNN runs on a shrunk copy, the box must not be shrunk."""
    (hog,) = face_services.result("find_face", {"image": photo("face-services/woman_portrait.jpg")})["faces"]
    (cnn,) = face_services.result(
        "find_face", {"image": photo("face-services/woman_portrait.jpg"), "algorithm": "dlib_cnn"}
    )["faces"]
    assert cnn["w"] > 500  # the face fills most of the photo's width
    # both detectors frame the same face: their centres are close
    assert abs((hog["x"] + hog["w"] / 2) - (cnn["x"] + cnn["w"] / 2)) < hog["w"] / 4
    assert abs((hog["y"] + hog["h"] / 2) - (cnn["y"] + cnn["h"] / 2)) < hog["h"] / 4


def test_default_algorithm_is_dlib_hog(face_services) -> None:
    image = photo("face-services/adele_2016.jpg")
    assert face_services.result("find_face", {"image": image}) == face_services.result(
        "find_face", {"image": image, "algorithm": "dlib_hog"}
    )


@pytest.mark.parametrize("algorithm", ["dlib_hog", "dlib_cnn"])
def test_zebra_stripes_have_no_face(face_services, algorithm) -> None:
    found = face_services.result("find_face", {"image": photo("face-services/zebra_stripes.jpg"), "algorithm": algorithm})
    assert found == {"faces": []}


def test_group_photos_give_several_faces(face_services) -> None:
    def count(args: tuple[str, str]) -> int:
        name, algorithm = args
        return len(face_services.result("find_face", {"image": photo(f"face-services/{name}"), "algorithm": algorithm})["faces"])

    cases = [("classroom_in_tanzania.jpg", "dlib_hog"), ("classroom_in_tanzania.jpg", "dlib_cnn"), ("laos.jpg", "dlib_hog")]
    classroom_hog, classroom_cnn, laos = in_parallel(count, cases)
    assert classroom_hog >= 4 and classroom_cnn >= 6  # the reference set records 7
    assert laos == 2


def test_haar_cascade_finds_frontal_faces_without_a_score(face_services) -> None:
    for name in ("adele_2016.jpg", "sophia.jpg", "waaah.jpg"):
        (face,) = face_services.result("find_face", {"image": photo(f"face-services/{name}"), "algorithm": "haar_cascade"})["faces"]
        assert_inside(face, *size_of(name))
        assert "confidence" not in face


def test_grayscale_and_rgba_images_are_accepted(face_services) -> None:
    gray = cv2.imread(str(FACES / "adele_2016.jpg"), cv2.IMREAD_GRAYSCALE)
    ok, png = cv2.imencode(".png", gray)
    assert ok
    assert len(face_services.result("find_face", {"image": b64(png.tobytes())})["faces"]) == 1
    rgba = (DATA / "face_recognition/extra/32bit.png").read_bytes()  # a 32-bit RGBA PNG
    assert len(face_services.result("find_face", {"image": b64(rgba)})["faces"]) == 1


@pytest.mark.parametrize(
    ("extension", "options"),
    [(".webp", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".bmp", []), (".gif", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])],
    ids=["webp-lossy", "webp-lossless", "bmp", "gif", "progressive-jpeg"],
)
def test_other_image_formats_are_accepted(face_services, extension, options) -> None:
    ok, encoded = cv2.imencode(extension, cv2.imread(str(FACES / "adele_2016.jpg")), options)
    assert ok
    assert len(face_services.result("find_face", {"image": b64(encoded.tobytes())})["faces"]) == 1


@pytest.mark.parametrize("algorithm", ["haar_cascade", "dlib_hog", "dlib_cnn"])
def test_tiny_and_thin_images_have_no_face_and_no_error(face_services, algorithm) -> None:
    """dlib's CNN raises on an image smaller than its filters; the service answers instead."""
    for height, width in ((1, 1), (8, 8), (2, 500), (500, 2)):
        png = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))[1].tobytes()
        assert face_services.result("find_face", {"image": b64(png), "algorithm": algorithm}) == {"faces": []}
