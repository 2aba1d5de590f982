# Two entry points for a fresh machine; each does all of its own set-up.
#   make demo   install, then run the main job
#   make test   install (with the test and bench extras), then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# The bench extra (PyTorch) so that the tests of the PyTorch twins run rather than skip.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'

# The quick reproduction: PTB-XL from $IMN_PTBXL if set, else the synthetic benchmark
# (at most 15 minutes on a 2-core CPU); tables and figures land in demo/quick/.
demo: install
	$(BIN)/imn reproduce --preset quick --out demo/quick

# Two pytest workers, one test file each at a time (module fixtures such as trained runs are
# built once): 8 min instead of 17 on the 2-core CPU. PYTEST_WORKERS=1 runs serially.
PYTEST_WORKERS ?= 2
test: install-test
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile
