"""The face gallery: named 128-d identity vectors per consumer, stored durably, recalled exactly.

Everything here is keyed by the consumer, so no call can reach another consumer's faces:
the key comes from the request's X-Facemarket-Consumer header (gallery_methods.consumer_key),
never from a parameter. These calls block (SQLite commits, a scan of the index): the JSON-RPC
methods (gallery_methods.py) run them in a thread, off the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemarket.services.gallery_errors import GalleryCode, GalleryError
from facemarket.services.gallery_index import DIMENSIONS, GalleryIndex, Neighbour, Shelf
from facemarket.services.gallery_store import GalleryStore
from facemarket.services.home import facemarket_home

DEFAULT_FILE_NAME = "gallery.sqlite3"


def default_path() -> Path:
    """$FACEMARKET_HOME/gallery.sqlite3 (FACEMARKET_HOME defaults to ~/.facemarket)."""
    return facemarket_home() / DEFAULT_FILE_NAME


@dataclass(frozen=True)
class Match:
    name: str
    id: int
    distance: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "id": self.id, "distance": round(self.distance, 4)}


class Gallery:
    """Store + index. `landmark_model` names the model that aligned the vectors it is given."""

    def __init__(self, store: GalleryStore, landmark_model: str) -> None:
        self.store = store
        self.landmark_model = landmark_model
        self.index = GalleryIndex()
        self._writing = threading.Lock()  # store and index change together: no forget between them
        for consumer, model, count in store.galleries():  # rebuild the index from what survived the last run
            shelf = self.index.shelf(consumer, model)
            shelf.reserve(count)  # one allocation of the right size, not doublings
            for batch in store.faces(consumer, model):
                shelf.add(batch.ids, batch.names, batch.vectors)

    @classmethod
    def open(cls, path: Path, landmark_model: str) -> Gallery:
        return cls(GalleryStore(path), landmark_model)

    def enrol(self, consumer: str, name: str, vector: np.ndarray) -> int:
        """Store the face (committed) and then index it; returns its id."""
        vectors = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        with self._writing:
            (face_id,) = self.store.add(consumer, self.landmark_model, [name], vectors)
            self.index.shelf(consumer, self.landmark_model).add(np.array([face_id]), [name], vectors)
        return face_id

    def forget(self, consumer: str, *, name: str | None = None, face_id: int | None = None) -> int:
        """Remove the consumer's faces with this name (all of them) or this id; returns how many."""
        with self._writing:
            removed = self.store.remove(consumer, name=name, face_id=face_id)
            for model in {model for _, model in removed}:
                self.index.shelf(consumer, model).remove([i for i, m in removed if m == model])
        if not removed:
            raise nothing_removed(name, face_id)
        return len(removed)

    def recall(self, consumer: str, vectors: np.ndarray, threshold: float, top: int, margin: float) -> list[Recalled]:
        """For each face's vector, the `top` closest distinct names within `threshold`, closest
        first, and whether the closest is named: only when it lies within `threshold` and the
        next other name lies at least `margin` farther (a stranger among many faces is about
        as close to several of them; a returning person is much closer to their own)."""
        return recall_on_shelf(self.check_not_empty(consumer), vectors, threshold, top, margin)

    def check_not_empty(self, consumer: str) -> Shelf:
        """The consumer's shelf of faces aligned like ours; an empty one is the client's error."""
        shelf = self.index.find(consumer, self.landmark_model)
        if shelf is None or len(shelf) == 0:
            raise empty_gallery()
        return shelf

    def names(self, consumer: str) -> dict[str, int]:
        """How many faces each name has, in this consumer's gallery."""
        counts: dict[str, int] = {}
        for shelf in self.index.shelves_of(consumer):
            for name, count in shelf.names().items():
                counts[name] = counts.get(name, 0) + count
        return dict(sorted(counts.items()))

    def health(self) -> dict[str, object]:
        """For /health: where the gallery lives."""
        return {"store": "sqlite", "file": str(self.store.path)}

    def close(self) -> None:
        self.store.close()


def nothing_removed(name: str | None, face_id: int | None) -> GalleryError:
    """`forget` found no face by that name or id in this consumer's gallery (whatever stores it)."""
    if name is not None:
        return GalleryError(
            GalleryCode.UNKNOWN_NAME,
            f"no face is enrolled under the name {name!r} in this gallery: `gallery` lists the names",
        )
    return GalleryError(
        GalleryCode.UNKNOWN_ID,
        f"no face has the id {face_id} in this gallery: use an id that `enrol` or `recall` returned",
    )


def empty_gallery() -> GalleryError:
    return GalleryError(GalleryCode.EMPTY_GALLERY, "this gallery has no faces to recall yet: enrol some first with `enrol`")


@dataclass(frozen=True)
class Recalled:
    """One face's answer: the closest names within the threshold, whether the first is named,
    and how much farther the next other name lies (None: none within threshold + margin)."""

    matches: list[Match]
    known: bool
    margin: float | None


def recall_on_shelf(shelf: Shelf, vectors: np.ndarray, threshold: float, top: int, margin: float) -> list[Recalled]:
    """`Gallery.recall` on one shelf (the quality benchmark calls it on synthetic galleries)."""
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, DIMENSIONS)
    reach, wanted = threshold + margin, max(top, 2)
    first = shelf.nearest(vectors, wanted, within=reach)
    return [
        _decide(_names_near(shelf, vector, neighbours, reach, wanted), threshold, top, margin)
        for vector, neighbours in zip(vectors, first)
    ]


def _names_near(shelf: Shelf, vector: np.ndarray, neighbours: list[Neighbour], threshold: float, top: int) -> list[Match]:
    count = top
    while True:  # one name may own several of the nearest faces: widen until `top` names show
        matches = _closest_per_name(neighbours)
        if len(matches) >= top or len(neighbours) < count:  # fewer than asked: none left within
            return matches[:top]
        count *= 4
        (neighbours,) = shelf.nearest(vector[None], count, within=threshold)


def _decide(names: list[Match], threshold: float, top: int, margin: float) -> Recalled:
    gap = names[1].distance - names[0].distance if len(names) > 1 else None
    within = [m for m in names if m.distance <= threshold][:top]
    known = bool(within) and (gap is None or gap >= margin)
    return Recalled(within, known, gap)


def _closest_per_name(neighbours: list[Neighbour]) -> list[Match]:
    matches: dict[str, Match] = {}
    for n in neighbours:  # closest first, so the first face seen of a name is its closest
        if n.name not in matches:
            matches[n.name] = Match(n.name, n.id, n.distance)
    return list(matches.values())
