"""find_landmarks, landmark_models and align_face on real photographs."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from tests.fixtures.services import photo

ADELE = "face-services/adele_2016.jpg"


def grown(box: dict, fraction: float) -> dict:
    """The box enlarged on each side: a detector's box is tight, the jaw line may pass it."""
    dx, dy = box["w"] * fraction, box["h"] * fraction
    return {"x": box["x"] - dx, "y": box["y"] - dy, "w": box["w"] + 2 * dx, "h": box["h"] + 2 * dy}


def inside(point: dict, box: dict) -> bool:
    return box["x"] <= point["x"] <= box["x"] + box["w"] and box["y"] <= point["y"] <= box["y"] + box["h"]


@pytest.mark.parametrize(("model", "count"), [("68", 68), ("5", 5)])
def test_landmarks_lie_in_the_face_box(face_services, model, count) -> None:
    result = face_services.result("find_landmarks", {"image": photo(ADELE), "model": model})
    assert result["model"] == model
    (face,) = result["faces"]
    assert len(face["points"]) == count
    assert all(inside(p, grown(face["box"], 0.15)) for p in face["points"])


def test_landmarks_default_to_68_points(face_services) -> None:
    (face,) = face_services.result("find_landmarks", {"image": photo(ADELE)})["faces"]
    assert len(face["points"]) == 68


def test_landmarks_use_the_given_boxes(face_services) -> None:
    image = photo("face-services/laos.jpg")
    boxes = face_services.result("find_face", {"image": image})["faces"]
    assert len(boxes) == 2
    result = face_services.result("find_landmarks", {"image": image, "faces": boxes[1:], "model": 5})
    (face,) = result["faces"]
    assert face["box"] == {k: boxes[1][k] for k in "xywh"}
    assert all(inside(p, grown(face["box"], 0.15)) for p in face["points"])


def test_landmark_points_are_where_their_names_say(face_services) -> None:
    """The catalogue's names match the model's output: the nose tip lies between the eyes'
    outer corners, below them, and the subject's right eye is on the image's left."""
    catalogue = {m["name"]: m for m in face_services.result("landmark_models")["models"]}
    for model in ("68", "5"):
        names = catalogue[model]["points"]
        (face,) = face_services.result("find_landmarks", {"image": photo(ADELE), "model": model})["faces"]
        point = {name: face["points"][i] for i, name in enumerate(names)}
        right, left = point["right eye, outer corner"], point["left eye, outer corner"]
        nose = point["tip of the nose" if model == "68" else "bottom of the nose, centre"]
        assert right["x"] < nose["x"] < left["x"]
        assert nose["y"] > max(right["y"], left["y"])


def test_landmark_models_describe_both_models_and_the_licence(face_services) -> None:
    result = face_services.result("landmark_models")
    models = {m["name"]: m for m in result["models"]}
    assert set(models) == {"68", "5"}
    for name, model in models.items():
        assert model["point_count"] == int(name) == len(model["points"])
        assert all(isinstance(p, str) and p for p in model["points"])
    assert "iBUG 300-W" in models["68"]["training_data"] and "commercial" in models["68"]["licence"]
    assert "face_identity" in models["5"]["used_by"] and "face_identity" not in models["68"]["used_by"]
    assert "5-point" in result["note"]


def decode_png(text: str) -> np.ndarray:
    data = base64.b64decode(text)
    assert data.startswith(b"\x89PNG")
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_aligned_chip_has_the_requested_size(face_services) -> None:
    (default,) = face_services.result("align_face", {"image": photo(ADELE)})["faces"]
    assert decode_png(default["image"]).shape == (150, 150, 3)
    (large,) = face_services.result("align_face", {"image": photo(ADELE), "size": 200, "padding": 0.5})["faces"]
    assert decode_png(large["image"]).shape == (200, 200, 3)
    assert large["box"] == default["box"]


def test_aligned_chip_puts_the_eyes_level(face_services) -> None:
    """The chip is rotated upright: its 5 landmarks have the eyes at the same height."""
    (chip,) = face_services.result("align_face", {"image": photo("face-services/waaah.jpg"), "size": 200})["faces"]
    (face,) = face_services.result("find_landmarks", {"image": chip["image"], "model": "5"})["faces"]
    eyes = face["points"][:4]
    assert max(p["y"] for p in eyes) - min(p["y"] for p in eyes) < 200 * 0.04


def test_every_face_of_a_group_photo_is_aligned(face_services) -> None:
    assert len(face_services.result("align_face", {"image": photo("face-services/laos.jpg")})["faces"]) == 2
