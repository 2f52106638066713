"""The face gallery through the real server: enrol the train/ photos, recall the test/ photos.

One services process serves the whole module (the dlib models load once); tests that need
an empty gallery use a consumer of their own, since consumers' galleries are apart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.gallery import GalleryServices, RpcError
from tests.fixtures.services import DATA, FACEMARKET, in_parallel, photo

TRAIN = DATA / "face_recognition" / "train"
# who is in each test photo (tests/data/README.md); any other face found there is a stranger
TEST_PHOTOS = {
    "alex_lacamoire1.jpg": ["alex_lacamoire"],
    "johnsnow_test1.jpg": ["kit_harington"],
    "obama1.jpg": ["obama"],
    "kit_with_rose.jpg": ["kit_harington", "rose_leslie"],
    "obama_and_biden.jpg": ["obama", "biden"],
}
STRANGERS = [  # face-services photos of people who are not in train/
    "adele_2016.jpg",
    "benedict_cumberbatch_2014.png",
    "city_portrait.jpg",
    "classroom_in_tanzania.jpg",
    "elon_musk_2015.jpg",
    "laos.jpg",
    "sophia.jpg",
    "waaah.jpg",
]
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


def consumer(n: int) -> str:
    """A consumer address of its own for a test that needs an empty gallery."""
    return f"0x{n:040x}"


def error_code(server: GalleryServices, method: str, consumer: str | None = None, **params) -> int:
    with pytest.raises(RpcError) as caught:
        server.call(method, consumer, **params)
    assert caught.value.message  # every error says what to do
    return caught.value.code


@pytest.fixture(scope="module")
def enrolled(gallery_services: GalleryServices) -> dict[str, list[int]]:
    """Every train/ photo enrolled in the default gallery under its folder's name."""
    photos = sorted(p for p in TRAIN.glob("*/*") if p.is_file())
    results = in_parallel(lambda p: gallery_services.call("enrol", name=p.parent.name, image=photo(p.relative_to(DATA))), photos)
    ids: dict[str, list[int]] = {}
    for path, result in zip(photos, results):
        assert result["name"] == path.parent.name
        ids.setdefault(result["name"], []).append(result["id"])
    return ids


def test_enrol_answers_id_name_and_box_and_gallery_counts_faces(gallery_services, enrolled) -> None:
    listing = gallery_services.call("gallery")
    assert listing["names"] == [{"name": name, "faces": len(ids)} for name, ids in sorted(enrolled.items())]
    assert listing["faces"] == 9
    all_ids = [i for ids in enrolled.values() for i in ids]
    assert len(set(all_ids)) == len(all_ids) and all(0 < i < 2**53 for i in all_ids)


@pytest.mark.parametrize("file_name", sorted(TEST_PHOTOS))
def test_each_test_photo_recalls_the_right_names(gallery_services, enrolled, file_name: str) -> None:
    faces = gallery_services.call("recall", image=photo(f"face_recognition/test/{file_name}"))["faces"]
    known = sorted(face["name"] for face in faces if face["known"])
    assert known == sorted(TEST_PHOTOS[file_name])
    for face in faces:
        assert set(face["box"]) == {"x", "y", "w", "h"}
        if face["known"]:
            (match,) = face["matches"]
            assert match["name"] == face["name"] and match["id"] in enrolled[face["name"]]
            assert 0 <= match["distance"] <= 0.6
        else:  # e.g. the girl behind Obama and Biden: an explicit unknown
            assert face["name"] is None and face["matches"] == []


def test_photos_of_other_people_match_nobody(gallery_services, enrolled) -> None:
    answers = in_parallel(lambda f: gallery_services.call("recall", image=photo(f"face-services/{f}")), STRANGERS)
    faces = [face for answer in answers for face in answer["faces"]]
    assert len(faces) >= len(STRANGERS)
    assert [face["name"] for face in faces if face["known"]] == []


def test_top_gives_the_closest_distinct_names_closest_first(gallery_services, enrolled) -> None:
    (face,) = gallery_services.call("recall", image=photo("face_recognition/test/obama1.jpg"), top=3, threshold=2.0)["faces"]
    names = [m["name"] for m in face["matches"]]
    distances = [m["distance"] for m in face["matches"]]
    assert names[0] == "obama" and len(names) == 3 == len(set(names))
    assert distances == sorted(distances)
    strict = gallery_services.call("recall", image=photo("face_recognition/test/obama1.jpg"), threshold=0.05)["faces"]
    assert strict[0]["known"] is False  # nobody is that close: an explicit unknown


def test_the_gallery_survives_a_restart(gallery_services, enrolled) -> None:
    before = gallery_services.call("gallery")
    gallery_services.restart()
    assert gallery_services.call("gallery") == before
    (face,) = gallery_services.call("recall", image=photo("face_recognition/test/johnsnow_test1.jpg"))["faces"]
    assert face["name"] == "kit_harington" and face["matches"][0]["id"] in enrolled["kit_harington"]


def test_an_enrolled_face_survives_a_crash_right_after_the_answer(gallery_services) -> None:
    erin = consumer(6)
    enrolled_id = gallery_services.call("enrol", erin, name="rose", image=photo("face_recognition/train/rose_leslie/img1.jpg"))["id"]
    gallery_services.restart(crash=True)  # SIGKILL: only what was committed before answering is left
    (face,) = gallery_services.call("recall", erin, image=photo("face_recognition/train/rose_leslie/img2.jpg"))["faces"]
    assert face["matches"][0]["id"] == enrolled_id


