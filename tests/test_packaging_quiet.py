"""Issue 17 item 9: building the package prints no setuptools warning about the data folders
(`demo_data`, `artifacts`, `static` taken for undeclared packages: ~80 lines per install), and
the wheel still carries every data file the code reads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ["facemarket/cli/demo_data/city_portrait.jpg", "facemarket/cli/desk/static/index.html",
        "facemarket/contracts/artifacts/JobEscrow.json", "facemarket/models/manifest.json"]


def test_the_wheel_builds_without_package_warnings_and_keeps_its_data(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-v",
                            "-w", str(tmp_path)], capture_output=True, text=True, timeout=540)
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-3000:]
    assert "is absent from the `packages` configuration" not in log
    [wheel] = tmp_path.glob("facemarket-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA) <= names
