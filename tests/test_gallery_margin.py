"""recall names a face only when the next other name lies `margin` farther: through the real server.

A stranger in a large gallery is about as close to several people as to any one of them; a
returning person is much closer to their own faces. Enrolling one photo under two names builds
that situation with real faces: two names at the same distance.
"""

from __future__ import annotations

import pytest

from tests.fixtures.gallery import GalleryServices, RpcError
from tests.fixtures.services import photo

OBAMA, BIDEN, KIT = "face_recognition/train/obama/obama.jpg", "face_recognition/train/biden/biden.jpg", "face_recognition/train/kit_harington/john2.jpeg"
RETURNING = "face_recognition/test/obama1.jpg"


def consumer(n: int) -> str:
    return f"0x{0xfa0 + n:040x}"


def enrol(server: GalleryServices, who: str, **people: str) -> None:
    for name, path in people.items():
        server.call("enrol", who, name=name, image=photo(path))


def test_two_names_equally_close_name_nobody_but_list_both(gallery_services: GalleryServices) -> None:
    who = consumer(1)
    enrol(gallery_services, who, obama=OBAMA, lookalike=OBAMA, biden=BIDEN)
    (face,) = gallery_services.call("recall", who, image=photo(RETURNING), top=2)["faces"]
    assert face["known"] is False and face["name"] is None
    assert sorted(m["name"] for m in face["matches"]) == ["lookalike", "obama"]
    assert face["margin"] == pytest.approx(0.0, abs=1e-4)
    (old,) = gallery_services.call("recall", who, image=photo(RETURNING), margin=0)["faces"]
    assert old["known"] is True and old["name"] in {"obama", "lookalike"}  # margin 0: the old answer


def test_a_returning_person_is_named_with_the_gap_to_the_next_name(gallery_services: GalleryServices) -> None:
    who = consumer(2)
    enrol(gallery_services, who, obama=OBAMA, biden=BIDEN, kit=KIT)
    (face,) = gallery_services.call("recall", who, image=photo(RETURNING), top=3, threshold=2.0)["faces"]
    best, second = face["matches"][:2]
    assert face["known"] is True and face["name"] == "obama"
    assert face["margin"] == pytest.approx(second["distance"] - best["distance"], abs=2e-4) and face["margin"] >= 0.1
    (default,) = gallery_services.call("recall", who, image=photo(RETURNING))["faces"]
    assert default["name"] == "obama" and len(default["matches"]) == 1
    # no other name within threshold + margin: the gap is at least the margin, and unmeasured
    assert default["margin"] is None or default["margin"] >= 0.1


def test_one_name_alone_is_named_with_no_margin(gallery_services: GalleryServices) -> None:
    who = consumer(3)
    enrol(gallery_services, who, obama=OBAMA)
    (face,) = gallery_services.call("recall", who, image=photo(RETURNING))["faces"]
    assert face["known"] is True and face["name"] == "obama" and face["margin"] is None


@pytest.mark.parametrize("margin", [-0.1, "0.1", True, 2.5, None, [0.1], {"m": 1}])
def test_a_bad_margin_is_refused_with_what_to_send(gallery_services: GalleryServices, margin: object) -> None:
    who = consumer(4)
    enrol(gallery_services, who, obama=OBAMA)
    with pytest.raises(RpcError) as caught:
        gallery_services.call("recall", who, image=photo(RETURNING), margin=margin)
    assert caught.value.code == 1111 and "margin must be" in caught.value.message