def test_consumers_galleries_are_apart(gallery_services, enrolled) -> None:
    obama = photo("face_recognition/train/obama/obama.jpg")
    alice_id = gallery_services.call("enrol", ALICE, name="obama", image=obama)["id"]
    # Bob sees nothing of Alice's, and can neither recall nor remove it
    assert gallery_services.call("gallery", BOB) == {"names": [], "faces": 0}
    assert error_code(gallery_services, "recall", BOB, image=obama) == 1104
    assert error_code(gallery_services, "forget", BOB, name="obama") == 1102
    assert error_code(gallery_services, "forget", BOB, id=alice_id) == 1103
    # the default gallery's ids are not Alice's either
    assert error_code(gallery_services, "forget", ALICE, id=enrolled["biden"][0]) == 1103
    # an address is one consumer whatever its letter case (checksum or not)
    assert gallery_services.call("gallery", ALICE.upper().replace("0X", "0x")) == {
        "names": [{"name": "obama", "faces": 1}],
        "faces": 1,
    }
    (face,) = gallery_services.call("recall", ALICE, image=photo("face_recognition/test/obama1.jpg"))["faces"]
    assert face["matches"][0]["id"] == alice_id
    assert gallery_services.call("forget", ALICE, id=alice_id) == {"removed": 1}
    assert gallery_services.call("gallery")["faces"] == 9  # the default gallery is untouched


def test_forget_by_name_removes_every_face_of_it_and_by_id_one(gallery_services) -> None:
    carol = consumer(3)
    ids = {
        path: gallery_services.call("enrol", carol, name=Path(path).parent.name, image=photo(f"face_recognition/{path}"))["id"]
        for path in ("train/obama/obama.jpg", "train/obama/obama2.jpg", "train/biden/biden.jpg")
    }
    biden_id = ids["train/biden/biden.jpg"]
    assert gallery_services.call("forget", carol, name="obama") == {"removed": 2}
    (face,) = gallery_services.call("recall", carol, image=photo("face_recognition/test/obama1.jpg"))["faces"]
    assert face["known"] is False
    assert gallery_services.call("forget", carol, id=biden_id) == {"removed": 1}
    assert gallery_services.call("gallery", carol) == {"names": [], "faces": 0}


def test_enrol_with_a_box_picks_one_face_of_several(gallery_services) -> None:
    dave = consumer(4)
    group = photo("face_recognition/test/obama_and_biden.jpg")
    assert error_code(gallery_services, "enrol", dave, name="biden", image=group) == 1101
    boxes = gallery_services.call("find_face", image=group)["faces"]
    leftmost = min(boxes, key=lambda b: b["x"])  # Biden stands on the left
    box = {k: leftmost[k] for k in "xywh"}
    assert gallery_services.call("enrol", dave, name="biden", image=group, face=box)["face"] == box
    (face,) = gallery_services.call("recall", dave, image=photo("face_recognition/train/biden/biden2.jpg"))["faces"]
    assert face["name"] == "biden"


BAD_CALLS = [
    # (method, params, code)
    ("enrol", {"name": "zebra", "image": "face-services/zebra_stripes.jpg"}, 1100),
    ("recall", {"image": "face-services/zebra_stripes.jpg"}, 1100),
    ("enrol", {"name": "group", "image": "face-services/laos.jpg"}, 1101),
    ("forget", {"name": "nobody"}, 1102),
    ("forget", {"id": 12345}, 1103),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "threshold": 0}, 1105),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "threshold": -0.5}, 1105),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "threshold": "0.6"}, 1105),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "threshold": True}, 1105),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "threshold": 2.5}, 1105),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "top": 0}, 1106),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "top": 101}, 1106),
    ("recall", {"image": "face_recognition/test/obama1.jpg", "top": 1.5}, 1106),
    ("enrol", {"name": "", "image": "face_recognition/train/obama/obama.jpg"}, 1107),
    ("enrol", {"name": "   ", "image": "face_recognition/train/obama/obama.jpg"}, 1107),
    ("enrol", {"name": "x" * 101, "image": "face_recognition/train/obama/obama.jpg"}, 1107),
    ("enrol", {"name": "a\nb", "image": "face_recognition/train/obama/obama.jpg"}, 1107),
    ("enrol", {"name": 7, "image": "face_recognition/train/obama/obama.jpg"}, 1107),
    ("forget", {"id": "12345"}, 1108),
    ("forget", {"id": 0}, 1108),
    ("forget", {}, 1109),
    ("forget", {"name": "obama", "id": 1}, 1109),
    ("enrol", {"image": "face_recognition/train/obama/obama.jpg"}, -32602),
    ("recall", {}, -32602),
]


@pytest.mark.parametrize(("method", "params", "code"), BAD_CALLS, ids=[f"{m}-{c}-{i}" for i, (m, _, c) in enumerate(BAD_CALLS)])
def test_bad_input_gets_a_clear_error(gallery_services, enrolled, method: str, params: dict, code: int) -> None:
    params = {k: photo(v) if k == "image" else v for k, v in params.items()}
    assert error_code(gallery_services, method, **params) == code


def test_an_empty_gallery_and_a_malformed_consumer_get_clear_errors(gallery_services) -> None:
    assert error_code(gallery_services, "recall", consumer(5), image=photo("face_recognition/test/obama1.jpg")) == 1104
    assert error_code(gallery_services, "gallery", "not-an-address") == 1110
    assert error_code(gallery_services, "gallery", "0x1234") == 1110


def test_a_gallery_file_that_cannot_be_opened_stops_the_start_with_one_clear_line(tmp_path: Path) -> None:
    damaged = tmp_path / "gallery.sqlite3"
    damaged.write_text("not a database")
    run = subprocess.run(
        [str(FACEMARKET), "services", "run", "--port", "0", "--gallery", str(damaged)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"Error: cannot open the gallery file {damaged}: file is not a database. "
        "Pass --gallery with a writable path, or restore the file from a backup"
    )
