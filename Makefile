# Two entry points for a fresh machine; each does all of its own set-up.
#   make demo   install, then run the main job
#   make test   install (with the test extra), then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

demo: install
	$(BIN)/imn data synth --out demo/synthetic --n 200 --seed 0
	$(BIN)/imn data info demo/synthetic
	$(BIN)/imn data plot demo/synthetic --index 7 --out demo/synthetic_ecg.png

test: install-test
	$(BIN)/python -m pytest -q
