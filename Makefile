# Two entry points do everything on a fresh machine:
#   make demo   set up .venv, train the default model, score seeds/, print the per-outlet table
#   make test   set up .venv, run ruff and the test suite (what CI runs)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test setup lint bench-accuracy bench-throughput clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is the CPU build on disk.
$(STAMP): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/framing train
	$(BIN)/framing score seeds/ --out reports

lint: $(STAMP)
	$(BIN)/ruff check framing tests bench

test: $(STAMP) lint
	$(BIN)/pytest

bench-accuracy: $(STAMP)
	$(BIN)/python bench/accuracy.py

bench-throughput: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) reports models/default
