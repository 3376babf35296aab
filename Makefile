# Two commands for a newcomer:
#   make run    install into .venv, prepare the offline vctk-mini track, train + score Demucs (quick preset, ~10 min on 2 CPU cores), update leaderboard.md
#   make test   install into .venv, lint (ruff) and run the test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
MODEL ?= demucs
PRESET ?= quick

.PHONY: install run test test-all check-adapters

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[models,dev,metrics]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BENCH) run --model $(MODEL) --preset $(PRESET)

test: install
	$(VENV)/bin/ruff check .
	$(BENCH) leaderboard --check
	$(VENV)/bin/pytest -q -m "not slow"

test-all: install
	$(VENV)/bin/pytest -q
