"""`python -m facemarket.cli`: the same as the `facemarket` console script."""

from facemarket.cli.main import cli

cli()
