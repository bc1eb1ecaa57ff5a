# The two Quickstart commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-external deps venv lint type docs bench clean

APT_INSTALL = (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1))

# Tokyo Cabinet's shared library, from apt only when Python cannot find it.
deps:
	@$(PYTHON) -c "import ctypes.util,sys; sys.exit(0 if ctypes.util.find_library('tokyocabinet') else 1)" \
	  || $(call APT_INSTALL,libtokyocabinet9)

# Debian's python3 comes without venv/ensurepip; add it only when missing.
$(PY):
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || $(call APT_INSTALL,python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e '.[dev,docs]'

# The library has no runtime dependencies: the demo runs from the checkout.
demo: deps
	PYTHONPATH=$(CURDIR) $(PYTHON) examples/demo.py

# Lint, types and docs first; then the suite on the default Python, then on
# every other supported Python found here (tools/test_pythons.py), so the
# summary of all interpreters is the last line printed. The tests wait on
# sockets and child processes more than they compute: two pytest-xdist workers
# per core keep the machine busy.
WORKERS ?= $(shell $(PYTHON) -c "import os; print(2 * len(os.sched_getaffinity(0)))")

test: deps venv
	$(PY) -m ruff check doqu doqu_tyrant pyrant tests benchmarks examples tools
	$(PY) -m mypy
	$(PY) -m sphinx -q -W -b html docs docs/_build/html
	$(PY) -m pytest -q -n $(WORKERS)
	$(PY) tools/test_pythons.py --exclude $$($(PY) -c "import sys; print('%d.%d' % sys.version_info[:2])") -- -q -n $(WORKERS)

# The client, pyrant, backend and CLI suites against any Tyrant server, e.g. a real
# ttserver: TYRANT_URL=tyrant://HOST:PORT make test-external (a table
# database; TYRANT_HASH_URL=tyrant://HOST:PORT2 adds a hash database for the
# key-value tests). The suites empty those databases and drop the indexes they
# create; tests that send requests which abort ttserver use bundled servers.
test-external: deps venv
	@test -n "$(TYRANT_URL)" || { echo "usage: TYRANT_URL=tyrant://HOST:PORT make test-external" >&2; exit 2; }
	TYRANT_URL="$(TYRANT_URL)" TYRANT_HASH_URL="$(TYRANT_HASH_URL)" $(PY) -m pytest -q tests/tyrant tests/pyrant tests/backend tests/cli

lint: venv
	$(PY) -m ruff check doqu doqu_tyrant pyrant tests benchmarks examples tools

type: venv
	$(PY) -m mypy

docs: venv
	$(PY) -m sphinx -W -b html docs docs/_build/html

bench: venv
	$(PY) benchmarks/server.py
	$(PY) benchmarks/client.py
	$(PY) benchmarks/documents.py

clean:
	rm -rf $(VENV) .venvs .tox .pytest_cache .mypy_cache .ruff_cache docs/_build
