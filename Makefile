# Two entry points for a newcomer: `make demo` and `make test`. Each installs what it needs
# (a venv with the project, the pinned Node tools in ganache/) and does so only once.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := ganache/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: demo test install contracts bench clean

install: $(STAMP) $(NODE_STAMP)

# tools/install_dlib.py: dlib built for this CPU with OpenBLAS (compiled once per machine, kept in
# ~/.cache/facemarket/dlib), or the generic dlib-bin when it cannot be; pyproject.toml leaves dlib to it.
$(STAMP): pyproject.toml setup.py services/gallery_scan.c tools/install_dlib.py
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -c 'import os, sys, sysconfig; h = os.path.join(sysconfig.get_paths()["include"], "Python.h"); sys.exit("the Python headers are needed to build services/gallery_scan.c: " + h + " is missing (Debian: apt install python3-dev)") if not os.path.exists(h) else None'
	command -v cc >/dev/null || { echo "a C compiler is needed to build services/gallery_scan.c (Debian: apt install gcc)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) tools/install_dlib.py
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(NODE_STAMP): ganache/package.json ganache/package-lock.json
	cd ganache && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) -m facemarket.cli.demo

contracts: install
	$(PY) -m facemarket.contracts.build

# Every benchmark, one after another (each prints its own figures; see the README).
bench: install
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) ganache/node_modules .pytest_cache
