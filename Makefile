# digitlens: `make run` runs the live reader, `make test` runs the test suite. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The live source: the webcam when the machine has one, else the shipped demo clip.
SOURCE ?= $(if $(wildcard /dev/video0),0,demo)

.PHONY: run test bench model data clean help

help:
	@echo "make run      live reader on the webcam (or the demo clip when there is no camera); SOURCE=... to choose"
	@echo "make test     the test suite (installs the train/serve/dev extras and system packages it drives)"
	@echo "make bench    all benchmarks, results in benchmarks/results/"
	@echo "make model    train the default network and install it as the shipped model"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: numpy, opencv, onnxruntime (no torch).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

# torch is pinned to 2.13.0 in the train extra: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,serve,dev]'
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/digitlens live --source $(SOURCE)

data: $(VENV)/.runtime
	$(BIN)/digitlens data

test: $(VENV)/.dev
	@scripts/system-deps.sh
	$(BIN)/digitlens data
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/read.py
	$(BIN)/python benchmarks/crops.py
	$(BIN)/python benchmarks/live.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/fuzz.py

model: $(VENV)/.dev
	$(BIN)/python benchmarks/train.py --arch lens --out runs/lens
	$(BIN)/python benchmarks/finetune.py --run runs/lens --out runs/lens-ft --ship
	$(BIN)/python benchmarks/train.py --arch seed --ship

clean:
	rm -rf $(VENV) runs reports .pytest_cache
