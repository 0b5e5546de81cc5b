# LDARNet workflow: the two commands of the README, and a few helpers.
#   make demo   - set up .venv if needed, then run the demo on the embedded real data
#   make test   - set up .venv if needed, then lint and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= results/demo/smoke

.PHONY: demo test lint bench setup system-deps clean

setup: $(STAMP)

# Re-install when the package metadata changes; torch is pinned in pyproject.toml so that
# a fresh machine gets the CPU build (see docs/install.md for GPU clusters).
$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# bedtools (used through pybedtools by the genome and boundary stages) comes from the
# system: installed with apt when missing and running as root, otherwise explained.
system-deps:
	@if ! command -v bedtools >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bedtools with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bedtools) >/dev/null; \
	  else \
	    echo "note: bedtools not found; install it (apt-get install bedtools, or conda install -c bioconda bedtools)"; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/ldarnet model-info --config config/models/ldarnet-110m.yaml > /dev/null
	$(BIN)/ldarnet smoke --config config/models/ldarnet-tiny.yaml \
	  --fasta resources/demo/hg38/chr2_1-2333275.fa.gz --out $(DEMO_OUT) --steps 40
	@echo "demo report: $(DEMO_OUT)/report.json"
	@cat $(DEMO_OUT)/report.json

lint: $(STAMP)
	$(BIN)/ruff check ldarnet tests benchmarks

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
