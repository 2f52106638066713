"""Services installed without a C compiler: the gallery's C scan is missing, the services start
anyway, say so in one line and in /health, and recall answers with the numpy scan."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.gallery import GalleryServices
from tests.fixtures.services import SESSION_OPTIONS, photo, start_services

EXTRA = "face_recognition/extra"


@pytest.fixture
def without_extension(tmp_path, monkeypatch) -> Iterator[None]:
    """Every process started from here imports as if services/_gallery_scan were never built."""
    hide = tmp_path / "hide_extension"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text('import sys\nsys.modules["facemarket.services._gallery_scan"] = None\n')
    monkeypatch.setenv("PYTHONPATH", str(hide))
    yield


def test_services_without_the_c_scan_start_say_so_once_and_recall_with_numpy(without_extension, tmp_path) -> None:
    gallery = GalleryServices.__new__(GalleryServices)  # its call(); started here, on its own file
    gallery.server = start_services("--gallery", str(tmp_path / "gallery.sqlite3"), *SESSION_OPTIONS)
    try:
        status, health = gallery.server.health()
        assert status == 200
        assert health["gallery_scan"] == "numpy (the C extension services/_gallery_scan is not built)"
        warnings = [line for line in gallery.server.log.read_text().splitlines() if "C scan" in line]
        assert len(warnings) == 1 and "not built" in warnings[0]
        enrolled = gallery.call("enrol", name="obama", image=photo(f"{EXTRA}/obama.jpg"))
        [face] = gallery.call("recall", image=photo(f"{EXTRA}/obama2.jpg"))["faces"]
        assert face["matches"][0]["name"] == "obama"
        assert face["matches"][0]["id"] == enrolled["id"]
    finally:
        gallery.server.stop()


def test_services_with_the_c_scan_say_which_pass_runs(face_services) -> None:
    assert face_services.health()[1]["gallery_scan"].startswith("C, ")
