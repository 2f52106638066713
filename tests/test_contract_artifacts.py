"""The committed artifacts are exactly what the pinned solc-js makes of the sources."""

from facemarket.contracts import artifacts
from facemarket.contracts.build import compile_sources, render


def test_committed_artifacts_match_the_sources():
    for name, artifact in compile_sources().items():
        committed = (artifacts.ARTIFACTS_DIR / f"{name}.json").read_text()
        assert committed == render(artifact), f"{name}.json is stale: run `make contracts` and commit the artifacts"


def test_artifacts_are_compiled_for_shanghai():
    """Ganache 7.9 lacks Cancun (MCOPY, TSTORE): the compiler must target shanghai."""
    for name in artifacts.CONTRACT_NAMES:
        artifact = artifacts.load(name)
        assert artifact["compiler"]["evmVersion"] == "shanghai"
        assert artifact["compiler"]["solc"].startswith("0.8.28+")
