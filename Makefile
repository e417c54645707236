# The two commands: `make build` runs tinyfake's main job, `make test` the tests.
# Both install what they need first (scripts/setup.sh is idempotent).
VENV := .venv
PY := $(VENV)/bin/python
BOARD ?= stm32h743
PYTEST_ARGS ?=

.PHONY: setup build test test-fast fuzz clean

setup:
	bash scripts/setup.sh

# --force: each `make build` trains runs/default afresh (without it, a second run refuses)
build: setup
	$(VENV)/bin/tinyfake build --board $(BOARD) --force

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The protocol fuzz target for 10 minutes; records bench/results/fuzz.json.
fuzz: setup
	$(PY) scripts/fuzz_protocol.py --seconds 600 --write

clean:
	rm -rf runs build .pytest_cache
