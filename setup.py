"""The one part of the build pyproject.toml cannot state stably: the gallery's C scan
(services/gallery_scan.c; services/gallery_codes.py says why it is C). Optional: without a C
compiler or the Python headers the build goes on without it and the gallery uses its numpy
scan (same answers, slower; the services say so at start and in /health). Everything else
about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("facemarket.services._gallery_scan", ["services/gallery_scan.c"], extra_compile_args=["-O3"], optional=True)])
