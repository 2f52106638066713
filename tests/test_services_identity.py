"""face_identity: 128-d descriptors whose distances tell people apart (threshold 0.6)."""

from __future__ import annotations

import itertools
import math

from tests.fixtures.services import in_parallel, photo

THRESHOLD = 0.6
# one person per photograph: name -> photographs
PEOPLE = {
    "alex_lacamoire": ["train/alex_lacamoire/img1.jpg", "test/alex_lacamoire1.jpg"],
    "biden": ["train/biden/biden.jpg", "train/biden/biden2.jpg"],
    "kit_harington": ["train/kit_harington/john1.jpeg", "train/kit_harington/john2.jpeg", "test/johnsnow_test1.jpg"],
    "obama": ["train/obama/obama.jpg", "train/obama/obama2.jpg", "test/obama1.jpg"],
    "rose_leslie": ["train/rose_leslie/img1.jpg", "train/rose_leslie/img2.jpg"],
}


def distance(a: list[float], b: list[float]) -> float:
    return math.dist(a, b)


def test_same_person_is_near_and_different_people_are_far(face_services) -> None:
    photos = [(name, path) for name, paths in PEOPLE.items() for path in paths]

    def vector(item: tuple[str, str]) -> list[float]:
        (face,) = face_services.result("face_identity", {"image": photo(f"face_recognition/{item[1]}")})["faces"]
        return face["vector"]

    vectors = in_parallel(vector, photos)
    for vec in vectors:
        assert len(vec) == 128 and all(isinstance(x, float) for x in vec)
    for (a, va), (b, vb) in itertools.combinations(zip(photos, vectors), 2):
        d = distance(va, vb)
        if a[0] == b[0]:
            assert d < THRESHOLD, f"{a[1]} and {b[1]} are the same person but {d:.3f} apart"
        else:
            assert d > THRESHOLD, f"{a[1]} and {b[1]} are different people but only {d:.3f} apart"


def test_each_face_of_a_two_person_photo_matches_its_person(face_services) -> None:
    faces = face_services.result("face_identity", {"image": photo("face_recognition/test/kit_with_rose.jpg")})["faces"]
    assert len(faces) == 2
    kit = face_services.result("face_identity", {"image": photo("face_recognition/train/kit_harington/john1.jpeg")})
    rose = face_services.result("face_identity", {"image": photo("face_recognition/train/rose_leslie/img1.jpg")})
    known = {"kit": kit["faces"][0]["vector"], "rose": rose["faces"][0]["vector"]}
    matched = sorted(min(known, key=lambda name: distance(known[name], face["vector"])) for face in faces)
    assert matched == ["kit", "rose"]
    for face in faces:
        assert min(distance(v, face["vector"]) for v in known.values()) < THRESHOLD


def test_identity_uses_the_given_boxes(face_services) -> None:
    image = photo("face_recognition/test/obama_and_biden.jpg")
    detected = face_services.result("face_identity", {"image": image})["faces"]
    boxes = [face["box"] for face in detected]
    given = face_services.result("face_identity", {"image": image, "faces": boxes[:1]})["faces"]
    assert len(given) == 1 and given[0]["box"] == boxes[0]
    assert distance(given[0]["vector"], detected[0]["vector"]) < 1e-6


def test_identity_of_a_photo_without_a_face_is_empty(face_services) -> None:
    assert face_services.result("face_identity", {"image": photo("face-services/zebra_stripes.jpg")}) == {"faces": []}
