# Quick start: `make demo` runs the assistant on sample recordings; `make test` runs the suite.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-quick lint bench

setup: .setup-done
.setup-done: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

demo: setup   # the demo keeps its own archive, apart from yours
	bash scripts/make_samples.sh examples
	$(BIN)/voiceflow ingest examples/lectures --archive examples/archive
	VOICEFLOW_ARCHIVE=examples/archive $(BIN)/voiceflow run configs/default.yaml examples/audio

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q --durations=15

test-quick: lint
	$(BIN)/pytest -q -m "not slow"

bench: setup   # every CPU benchmark in turn; each prints its table and saves bench/results/
	for b in asr peers wer archive qa intents image listen memory server batch fuzz crash; do $(BIN)/python -m bench.$$b || exit 1; done
