# LDARNet workflow: the two commands of the README, and a few helpers.
#   make demo   - set up .venv if needed, then run the demo on the embedded real data
#   make test   - set up .venv if needed, then lint and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Workflow rules call the `ldarnet` command: make the project's environment first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test test-slurm test-kernels lint bench setup system-deps clean results-doc \
	slurm-profile rerun-arm rerun-cv rerun-table

setup: $(STAMP)

# Re-install when the package metadata changes. torch is installed first at the version
# the tests run on (here the CPU build from the local wheel), so that the package's torch
# range is already satisfied and pip downloads no other build (docs/cluster.md).
TORCH_VERSION ?= 2.13.0
$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet 'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Make the project's SLURM profile your `slurm` profile, so that `snakemake --profile slurm`
# finds it from any directory: a link ~/.config/snakemake/slurm -> workflow/profiles/slurm.
# A `slurm` profile you already have is left alone and used as it is (docs/cluster.md).
SNAKEMAKE_PROFILES ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake
slurm-profile:
	@dest="$(SNAKEMAKE_PROFILES)/slurm"; src="$(CURDIR)/workflow/profiles/slurm"; \
	if [ -L "$$dest" ] && [ "$$(readlink "$$dest")" = "$$src" ]; then \
	  echo "$$dest already links to $$src"; \
	elif [ -e "$$dest" ] || [ -L "$$dest" ]; then \
	  echo "you already have a slurm profile: $$dest"; \
	  echo "it is used as it is; the rules carry their own GPU, CPU, memory and time requests"; \
	  echo "(docs/cluster.md: 'Your own profile')"; \
	else \
	  mkdir -p "$(SNAKEMAKE_PROFILES)" && ln -s "$$src" "$$dest" && \
	  echo "linked $$dest -> $$src: run 'snakemake --profile slurm all' from $(CURDIR)"; \
	fi

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

# The demo DAG: the same rules as the paper, on the data shipped in resources/demo/, then
# the self-contained HTML report of the run. Snakemake prints "N of M steps (x%) done".
demo: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/snakemake --configfile config/demo.yaml --cores all --show-failed-logs && \
	$(BIN)/snakemake --configfile config/demo.yaml --report results/report.html && \
	echo && echo "demo finished in $$(( $$(date +%s) - start )) s (after the install)"
	@echo
	@echo "report (open in a browser):   results/report.html"
	@echo "paper vs this run:            results/tables/claims.md"
	@echo "tables / figures:             results/tables/, results/figures/"
	@echo "pretraining:                  results/pretrain/<model>/seed1/ (model.safetensors, curves.png)"
	@echo "boundary analysis:            results/boundaries/ldarnet/seed1/"

# Reruns of one part, the rest untouched (docs/cluster.md). SNAKEMAKE_ARGS selects the run:
# the cluster (default) or e.g. SNAKEMAKE_ARGS="--configfile config/demo.yaml --cores all".
#   make rerun-arm ARM=ldarnet_fixed [SEED=1]   one ablation arm: its pretraining (the
#       reference and the FLOPs budget untouched), its fine-tuning, the ablation table
#   make rerun-cv TASK=H3 [MODEL=ldarnet]       one task's cross-validation (every seed),
#       its summary and its table
#   make rerun-table TABLE=histone              one table's rendering
# The arm's weights are protected() against stray reruns: only the file named here is
# made writable again, so that a rule-wide `--forcerun pretrain` still refuses.
SNAKEMAKE_ARGS ?= --profile slurm
MODEL ?= ldarnet
SEED ?= 1
rerun-arm:
	@test -n "$(ARM)" || { echo "usage: make rerun-arm ARM=<ablation arm> [SEED=1]" >&2; exit 2; }
	@weights=results/pretrain/$(ARM)/seed$(SEED)/model.safetensors; \
	if [ -e "$$weights" ]; then chmod u+w "$$weights"; fi; \
	set -x; snakemake results/tables/ablation.tsv $(SNAKEMAKE_ARGS) --forcerun "$$weights"

rerun-cv:
	@test -n "$(TASK)" || { echo "usage: make rerun-cv TASK=<task> [MODEL=ldarnet]" >&2; exit 2; }
	@runs=$$(ls results/eval/$(MODEL)/$(TASK)/cv/seed*/result.json 2>/dev/null); \
	test -n "$$runs" || { echo "no finished cross-validation in results/eval/$(MODEL)/$(TASK)/cv/" >&2; exit 2; }; \
	table=$$(python -m ldarnet.pipeline.config_check table-of $(TASK)) || exit 2; \
	set -x; snakemake results/tables/$$table.tsv $(SNAKEMAKE_ARGS) --forcerun $$runs

rerun-table:
	@test -n "$(TABLE)" || { echo "usage: make rerun-table TABLE=<table name>" >&2; exit 2; }
	@set -x; snakemake results/tables/$(TABLE).tsv $(SNAKEMAKE_ARGS) \
	  --forcerun results/tables/$(TABLE).tsv

lint: $(STAMP)
	$(BIN)/ruff check ldarnet tests benchmarks

test: lint
	$(BIN)/pytest -q

# The real-cluster tier (tests/slurm/): starts a single-node SLURM cluster of its own
# (controller, node daemon, accounting, fake GPUs; tests/slurm/local_cluster.py), runs the
# demo's DAG and the fault tests through `--profile slurm`, and stops every daemon it
# started. Needs root and Debian's SLURM packages (installed here when missing, as root).
SLURM_PACKAGES := slurm-wlm slurmdbd munge mariadb-server
test-slurm: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && ! command -v slurmctld >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(SLURM_PACKAGES) with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SLURM_PACKAGES)) >/dev/null; \
	fi
	LDARNET_TEST_TIER=slurm $(BIN)/pytest -q -p no:cacheprovider -rs tests/slurm

# The CUDA backend's wrappers with mamba-ssm's real Triton kernels, on CPU under Triton's
# interpreter (docs/cuda.md). Installs the optional `kernels-cpu` extra and mamba-ssm as
# pure Python (no CUDA build, no prebuilt-wheel download) into .venv; never part of
# `make setup`/`make test`/`make demo`. TRITON_INTERPRET must be set when the process
# starts, so the tier runs as its own pytest process.
# The mamba-ssm of the GPU environment (the `cuda` extra, envs/ldarnet-cuda.yaml).
MAMBA_SSM_VERSION := 2.2.5
# Keyed by the version: changing it reinstalls.
KERNELS_STAMP := $(VENV)/.kernels-cpu-mamba-ssm-$(MAMBA_SSM_VERSION)

$(KERNELS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,kernels-cpu]'
	MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE $(BIN)/python -m pip install --quiet \
	  --no-build-isolation --no-deps mamba-ssm==$(MAMBA_SSM_VERSION)
	@touch $@

test-kernels: $(KERNELS_STAMP)
	@start=$$(date +%s); \
	TRITON_INTERPRET=1 $(BIN)/pytest -q tests/model/test_kernels_interpreter.py && \
	echo "kernel tier finished in $$(( $$(date +%s) - start )) s"

# Paste the last run's paper-vs-this table (results/tables/claims.md) into docs/results.md.
results-doc: $(STAMP)
	$(BIN)/python -m ldarnet.report.results_doc results/tables/claims.md docs/results.md

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
