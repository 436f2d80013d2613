# Two commands matter: `make run` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-slow lint fmt check verify lock clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/scrip serve

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest --run-slow

lint: $(STAMP)
	$(VENV)/bin/ruff check scrip_actor tests bench
	$(VENV)/bin/ruff format --check scrip_actor tests bench

check: lint test

fmt: $(STAMP)
	$(VENV)/bin/ruff format scrip_actor tests bench
	$(VENV)/bin/ruff check --fix scrip_actor tests bench

verify: $(STAMP)
	$(VENV)/bin/scrip verify --data-dir ./data

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
