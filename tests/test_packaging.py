"""The wheel must carry every package folder: pyproject lists them by hand (see its comment)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("agent", "cli", "contracts", "models", "services")


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        "facemarket." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
        if "node_modules" not in init.parts
    }
    assert found == listed, f"pyproject packages differ from folders: {found ^ listed}"
    assert {f"facemarket.{top}" for top in TOP_LEVEL} <= set(config["package-dir"])
