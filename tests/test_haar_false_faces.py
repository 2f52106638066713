"""The Haar detector's false faces, through the real server: the zebra-stripe photo re-encoded
as a JPEG at OpenCV's default quality gave a face; the HOG check on each box drops it, and
every true face the cascade finds (benchmarks/quality_faces.json) is still answered."""

from __future__ import annotations

import json

import cv2

from benchmarks.quality_bench import MATCH_IOU, ROOT, TRUTH, iou, read_rgb
from facemarket.models.loader import load_haar_cascade
from facemarket.models.locate import models_dir
from facemarket.services.boxes import Box
from facemarket.services.detect_haar import cascade_boxes
from tests.fixtures.services import FACES, b64, in_parallel


def haar_faces(server, data: bytes) -> list[Box]:
    faces = server.result("find_face", {"image": b64(data), "algorithm": "haar_cascade"})["faces"]
    return [Box(f["x"], f["y"], f["w"], f["h"]) for f in faces]


def test_the_zebra_reencoded_at_default_jpeg_quality_has_no_haar_face(face_services) -> None:
    image = cv2.imread(str(FACES / "zebra_stripes.jpg"))
    reencoded = cv2.imencode(".jpg", image)[1].tobytes()  # OpenCV's default quality, 95
    assert haar_faces(face_services, reencoded) == []
    assert haar_faces(face_services, (FACES / "zebra_stripes.jpg").read_bytes()) == []


def test_every_true_face_the_cascade_finds_is_still_found(face_services) -> None:
    truth = {name: [Box(*b[:4]) for b in boxes] for name, boxes in json.loads(TRUTH.read_text()).items()}
    cascade = load_haar_cascade(models_dir())

    seen = {  # the true faces the cascade alone finds (one thread: a cascade is not thread-safe)
        name: [t for t in truth[name] if any(iou(b, t) >= MATCH_IOU for b in cascade_boxes(cascade, read_rgb(ROOT / name)))]
        for name in truth
    }

    def lost(name: str) -> list[Box]:
        answered = haar_faces(face_services, (ROOT / name).read_bytes())
        return [t for t in seen[name] if not any(iou(b, t) >= MATCH_IOU for b in answered)]

    assert sum(map(len, seen.values())) >= 20  # the cascade alone finds that many true faces
    assert {name: boxes for name, boxes in zip(truth, in_parallel(lost, list(truth))) if boxes} == {}
