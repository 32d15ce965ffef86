# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean config-docs

# setup.py builds the C kernels at install: a changed kernel reinstalls
$(STAMP): pyproject.toml constraints.txt setup.py $(wildcard src/biolstm/nn/kernels/*.c src/biolstm/nn/kernels/*.h)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/biolstm demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples setup.py
	$(PY) -m pytest

# The long runs (full trainings, multi-process, kill-and-resume); CI runs them after `make test`.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/engines.py

# docs/config.md, generated from the config dataclasses (tests/pipeline/test_reference.py checks it is current).
config-docs: $(STAMP)
	$(PY) -m biolstm.pipeline.reference --write docs/config.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info src/biolstm/nn/kernels/*.so
